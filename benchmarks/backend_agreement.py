"""Our backend against lm-eval's ``hf`` backend on a whole suite: every task metric and every doc's verdict.

Runs ``harness.evaluate`` on the same model, tasks and ``--limit`` once per backend (results under
``--output``/hf and ``--output``/harness) and prints one row per (task, metric) with both values. Exit
status 1 if any metric differs by more than 1e-5 (counting metrics move by at least 1/n; TruthfulQA's
mc2 is continuous) or any doc's verdict differs.

    python benchmarks/backend_agreement.py --tasks open_llm_leaderboard_v1 --limit 50 [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from harness.core import RunResult, RunSpec, load_result, load_samples  # noqa: E402
from harness.registry import resolve_model  # noqa: E402
from harness.runner import evaluate  # noqa: E402

TOLERANCE = 1e-5


def _results(folder: Path) -> dict[str, tuple[RunResult, list]]:
    """Each task's result in ``folder`` with its docs' verdicts (task, doc, correct: 0/1, or mc2's score)."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        result = load_result(path)
        found[result.task] = (result, [(r.task, r.doc_id, r.correct) for r in load_samples(result.samples_path)])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="open_llm_leaderboard_v1")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", default="8")
    parser.add_argument("--output", default="results/agreement")
    parser.add_argument("--compare-only", action="store_true", help="compare the result folders already there")
    args = parser.parse_args()

    output = Path(args.output)
    for backend in () if args.compare_only else ("hf", "harness"):
        spec = RunSpec(model=resolve_model(args.model), tasks=tuple(args.tasks.split(",")), limit=args.limit,
                       batch_size=args.batch_size, device=args.device, dtype=args.dtype, backend=backend)
        start = time.perf_counter()
        evaluate(spec, output / backend)
        print(f"{backend}: {time.perf_counter() - start:.0f} s", flush=True)

    failures = 0
    theirs_all, ours_all = _results(output / "hf"), _results(output / "harness")
    print("| task | metric | n | lm-eval hf | ours | same |\n|---|---|---|---|---|---|")
    for task, (theirs, their_verdicts) in theirs_all.items():
        ours, our_verdicts = ours_all[task]
        for metric, values in theirs.metrics.items():
            a, b = values.value, ours.metrics[metric].value
            same = a is not None and b is not None and abs(a - b) <= TOLERANCE
            failures += not same
            print(f"| {task} | {metric} | {theirs.n} | {a:.6f} | {b:.6f} | {'yes' if same else 'NO'} |")
        differing = abs(len(their_verdicts) - len(our_verdicts)) + sum(
            x[:2] != y[:2] or abs(x[2] - y[2]) > TOLERANCE for x, y in zip(their_verdicts, our_verdicts))
        failures += differing
        print(f"| {task} | per-doc verdicts | {len(their_verdicts)} | | | {f'NO: {differing} differ' if differing else 'yes'} |")
    print("all equal" if not failures else f"{failures} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
