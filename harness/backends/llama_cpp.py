"""GGUF models through llama.cpp (``llama-cpp-python``, the optional ``gguf`` extra) with lm-eval's interface.

Log-likelihoods come from llama.cpp's logits at every input position (``logits_all``). Requests are
sorted by their token inputs, so each one shares the longest possible prefix with the one before it;
only the tokens after that shared prefix are decoded (llama.cpp keeps the prefix in its KV cache and
its logits stay valid). Log-probabilities are taken only at continuation positions.

Inputs are windowed as lm-eval's ``hf`` backend does (left truncation at the context limit, the last
token dropped); text is tokenized by llama.cpp's own tokenizer, special tokens parsed, BOS as the GGUF
file asks. Generation is greedy through llama.cpp's own completion loop.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
from lm_eval import utils
from lm_eval.api.instance import Instance
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import handle_stop_sequences
from tqdm import tqdm

from harness.backends.prefix import common_prefix_length, model_input
from harness.errors import HarnessError

DEFAULT_CONTEXT = 4096  # llama.cpp keeps logits for every position of its context: n_ctx × vocab floats


class LlamaCppLM(TemplateLM):
    """lm-eval's LM interface on a llama.cpp context (``harness run --backend llama-cpp``)."""

    def __init__(
        self,
        pretrained: str,
        gguf_file: str | None = None,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        device: str = "cpu",
        max_gen_toks: int = 256,
        seed: int = 1234,
        batch_size: int | str = 1,  # accepted for a uniform interface: llama.cpp batches tokens, not requests
        dtype: str | None = None,  # a GGUF file fixes its own weight types
    ) -> None:
        super().__init__()
        try:
            from llama_cpp import Llama
        except ImportError:
            raise HarnessError("--backend llama-cpp needs llama-cpp-python, which is not installed",
                               "pip install 'open-llm-harness[gguf]' (it compiles llama.cpp: ~14 minutes on 2 idle cores)") from None
        path = Path(pretrained) / gguf_file if gguf_file else Path(pretrained)
        self.path = path
        self.llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=min(512, n_ctx),
            n_threads=n_threads or os.cpu_count(),
            n_gpu_layers=-1 if device.startswith("cuda") else 0,
            logits_all=True,
            seed=seed,
            verbose=False,
        )
        self.max_length = self.llm.n_ctx()
        self.max_gen_toks = max_gen_toks
        self.tokenizer = None  # a Hugging Face tokenizer, set by ``--chat`` to render the chat template

    @property
    def tokenizer_name(self) -> str:
        return self.path.name

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=not add_generation_prompt)

    @property
    def eot_token_id(self) -> int:
        return self.llm.token_eos()

    @property
    def prefix_token_id(self) -> int:
        bos = self.llm.token_bos()
        return bos if bos >= 0 else self.eot_token_id

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self.llm.tokenize(string.encode("utf-8"), add_bos=add_special_tokens is not False, special=True)

    def tok_decode(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def _logprobs(self, rows: np.ndarray, targets: list[int]) -> tuple[float, bool]:
        """Sum of log-softmax(rows)[i, targets[i]] (in float64), and whether every target is the argmax."""
        logits = rows.astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        picked = logits[np.arange(len(targets)), targets]
        return float((picked - log_norm).sum()), bool((logits.argmax(axis=1) == np.asarray(targets)).all())

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        inputs = [model_input(context, continuation, self.max_length) for _, context, continuation in requests]
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for index in tqdm(sorted(range(len(requests)), key=lambda i: inputs[i]), disable=disable_tqdm,
                          desc="Scoring log-likelihoods (llama.cpp)"):
            key, _, continuation = requests[index]
            tokens = inputs[index]
            cached = self.llm.input_ids[: self.llm.n_tokens].tolist()
            shared = common_prefix_length(cached, tokens)
            if shared < len(tokens):
                self.llm.n_tokens = shared
                self.llm.eval(tokens[shared:])
            first = len(tokens) - len(continuation)
            results[index] = self._logprobs(self.llm.scores[first: len(tokens)], list(continuation))
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, results[index])
        return results

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        scores = []
        for (text,) in tqdm([req.args for req in requests], disable=disable_tqdm):
            windows = [
                (None, *utils.make_disjoint_window(window))
                for window in utils.get_rolling_token_windows(
                    token_list=self.tok_encode(text), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1,
                )
            ]
            total = sum(logprob for logprob, _ in self._loglikelihood_tokens(windows, disable_tqdm=True))
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
            scores.append(total)
        return scores

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        outputs = []
        for context, gen_kwargs in tqdm([req.args for req in requests], disable=disable_tqdm,
                                        desc="Generating (llama.cpp)"):
            max_tokens = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
            until = copy.copy(gen_kwargs.get("until"))  # handle_stop_sequences appends to the list it is given
            stop = handle_stop_sequences(until, eos=self.tok_decode([self.eot_token_id]) or None)
            temperature = float(gen_kwargs.get("temperature", 0.0)) if gen_kwargs.get("do_sample") else 0.0
            prompt = self.tok_encode(context)[-(self.max_length - max_tokens):]
            completion = self.llm.create_completion(prompt, max_tokens=max_tokens, stop=stop, temperature=temperature)
            text = completion["choices"][0]["text"]
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            outputs.append(text)
        return outputs
