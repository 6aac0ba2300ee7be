"""Paired comparison of two runs on the same docs: agreement, paired bootstrap CI, McNemar's exact test."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest, bootstrap

from harness.core import JUDGED, ResultFileError, RunResult, load_result, load_samples
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


# Memory for one batch of resampled doc indices (int64) and the per-doc differences they pick (float64):
# the bootstrap's peak stays near 2 x this, whatever the number of docs or resamples.
BATCH_BYTES = 16 * 2**20


def _check_iterations(iterations: int) -> None:
    if iterations < 1:
        raise HarnessError(f"--iterations must be a positive number of bootstrap resamples, got {iterations}",
                           "pass --iterations 1 or more (default 10000)")


def paired_bootstrap(x: np.ndarray, y: np.ndarray, iterations: int = 10_000, seed: int = 1234,
                     confidence: float = 0.95) -> tuple[float, float, np.ndarray]:
    """Percentile interval of mean(y) - mean(x) over ``iterations`` paired resamples of the docs, and the
    resampled differences. Each resample draws n docs with replacement and keeps each doc's pair (x_i, y_i),
    so it is the bootstrap of the mean per-doc difference y_i - x_i; scipy draws the resamples in batches of
    at most :data:`BATCH_BYTES`, so memory stays bounded (no iterations x n index matrix). Same seed, same
    interval."""
    _check_iterations(iterations)
    differences = np.asarray(y, dtype=float) - np.asarray(x, dtype=float)
    if differences.size == 1:  # one doc: every resample is that doc (scipy wants two or more)
        return float(differences[0]), float(differences[0]), np.full(iterations, differences[0])
    batch = max(1, BATCH_BYTES // (8 * differences.size))
    with warnings.catch_warnings():  # scipy's standard error of one resample (ddof=1) warns; it is not used
        warnings.simplefilter("ignore", RuntimeWarning)
        result = bootstrap((differences,), np.mean, vectorized=True, batch=batch, n_resamples=iterations,
                           method="percentile", confidence_level=confidence, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high), result.bootstrap_distribution


def _correctness(result_path: Path) -> tuple[RunResult, dict[tuple[str, int], float]]:
    try:
        result = load_result(result_path)
        if result.output_type == JUDGED:
            raise HarnessError(f"{result_path} is a judged {result.task} result, with no per-doc samples to pair",
                               "compare judged models with `harness judge A B --mode pairwise`, then `harness arena`")
        records = load_samples(result.samples_path or Path(result_path).with_suffix(".samples.jsonl"))
    except (OSError, ResultFileError) as exc:
        raise HarnessError(f"cannot read run {result_path} ({exc})",
                           "pass the .json result files that `harness run` wrote, with their .samples.jsonl") from None
    return result, {(r.task, r.doc_id): float(r.correct) for r in records if r.correct is not None}


def compare_runs(path_a: Path, path_b: Path, iterations: int = 10_000, seed: int = 1234) -> PairedComparison:
    _check_iterations(iterations)
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
    low, high, _ = paired_bootstrap(x, y, iterations, seed)
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
