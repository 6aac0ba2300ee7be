"""lm-eval's ``hf`` backend vs our prefix-sharing backend: same model, same requests, one process.

For each task the two backends score the same lm-eval requests in interleaved repetitions
(ref, ours, ref, ours, ...). Reported per task: median wall time of each, the speed ratio, model tokens
forwarded per doc (ours: counted; lm-eval: every request's full input, before padding), the size of the
prefix tree of each doc's requests, peak RSS growth during each backend's calls, and the largest
absolute log-likelihood difference.

    python benchmarks/bench_scoring.py --docs 200 --reps 2 --batch-size 8 [--device cuda --dtype bfloat16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import psutil  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from harness.backends import PrefixSharingLM  # noqa: E402
from harness.paths import TASKS_DIR  # noqa: E402
from harness.registry import resolve_model  # noqa: E402

CASES = {  # task -> (lm-eval task names, n-shot as pinned in tasks/)
    "arc_challenge (25-shot)": ["arc_challenge"],
    "hellaswag (10-shot)": ["hellaswag"],
    "mmlu (5-shot; 4 subjects)": ["mmlu_anatomy", "mmlu_astronomy", "mmlu_marketing", "mmlu_virology"],
    "winogrande (5-shot)": ["winogrande"],
    "truthfulqa_mc2 (0-shot)": ["truthfulqa_mc2"],
}


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


def _requests(manager: TaskManager, names: list[str], docs: int):
    per_task = max(docs // len(names), 1)
    requests = []
    for name in names:
        task = manager.load([name])["tasks"][name]
        task.build_all_requests(limit=per_task, rank=0, world_size=1)
        requests += task.instances
    return requests, per_task * len(names)


def _trie_size(sequences: list[tuple[int, ...]]) -> int:
    nodes: set[tuple[int, ...]] = set()
    for sequence in sequences:
        for end in range(1, len(sequence) + 1):
            nodes.add(sequence[:end])
    return len(nodes)


def _inputs(lm: HFLM, requests) -> dict:
    """Each doc's model inputs, tokenized exactly as lm-eval does."""
    by_doc: dict = {}
    for request in requests:
        context, continuation = request.args
        ctx, cont = lm._encode_pair(context, continuation)
        tokens = tuple((ctx + cont)[-(lm.max_length + 1):][:-1])
        by_doc.setdefault((request.task_name, request.doc_id), []).append(tokens)
    return by_doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--batch-size", default="8")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of the case names")
    args = parser.parse_args()

    spec = resolve_model("smollm2-135m-instruct")
    kwargs = {"pretrained": str(spec.gguf_path.parent), "gguf_file": spec.gguf_path.name, "device": args.device,
              "dtype": args.dtype, "batch_size": args.batch_size}
    reference, ours = HFLM(**kwargs), PrefixSharingLM(**kwargs)
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
          f"device {args.device}, {args.dtype}, batch size {args.batch_size}, {args.reps} interleaved reps")
    print("| case | docs | lm-eval hf (s) | ours (s) | speed-up | tokens/doc lm-eval | tokens/doc ours "
          "| prefix tree/doc | peak RSS +MB lm-eval / ours | max abs Δ log-lik |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case in [c.strip() for c in args.cases.split(",")]:
        requests, docs = _requests(manager, CASES[case], args.docs)
        times: dict[str, list[float]] = {"ref": [], "ours": []}
        rss: dict[str, float] = {"ref": 0.0, "ours": 0.0}
        results = {}
        for _ in range(args.reps):
            for name, lm in (("ref", reference), ("ours", ours)):
                with PeakRss() as peak:
                    start = time.perf_counter()
                    results[name] = lm.loglikelihood(requests, disable_tqdm=True)
                    times[name].append(time.perf_counter() - start)
                rss[name] = max(rss[name], peak.grown_mb)
        inputs = _inputs(reference, requests)
        n_docs = len(inputs)
        full = sum(len(t) for tokens in inputs.values() for t in tokens) / n_docs
        tree = sum(_trie_size(tokens) for tokens in inputs.values()) / n_docs
        diff = max(abs(a[0] - b[0]) for a, b in zip(results["ref"], results["ours"]))
        ref_t, our_t = statistics.median(times["ref"]), statistics.median(times["ours"])
        print(f"| {case} | {n_docs} | {ref_t:.1f} | {our_t:.1f} | {ref_t / our_t:.2f}x | {full:.0f} "
              f"| {ours.stats.tokens_forwarded / n_docs:.0f} | {tree:.0f} | {rss['ref']:.0f} / {rss['ours']:.0f} "
              f"| {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
