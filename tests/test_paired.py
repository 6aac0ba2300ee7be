"""`harness compare`: paired bootstrap CI and McNemar's exact test on per-sample correctness."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from harness.core import MetricValue, RunResult
from harness.errors import HarnessError
from harness.paired import compare_runs, paired_bootstrap
from tests.conftest import run_cli

DATA = Path(__file__).parent / "data"


def _run(folder: Path, name: str, correct: list[float]) -> Path:
    samples = folder / f"{name}.samples.jsonl"
    samples.write_text("".join(json.dumps({"task": "t", "doc_id": i, "correct": c}) + "\n" for i, c in enumerate(correct)))
    result = RunResult(model=name, task="t", kind="task", primary_metric="acc",
                       metrics={"acc": MetricValue(sum(correct) / len(correct))}, n=len(correct), num_fewshot=0,
                       provenance={}, samples_file=samples.name)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result.to_json()))
    return path


def test_known_discordant_pairs_give_the_exact_mcnemar_p(tmp_path: Path) -> None:
    a = [1.0] * 10 + [0.0] * 10
    b = [1.0] * 9 + [0.0] + [1.0] * 5 + [0.0] * 5  # A alone right on 1 doc, B alone right on 5
    result = compare_runs(_run(tmp_path, "a", a), _run(tmp_path, "b", b))
    assert (result.only_a_correct, result.only_b_correct, result.n) == (1, 5, 20)
    # Two-sided exact binomial on the 6 discordant pairs: 2 * P(X <= 1 | n=6, p=1/2) = 2 * (1 + 6) / 64.
    assert result.mcnemar_p == pytest.approx(14 / 64, rel=1e-12)
    assert (result.score_a, result.score_b) == (pytest.approx(10 / 20), pytest.approx(14 / 20))
    assert result.difference == pytest.approx(14 / 20 - 10 / 20) and result.agreement == pytest.approx(14 / 20)
    assert result.ci_low < 0.2 < result.ci_high
    assert compare_runs(_run(tmp_path, "a", a), _run(tmp_path, "b", b)) == result  # seeded: reproducible


def _exact_bootstrap(differences: list[int]) -> dict[Fraction, Fraction]:
    """P(mean of a resample = v) over all n^n equally likely resamples (with replacement) of n docs."""
    n = len(differences)
    counts = Counter(Fraction(sum(differences[i] for i in picks), n)
                     for picks in itertools.product(range(n), repeat=n))
    return {value: Fraction(count, n ** n) for value, count in sorted(counts.items())}


def _exact_quantile(distribution: dict[Fraction, Fraction], q: float) -> tuple[Fraction, float]:
    """The smallest value whose CDF reaches q, and how far q lies from the CDF's jumps around it."""
    below = 0.0
    for value, p in distribution.items():
        if below + float(p) >= q:
            return value, min(q - below, below + float(p) - q)
        below += float(p)
    raise AssertionError("unreachable")


def test_bootstrap_matches_the_exact_distribution_of_a_five_doc_case() -> None:
    x = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 1.0, 1.0, 1.0])  # per-doc differences y - x: -1, 0, 1, 1, 0
    exact = _exact_bootstrap([-1, 0, 1, 1, 0])  # 5^5 = 3125 resamples
    assert exact[Fraction(-1)] == Fraction(1, 3125) and exact[Fraction(0)] == Fraction(592, 3125)
    (low, low_margin), (high, high_margin) = _exact_quantile(exact, 0.025), _exact_quantile(exact, 0.975)
    assert (low, high) == (Fraction(-2, 5), Fraction(4, 5))
    # 2.5% and 97.5% fall inside an atom (>= 0.005 from either edge, i.e. > 4 standard errors at 40,000
    # resamples), so the percentile interval of a large bootstrap is exactly the atoms' values.
    assert min(low_margin, high_margin) > 0.005
    ci_low, ci_high, resampled = paired_bootstrap(x, y, iterations=40_000, seed=7)
    assert (ci_low, ci_high) == (pytest.approx(float(low), abs=1e-12), pytest.approx(float(high), abs=1e-12))
    frequencies = Counter(np.rint(resampled * 5).astype(int).tolist())
    assert set(frequencies) <= {int(v * 5) for v in exact}
    for value, p in exact.items():  # each atom within 0.01 (>= 4 standard errors) of its exact probability
        assert frequencies[int(value * 5)] / 40_000 == pytest.approx(float(p), abs=0.01), value
    assert paired_bootstrap(x, y, iterations=40_000, seed=7)[:2] == (ci_low, ci_high)  # same seed, same CI


def test_bootstrap_of_identical_runs_and_of_one_doc_is_a_point() -> None:
    same = np.array([1.0, 0.0, 0.0])
    assert paired_bootstrap(same, same)[:2] == (0.0, 0.0)
    assert paired_bootstrap(np.array([0.0]), np.array([1.0]), iterations=3)[:2] == (1.0, 1.0)


def test_bootstrap_of_200k_docs_keeps_memory_bounded() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random(200_000) < 0.5).astype(float)
    y = np.where(rng.random(200_000) < 0.9, x, 1 - x)  # 10% of docs flip
    tracemalloc.start()
    try:
        low, high, resampled = paired_bootstrap(x, y, iterations=10_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # An iterations x n index matrix alone would be 200,000 x 10,000 x 8 bytes = 16 GB.
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert resampled.shape == (10_000,)
    standard_error = np.std(y - x, ddof=1) / np.sqrt(200_000)
    assert low < (y - x).mean() < high and high - low == pytest.approx(2 * 1.96 * standard_error, rel=0.05)


def test_iterations_must_be_positive(tmp_path: Path) -> None:
    run = _run(tmp_path, "a", [1.0, 0.0])
    with pytest.raises(HarnessError, match="--iterations must be a positive number"):
        compare_runs(run, run, iterations=0)
    done = run_cli("compare", str(run), str(run), "--iterations", "0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--iterations must be a positive number" in done.stderr


def _samples(path: Path) -> dict[tuple[str, int], float]:
    rows = [json.loads(line) for line in path.with_suffix(".samples.jsonl").read_text().splitlines() if line]
    return {(row["task"], row["doc_id"]): row["correct"] for row in rows}


def test_cli_compares_two_real_runs_of_winogrande() -> None:
    run_a, run_b = sorted(DATA.glob("*winogrande*.json"))
    done = run_cli("compare", str(run_a), str(run_b))
    assert done.returncode == 0, done.stderr
    # The expected row, computed from the two samples files alone.
    a, b = _samples(run_a), _samples(run_b)
    docs = sorted(set(a) & set(b))
    x, y = [a[d] for d in docs], [b[d] for d in docs]
    score_a, score_b = sum(x) / len(docs), sum(y) / len(docs)
    only_a = sum(1 for i, j in zip(x, y) if (i, j) == (1.0, 0.0))
    only_b = sum(1 for i, j in zip(x, y) if (i, j) == (0.0, 1.0))
    assert (len(docs), score_a, only_a, only_b) == (3, 1 / 3, 0, 0)  # the two runs agree on all 3 docs
    differences = {j - i for i, j in zip(x, y)}
    assert differences == {0.0}  # so every resample's difference is 0: the interval is [0, 0]
    header, rule, row, models = done.stdout.splitlines()
    cells = [cell.strip() for cell in row.split("|")]
    assert cells == ["winogrande", str(len(docs)), f"{score_a:.4f}", f"{score_b:.4f}", f"{score_b - score_a:+.4f}",
                     "[+0.0000, +0.0000]", f"{sum(i == j for i, j in zip(x, y)) / len(docs):.4f}", str(only_a),
                     str(only_b), "1"]
    assert cells[2:5] == ["0.3333", "0.3333", "+0.0000"]
    assert header.split("|")[5].strip() == "95% CI (paired bootstrap)" and "McNemar p" in header
    assert models == "A = smollm2-135m-instruct, B = smollm2-135m-instruct"


def test_cli_prints_the_numbers_of_a_discordant_pair_of_runs(tmp_path: Path) -> None:
    a = [1.0] * 10 + [0.0] * 10
    b = [1.0] * 9 + [0.0] + [1.0] * 5 + [0.0] * 5
    expected = compare_runs(_run(tmp_path, "a", a), _run(tmp_path, "b", b))
    done = run_cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert done.returncode == 0, done.stderr
    cells = [cell.strip() for cell in done.stdout.splitlines()[2].split("|")]
    assert cells == ["t", "20", "0.5000", "0.7000", "+0.2000", f"[{expected.ci_low:+.4f}, {expected.ci_high:+.4f}]",
                     "0.7000", "1", "5", f"{14 / 64:.4g}"]


def test_runs_of_different_tasks_are_refused() -> None:
    run_a = next(DATA.glob("*arc_challenge*.json"))
    run_b = next(DATA.glob("*winogrande*.json"))
    done = run_cli("compare", str(run_a), str(run_b))
    assert done.returncode == 2 and "different tasks" in done.stderr
