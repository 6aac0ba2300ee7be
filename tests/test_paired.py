"""`harness compare`: paired bootstrap CI and McNemar's exact test on per-sample correctness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core import MetricValue, RunResult
from harness.paired import compare_runs
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
    assert result.mcnemar_p == pytest.approx(14 / 64)  # two-sided exact binomial, 6 discordant pairs
    assert result.difference == pytest.approx(0.2) and result.agreement == pytest.approx(0.7)
    assert result.ci_low < 0.2 < result.ci_high
    assert compare_runs(_run(tmp_path, "a", a), _run(tmp_path, "b", b)) == result  # seeded: reproducible


def test_cli_compares_two_real_runs_of_winogrande() -> None:
    run_a, run_b = sorted(DATA.glob("*winogrande*.json"))
    done = run_cli("compare", str(run_a), str(run_b))
    assert done.returncode == 0, done.stderr
    assert "winogrande" in done.stdout and "McNemar p" in done.stdout and "| 3 " in done.stdout


def test_runs_of_different_tasks_are_refused() -> None:
    run_a = next(DATA.glob("*arc_challenge*.json"))
    run_b = next(DATA.glob("*winogrande*.json"))
    done = run_cli("compare", str(run_a), str(run_b))
    assert done.returncode == 2 and "different tasks" in done.stderr
