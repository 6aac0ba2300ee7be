"""Paired comparison of two runs on the same docs: agreement, paired bootstrap CI, McNemar's exact test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from harness.core import ResultFileError, RunResult, load_result, load_samples
from harness.errors import HarnessError


@dataclass(frozen=True)
class PairedComparison:
    task: str
    model_a: str
    model_b: str
    n: int
    score_a: float
    score_b: float
    difference: float  # b - a
    ci_low: float
    ci_high: float
    agreement: float  # share of docs where both are right or both wrong (binary scores only)
    only_a_correct: int
    only_b_correct: int
    mcnemar_p: float | None  # None when the per-sample scores are not 0/1


def _correctness(result_path: Path) -> tuple[RunResult, dict[tuple[str, int], float]]:
    try:
        result = load_result(result_path)
        records = load_samples(result.samples_path or Path(result_path).with_suffix(".samples.jsonl"))
    except (OSError, ResultFileError) as exc:
        raise HarnessError(f"cannot read run {result_path} ({exc})",
                           "pass the .json result files that `harness run` wrote, with their .samples.jsonl") from None
    return result, {(r.task, r.doc_id): float(r.correct) for r in records if r.correct is not None}


def compare_runs(path_a: Path, path_b: Path, iterations: int = 10_000, seed: int = 1234) -> PairedComparison:
    result_a, a = _correctness(path_a)
    result_b, b = _correctness(path_b)
    if result_a.task != result_b.task:
        raise HarnessError(f"the runs are of different tasks ({result_a.task} vs {result_b.task})",
                           "compare two runs of the same task")
    keys = sorted(set(a) & set(b))
    if not keys:
        raise HarnessError("the two runs share no evaluated docs", "run both on the same docs (same --limit)")
    x = np.array([a[k] for k in keys])
    y = np.array([b[k] for k in keys])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(keys), size=(iterations, len(keys)))
    diffs = y[picks].mean(axis=1) - x[picks].mean(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    binary = set(np.unique(np.concatenate([x, y]))) <= {0.0, 1.0}
    only_a = int(((x == 1) & (y == 0)).sum()) if binary else 0
    only_b = int(((x == 0) & (y == 1)).sum()) if binary else 0
    p_value = None
    if binary:
        p_value = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return PairedComparison(
        task=result_a.task, model_a=result_a.model, model_b=result_b.model, n=len(keys),
        score_a=float(x.mean()), score_b=float(y.mean()), difference=float(y.mean() - x.mean()),
        ci_low=float(low), ci_high=float(high),
        agreement=float((x == y).mean()) if binary else float("nan"),
        only_a_correct=only_a, only_b_correct=only_b, mcnemar_p=p_value,
    )
