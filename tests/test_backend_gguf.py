"""The embedded GGUF through llama.cpp, and through a real llama-cpp-python server on 127.0.0.1 (the
OpenAI-compatible backend), against lm-eval's own ``hf`` model (``HFLM``) on the same prompt tokens:
ARC-Easy 0-shot log-likelihoods and GSM8K 5-shot greedy generations.

Like with like: llama.cpp (``--backend llama-cpp``) adds no BOS for this GGUF, nor does HFLM. The server
is started with BOS prepended to prompts, since llama-cpp-python 0.3.36 pairs each echoed prompt token
with the logits *after* it unless the prompt starts with BOS (for a GGUF that adds none, every echoed
log-probability would be one position off); its reference is HFLM with the same BOS prepended, and the
test checks that the server's tokens and the reference's are the same.

transformers dequantises the file's Q4_1 weights to fp32, while llama.cpp computes on them directly
(with 8-bit activations), so log-likelihoods differ a little. The bars, set from measured spreads with a
margin (see the constants): every per-choice log-likelihood within ``MAX_ABS_DELTA`` nats of lm-eval's
and within ``MEAN_ABS_DELTA`` on average; the same choice ranked first on every doc where lm-eval's best
choice leads by more than ``CLEAR_LEAD`` nats (nearer ties may flip); greedy generations that begin alike
(same first three words) on ``GENERATIONS_ALIKE`` of 5 GSM8K docs.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from harness.backends import LlamaCppLM, OpenAICompatibleLM
from harness.hf_folder import dequantized_folder
from harness.paths import TASKS_DIR
from harness.registry import resolve_model
from harness.templates import load_tokenizer
from tests.conftest import needs
from tests.llama_server import serve

pytestmark = [needs("mirror", "embedded_model", "llama_cpp"), pytest.mark.slow]

MODEL = "smollm2-135m-instruct"
# The server answers ~4 s per ARC request here (llama-cpp-python sorts the whole vocabulary for each
# echoed token's top log-probability), so it gets the first 20 of the 40 docs.
ARC_DOCS, SERVER_ARC_DOCS, GSM_DOCS = 40, 20, 5
# Bars with a margin over the spreads measured here (README.md, "Agreement between backends"):
MAX_ABS_DELTA = 1.5  # nats, any choice's log-likelihood (measured at most 0.93)
MEAN_ABS_DELTA = 0.35  # nats, averaged over the choices (measured 0.20)
CLEAR_LEAD = 0.5  # nats between lm-eval's best and second-best choice (rankings measured to flip below 0.07)
GENERATIONS_ALIKE = 3  # of the 5 GSM8K docs (measured 4 through either backend)


@pytest.fixture(scope="module")
def model():
    return resolve_model(MODEL)


def _samples(lm, task: str, limit: int) -> list[dict]:
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    result = simple_evaluate(model=lm, tasks=[task], limit=limit, task_manager=manager, log_samples=True,
                             bootstrap_iters=0, device="cpu")
    return sorted(result["samples"][task], key=lambda sample: sample["doc_id"])


def _run_both(lm, arc_docs: int = ARC_DOCS) -> dict[str, list[dict]]:
    return {"arc_easy": _samples(lm, "arc_easy", arc_docs), "gsm8k": _samples(lm, "gsm8k", GSM_DOCS)}


def _loglikelihoods(samples: list[dict]) -> list[list[float]]:
    return [[response[0][0] for response in sample["resps"]] for sample in samples]


def _generations(samples: list[dict]) -> list[str]:
    return [sample["resps"][0][0] for sample in samples if sample.get("filter") in (None, "strict-match")]


def _assert_agree(ours: dict[str, list[dict]], reference: dict[str, list[dict]]) -> None:
    mine = _loglikelihoods(ours["arc_easy"])
    theirs = _loglikelihoods(reference["arc_easy"])[: len(mine)]
    assert [len(choices) for choices in mine] == [len(choices) for choices in theirs] and len(mine) >= 20
    deltas = [abs(a - b) for xs, ys in zip(mine, theirs) for a, b in zip(xs, ys, strict=True)]
    assert max(deltas) <= MAX_ABS_DELTA, f"a log-likelihood differs from lm-eval's by {max(deltas):.3f} nats"
    assert np.mean(deltas) <= MEAN_ABS_DELTA, f"log-likelihoods differ from lm-eval's by {np.mean(deltas):.3f} on average"
    clear = [(xs, ys) for xs, ys in zip(mine, theirs) if np.diff(sorted(ys)[-2:])[0] > CLEAR_LEAD]
    flipped = sum(int(np.argmax(xs)) != int(np.argmax(ys)) for xs, ys in clear)
    assert len(clear) >= len(mine) // 2 and flipped == 0, f"{flipped} of {len(clear)} clear rankings differ"
    texts, expected = _generations(ours["gsm8k"]), _generations(reference["gsm8k"])
    assert len(texts) == len(expected) == GSM_DOCS
    assert all(text.strip() for text in texts), texts
    alike = sum(a.split()[:3] == b.split()[:3] for a, b in zip(texts, expected))
    print(f"measured: max |delta| {max(deltas):.3f} nats, mean {np.mean(deltas):.3f}, {flipped} of {len(clear)} "
          f"clear rankings flipped, {sum(int(np.argmax(xs)) != int(np.argmax(ys)) for xs, ys in zip(mine, theirs))} "
          f"of {len(mine)} rankings flipped in all, generations alike {alike}/{GSM_DOCS}")
    assert alike >= GENERATIONS_ALIKE, f"generations begin alike on {alike}/{GSM_DOCS} docs: {texts} vs {expected}"


def _bos_tokenizer(model):
    """The GGUF's tokenizer with its BOS prepended to every encoding, as the server is told to do."""
    from tokenizers.processors import TemplateProcessing

    tokenizer = load_tokenizer(model)
    bos = tokenizer.bos_token
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tokenizer.bos_token_id)])
    return tokenizer


def _hflm(model, **kwargs) -> HFLM:
    """lm-eval's hf on the GGUF's float32 tensors, from the folder they are cached in (the same tensors as
    transformers reading the file, bit for bit: tests/test_backend_prefix.py; a 20 s read of the file saved)."""
    return HFLM(pretrained=str(dequantized_folder(model)), device="cpu", dtype="float32", batch_size=8, **kwargs)


@pytest.fixture(scope="module")
def reference(model) -> dict[str, list[dict]]:
    return _run_both(_hflm(model))


@pytest.fixture(scope="module")
def bos_reference(model) -> tuple[HFLM, dict[str, list[dict]]]:
    lm = _hflm(model, tokenizer=_bos_tokenizer(model), add_bos_token=True)
    return lm, _run_both(lm)


@pytest.fixture(scope="module")
def llama_server(model, tmp_path_factory) -> Iterator[str]:
    with serve(model.gguf_path, tmp_path_factory.mktemp("llama-server") / "server.log", "--logits_all", "true",
               "--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true") as url:
        yield url


def _server_tokens(url: str, text: str) -> list[int]:
    request = urllib.request.Request(f"{url}/extras/tokenize", data=json.dumps({"input": text}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)["tokens"]


def test_llama_cpp_backend_agrees_with_lm_evals_hf(model, reference) -> None:
    lm = LlamaCppLM(pretrained=str(model.gguf_path.parent), gguf_file=model.gguf_path.name)
    first = reference["arc_easy"][0]["arguments"][0]
    assert lm.tok_encode(first[0] + first[1]) == load_tokenizer(model).encode(first[0] + first[1])  # no BOS on either
    _assert_agree(_run_both(lm), reference)


def test_openai_compatible_backend_on_a_llama_cpp_server_agrees_with_lm_evals_hf(model, bos_reference,
                                                                                  llama_server) -> None:
    hf, expected = bos_reference
    first = expected["arc_easy"][0]["arguments"][0]
    tokens = hf.tok_encode(first[0] + first[1])
    assert tokens[0] == hf.tokenizer.bos_token_id and _server_tokens(llama_server, first[0] + first[1]) == tokens
    lm = OpenAICompatibleLM(base_url=f"{llama_server}/v1", model=model.name, tokenizer=load_tokenizer(model),
                            num_concurrent=2)
    _assert_agree(_run_both(lm, SERVER_ARC_DOCS), expected)
