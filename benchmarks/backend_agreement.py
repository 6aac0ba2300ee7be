"""Our backend against another (lm-eval's ``hf`` by default) on a whole suite: every task metric, every doc's
verdict and every doc's choice.

Runs ``harness.evaluate`` on the same model, tasks and ``--limit`` once per backend (results under
``--output``/BACKEND) and prints one row per (task, metric) with both values, then per task
the share of docs whose chosen answer (the choice of highest log-likelihood) is the same. Exit status 1 if any
metric differs by more than 1e-5 (counting metrics move by at least 1/n; TruthfulQA's mc2 is continuous) or
any doc's verdict differs; with ``--min-same-choices`` (a backend with other kernels, such as vLLM), if a
task's share of same choices is below it.

    python benchmarks/backend_agreement.py --tasks open_llm_leaderboard_v1 --limit 50 [--device cuda]
    python benchmarks/backend_agreement.py --backends vllm,harness --tasks arc_easy --limit 200 --min-same-choices 0.98
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from harness.core import RunResult, RunSpec, SampleRecord, load_result, load_samples  # noqa: E402
from harness.registry import resolve_model  # noqa: E402
from harness.runner import evaluate  # noqa: E402

TOLERANCE = 1e-5


def _results(folder: Path) -> dict[str, tuple[RunResult, list[SampleRecord]]]:
    """Each task's result in ``folder`` with its docs' records."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        result = load_result(path)
        found[result.task] = (result, list(load_samples(result.samples_path)))
    return found


def _choice(record: SampleRecord) -> int | None:
    """The doc's chosen answer: its choice of highest log-likelihood (None for a generation task)."""
    scores = record.loglikelihoods
    return max(range(len(scores)), key=scores.__getitem__) if scores else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="open_llm_leaderboard_v1")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", default="8")
    parser.add_argument("--output", default="results/agreement")
    parser.add_argument("--backends", default="hf,harness", help="the two backends, theirs first")
    parser.add_argument("--min-same-choices", type=float, default=None,
                        help="pass on this share of same per-doc choices instead of exact agreement")
    parser.add_argument("--compare-only", action="store_true", help="compare the result folders already there")
    args = parser.parse_args()

    output = Path(args.output)
    backends = args.backends.split(",")
    for backend in () if args.compare_only else backends:
        spec = RunSpec(model=resolve_model(args.model), tasks=tuple(args.tasks.split(",")), limit=args.limit,
                       batch_size=args.batch_size, device=args.device, dtype=args.dtype, backend=backend)
        start = time.perf_counter()
        evaluate(spec, output / backend)
        print(f"{backend}: {time.perf_counter() - start:.0f} s", flush=True)

    failures = 0
    theirs_all, ours_all = _results(output / backends[0]), _results(output / backends[1])
    exact = args.min_same_choices is None
    print(f"| task | metric | n | {backends[0]} | {backends[1]} | same |\n|---|---|---|---|---|---|")
    for task, (theirs, their_records) in theirs_all.items():
        ours, our_records = ours_all[task]
        for metric, values in theirs.metrics.items():
            a, b = values.value, ours.metrics[metric].value
            same = a is not None and b is not None and abs(a - b) <= TOLERANCE
            failures += exact and not same
            print(f"| {task} | {metric} | {theirs.n} | {a:.6f} | {b:.6f} | {'yes' if same else 'NO'} |")
        pairs = list(zip(their_records, our_records))
        assert len(their_records) == len(our_records) and all(
            (x.task, x.doc_id) == (y.task, y.doc_id) for x, y in pairs), f"{task}: the runs scored other docs"
        differing = sum(abs(x.correct - y.correct) > TOLERANCE for x, y in pairs)
        failures += exact and differing
        print(f"| {task} | per-doc verdicts | {len(pairs)} | | | {f'NO: {differing} differ' if differing else 'yes'} |")
        chosen = [(_choice(x), _choice(y)) for x, y in pairs if x.loglikelihoods]
        if chosen:
            share = sum(a == b for a, b in chosen) / len(chosen)
            failures += not exact and share < args.min_same_choices
            gap = max(abs(a - b) for x, y in pairs for a, b in zip(x.loglikelihoods or (), y.loglikelihoods or ()))
            print(f"| {task} | per-doc choices | {len(chosen)} | | | {share:.1%} same (largest log-likelihood "
                  f"difference {gap:.2e}) |")
    print("all equal" if not failures else f"{failures} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
