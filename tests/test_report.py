"""Published scores, comparability verdicts, the numbers behind the charts, and deterministic report files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.comparison import Comparability, comparability, measured_score
from harness.leaderboard import build
from harness.published import Score, load_published
from harness.report import table_rows, write_report

REPORT_FILES = {f"{chart}.{fmt}" for chart in ("leaderboard", "gap", "radar", "size") for fmt in ("png", "svg", "pdf")}
REPORT_FILES |= {"leaderboard.md", "leaderboard.csv", "leaderboard.tex", "index.html"}


def _published(model: str, benchmark: str) -> Score:
    (score,) = [s for s in load_published() if s.model == model and s.benchmark == benchmark
                and s.source in ("gpt4_report", "open_llm_leaderboard_v1")]
    return score


def test_gpt4_rows_equal_the_technical_report_table_2() -> None:
    # GPT-4 Technical Report (arXiv:2303.08774), Table 2, GPT-4 column.
    table_2 = {"mmlu": 86.4, "hellaswag": 95.3, "arc_challenge": 96.3, "winogrande": 87.5, "humaneval": 67.0,
               "drop": 80.9, "gsm8k": 92.0}
    rows = {s.benchmark: s for s in load_published() if s.model == "openai/gpt-4"}
    assert {b: rows[b].value for b in table_2} == table_2
    assert rows["arc_challenge"].n_shot == 25 and rows["hellaswag"].n_shot == 10 and rows["drop"].n_shot == 3
    assert rows["mmlu"].protocol == "letter-choice" and rows["gsm8k"].protocol == "generation-cot"
    assert "truthfulqa" not in rows  # the report gives TruthfulQA only as a chart
    assert "holdout" in rows["hellaswag"].caveats or "held-out" in rows["hellaswag"].caveats


def test_every_published_figure_of_the_reference_file_is_carried_over() -> None:
    reference = Path(__file__).resolve().parents[2] / "shared" / "reference" / "published_scores.csv"
    if not reference.is_file():
        pytest.skip("../shared/reference/published_scores.csv is not present on this machine")
    with reference.open(encoding="utf-8", newline="") as handle:
        theirs = sorted((r["model"], float(r["score"])) for r in csv.DictReader(handle))
    assert sorted((s.model, s.value) for s in load_published()) == theirs


def test_comparability_verdicts() -> None:
    ours = Score("m", "arc_challenge", 25, "accuracy", "loglikelihood-norm", 50.0, 1.0, "measured", "", "", "")
    leaderboard = _published("meta-llama/Llama-2-7b-hf", "arc_challenge")
    gpt4 = _published("openai/gpt-4", "arc_challenge")
    llama_paper = next(s for s in load_published() if s.source == "llama2_paper" and s.benchmark == "arc_challenge")
    assert comparability(ours, leaderboard) is Comparability.COMPARABLE
    assert comparability(ours, gpt4) is Comparability.LOOSELY  # letter choice vs log-likelihood
    assert comparability(ours, llama_paper) is Comparability.NOT  # 0-shot vs 25-shot


def test_gap_is_model_minus_gpt4_for_a_known_row() -> None:
    board = build([], load_published())
    llama = next(s for s in board.series if s.model == "meta-llama/Llama-2-7b-hf")
    assert board.gap(llama, "arc_challenge") == pytest.approx(53.07 - 96.3)
    assert board.gap(llama, "truthfulqa") is None  # GPT-4 has no TruthfulQA number
    rows = [r for r in table_rows(board) if r["model"] == "meta-llama/Llama-2-7b-hf" and r["benchmark"] == "mmlu"]
    assert rows[0]["gap_vs_baseline"] == f"{46.87 - 86.4:.2f}" and rows[0]["comparability"] == "comparable"


def test_measured_result_becomes_a_score_in_points(tmp_path: Path) -> None:
    result = {"task": "mmlu", "model": "x", "num_fewshot": 5, "n": 10, "samples_file": "s.jsonl",
              "metrics": {"acc": {"value": 0.3, "stderr": 0.1}, "acc_subject_mean": {"value": 0.25, "stderr": 0.05}},
              "provenance": {"dtype": "float32", "device": "cpu", "deviations": []}}
    score = measured_score(result)
    assert score.value == pytest.approx(25.0) and score.stderr == pytest.approx(5.0)
    assert comparability(score, _published("lmsys/vicuna-7b-v1.5", "mmlu")) is Comparability.COMPARABLE
    result["provenance"]["deviations"] = ["hellaswag: few-shot examples drawn from the validation split"]
    assert comparability(measured_score(result), _published("lmsys/vicuna-7b-v1.5", "mmlu")) is Comparability.LOOSELY


@pytest.mark.parametrize("runs", [None, "demo"])
def test_report_writes_every_file_and_is_byte_identical_twice(tmp_path: Path, runs: str | None) -> None:
    runs_dir = None
    if runs:
        runs_dir = tmp_path / "runs"
        runs_dir.mkdir()
        for path in (Path(__file__).parent / "data").glob("*.json*"):
            (runs_dir / path.name).write_bytes(path.read_bytes())
    first = write_report(tmp_path / "a", runs_dir)
    second = write_report(tmp_path / "b", runs_dir)
    assert {p.name for p in first} == REPORT_FILES
    for name in REPORT_FILES:
        if name.endswith((".svg", ".csv", ".md", ".tex")):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "leaderboard.png").stat().st_size > 10_000
    md = (tmp_path / "a" / "leaderboard.md").read_text()
    assert "96.3*" in md and "53.1 |" in md
    if runs:
        assert "smollm2-135m-instruct" in md and "‡" in md
        with (tmp_path / "a" / "leaderboard.csv").open() as handle:
            measured = [r for r in csv.DictReader(handle) if r["source"] == "measured"]
        assert {r["benchmark"] for r in measured} == {"arc_challenge", "winogrande"}
        # The newest winogrande run wins: the 0-shot one, which is not at the pinned 5-shot setting.
        newest = max((Path(__file__).parent / "data").glob("*winogrande*.json"))
        payload = json.loads(newest.read_text())
        assert payload["num_fewshot"] == 0
        winogrande = next(r for r in measured if r["benchmark"] == "winogrande")
        assert float(winogrande["score"]) == pytest.approx(100 * payload["metrics"]["acc"]["value"], abs=0.005)
        assert winogrande["comparability"] == "not comparable" and winogrande["n_shot"] == "0"
        arc = next(r for r in measured if r["benchmark"] == "arc_challenge")
        assert arc["comparability"] == "comparable" and arc["n_shot"] == "25"
