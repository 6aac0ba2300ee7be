"""Published scores, comparability verdicts, the numbers behind the charts, and deterministic report files."""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import re
from pathlib import Path

import pytest
from matplotlib.axes import Axes

from tests.conftest import REFERENCE, needs, run_cli
from harness import charts
from harness.comparison import Benchmark, Comparability, comparability, load_runs, measured_score, measured_scores
from harness.core import MetricValue, RunResult
from harness.errors import HarnessError
from harness.leaderboard import MIN_DOCS, build, suite_benchmarks, too_few_docs
from harness.published import Score, load_published
from harness.report import table_rows, write_report
from harness.store import write_json
from harness.tasks import catalogue

REPORT_FILES = {f"{chart}.{fmt}" for chart in ("leaderboard", "gap", "radar", "size") for fmt in ("png", "svg", "pdf")}
REPORT_FILES |= {"leaderboard.md", "leaderboard.csv", "leaderboard.tex", "index.html"}


def _result(runs: Path, task: str, metrics: dict[str, float], n_shot: int, *, model: str = "tiny-model",
            finished: str = "2026-01-01T00:00:00+00:00", metadata: dict | None = None, deviations: tuple = (),
            output_type: str = "multiple_choice", n: int = 5, limit: bool = True) -> RunResult:
    """A complete result of ``task`` on ``n`` docs (run with --limit n unless ``limit`` is false) written to
    ``runs``, as `harness run` writes one."""
    info = catalogue().get(task)
    limited = [f"--limit {n}: only the first {n} docs of each (sub)task were evaluated"] if limit else []
    result = RunResult(
        model=model, task=task, kind=info.kind if info else "task",
        primary_metric=info.primary_metric if info else next(iter(metrics)),
        metrics={name: MetricValue(value, 0.01) for name, value in metrics.items()}, n=n, num_fewshot=n_shot,
        provenance={"deviations": [*limited, *deviations],
                    "finished": finished, "dtype": "float32", "device": "cpu"},
        metadata=info.metadata if metadata is None else metadata, output_type=output_type,
        samples_file=f"{model}__{task}.samples.jsonl",
    )
    write_json(runs / f"{model}__{task}__{finished[:19].replace(':', '')}.json", result.to_json())
    return result


def _svg_texts(path: Path) -> list[str]:
    """Every text element of an SVG chart drawn with ``svg.fonttype: none`` (text kept as text)."""
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text(encoding="utf-8"))]


@pytest.fixture
def svg_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Charts saved with their text as SVG text (the report's default draws it as paths)."""
    monkeypatch.setitem(charts.STYLE, "svg.fonttype", "none")


def _csv(out: Path) -> list[dict[str, str]]:
    with (out / "leaderboard.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def reference_lines(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, str]]:
    """(value, label) of every reference line the bar chart draws (one per reference model and benchmark)."""
    drawn: list[tuple[float, str]] = []
    original = Axes.hlines

    def hlines(self, y, *args, **kwargs):
        drawn.append((float(y), kwargs.get("label")))
        return original(self, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "hlines", hlines)
    return drawn


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


@needs("reference")
def test_every_published_figure_of_the_reference_files_is_carried_over() -> None:
    theirs = []
    for name in ("published_scores.csv", "arena_elo.csv"):  # the Arena ratings are a file of their own there
        with (REFERENCE / name).open(encoding="utf-8", newline="") as handle:
            theirs += [(r["model"], float(r["score"])) for r in csv.DictReader(handle)]
    assert sorted((s.model, s.value) for s in load_published()) == sorted(theirs)


def test_comparability_verdicts() -> None:
    ours = Score("m", "arc_challenge", 25, "accuracy", "loglikelihood-norm", 50.0, 1.0, "measured", "", "", "")
    leaderboard = _published("meta-llama/Llama-2-7b-hf", "arc_challenge")
    gpt4 = _published("openai/gpt-4", "arc_challenge")
    llama_paper = next(s for s in load_published() if s.source == "llama2_paper" and s.benchmark == "arc_challenge")
    assert comparability(ours, leaderboard) is Comparability.COMPARABLE
    assert comparability(ours, gpt4) is Comparability.LOOSELY  # letter choice vs log-likelihood
    assert comparability(ours, llama_paper) is Comparability.NOT  # 0-shot vs 25-shot


def test_gap_is_model_minus_gpt4_for_a_known_row() -> None:
    board = build([], load_published(), suite_benchmarks("open_llm_leaderboard_v1"))
    assert [b.key for b in board.benchmarks] == ["arc_challenge", "hellaswag", "mmlu", "truthfulqa", "winogrande",
                                                 "gsm8k"]
    llama = next(s for s in board.series if s.model == "meta-llama/Llama-2-7b-hf")
    assert board.gap(llama, "arc_challenge") == pytest.approx(53.07 - 96.3)
    assert board.gap(llama, "truthfulqa") is None  # GPT-4 has no TruthfulQA number
    rows = [r for r in table_rows(board) if r["model"] == "meta-llama/Llama-2-7b-hf" and r["benchmark"] == "mmlu"]
    assert rows[0]["gap_vs_baseline"] == f"{46.87 - 86.4:.2f}" and rows[0]["comparability"] == "comparable"


def test_measured_result_becomes_a_score_in_points() -> None:
    mmlu = Benchmark.of_task(catalogue()["mmlu"])
    result = RunResult(model="x", task="mmlu", kind="group", primary_metric="acc", n=10, num_fewshot=5,
                       metrics={"acc": MetricValue(0.3, 0.1), "acc_subject_mean": MetricValue(0.25, 0.05)},
                       provenance={"dtype": "float32", "device": "cpu", "deviations": []})
    score = measured_score(result, mmlu)  # the report's MMLU headline is the subject mean (metadata report_metric)
    assert score.value == pytest.approx(25.0) and score.stderr == pytest.approx(5.0)
    assert comparability(score, _published("lmsys/vicuna-7b-v1.5", "mmlu")) is Comparability.COMPARABLE
    deviating = dataclasses.replace(result, provenance={**result.provenance, "deviations": ["few-shot from dev"]})
    assert comparability(measured_score(deviating, mmlu), _published("lmsys/vicuna-7b-v1.5", "mmlu")) \
        is Comparability.LOOSELY


def test_benchmarks_come_from_task_metadata_with_defaults_for_a_users_task() -> None:
    cot = Benchmark.of_task(catalogue()["gsm8k_cot"])
    assert (cot.key, cot.label, cot.metric, cot.protocol, cot.n_shot) == ("gsm8k", "GSM8K (CoT)", "accuracy",
                                                                         "generation-cot", 5)
    own = Benchmark.of("my_quiz", {"version": 1}, "acc", "multiple_choice", 0)
    assert (own.key, own.label, own.metric, own.protocol, own.report_metric) == ("my_quiz", "my_quiz", "acc",
                                                                                "multiple_choice", None)
    assert [b.task for b in suite_benchmarks("humaneval, drop")] == ["humaneval", "drop"]
    with pytest.raises(HarnessError, match="gsm8k and gsm8k_cot both stand for benchmark gsm8k"):
        suite_benchmarks("gsm8k,gsm8k_cot")
    with pytest.raises(HarnessError, match="unknown suite or task 'nope'"):
        suite_benchmarks("open_llm_leaderboard_v1,nope")


GPT4_REPORT = {  # task: (metrics, n-shot, output type, benchmark key, expected score in the report)
    "arc_challenge": ({"acc": 0.5, "acc_norm": 0.4}, 25, "multiple_choice", "arc_challenge", "40.00"),
    "hellaswag": ({"acc": 0.6, "acc_norm": 0.8}, 10, "multiple_choice", "hellaswag", "80.00"),
    "mmlu": ({"acc": 0.3, "acc_subject_mean": 0.2}, 5, "multiple_choice", "mmlu", "20.00"),
    "winogrande": ({"acc": 0.6}, 5, "multiple_choice", "winogrande", "60.00"),
    "gsm8k_cot": ({"exact_match,strict-match": 0.2, "exact_match,flexible-extract": 0.4}, 5, "generate_until",
                  "gsm8k", "20.00"),
    "humaneval": ({"pass@1,create_test": 0.2}, 0, "generate_until", "humaneval", "20.00"),
    "drop": ({"f1": 0.4, "em": 0.2}, 3, "generate_until", "drop", "40.00"),
}


def test_gpt4_report_suite_reports_all_seven_tasks(tmp_path: Path, reference_lines: list) -> None:
    runs = tmp_path / "runs"
    for task, (metrics, n_shot, output_type, _, _) in GPT4_REPORT.items():
        _result(runs, task, metrics, n_shot, output_type=output_type)
    # A newer run of the Open LLM Leaderboard's gsm8k (5-shot, no CoT) is not the suite's gsm8k_cot: left out.
    _result(runs, "gsm8k", {"exact_match,strict-match": 0.9}, 5, finished="2026-02-01T00:00:00+00:00")
    write_report(tmp_path / "out", runs, suite="gpt4_report")
    rows = _csv(tmp_path / "out")
    measured = {r["benchmark"]: r for r in rows if r["source"] == "measured"}
    assert {key: r["score"] for key, r in measured.items()} == {v[3]: v[4] for v in GPT4_REPORT.values()}
    assert {key: r["comparability"] for key, r in measured.items()} == dict.fromkeys(measured, "comparable")
    assert measured["gsm8k"]["protocol"] == "generation-cot" and measured["humaneval"]["metric"] == "pass@1"
    gpt4 = {r["benchmark"]: r for r in rows if r["model"] == "openai/gpt-4"}
    assert set(gpt4) == set(measured)
    assert gpt4["gsm8k"]["comparability"] == "comparable"  # 5-shot CoT, as gsm8k_cot
    assert gpt4["arc_challenge"]["comparability"] == "loosely comparable"  # letter choice vs log-likelihood
    assert measured["drop"]["gap_vs_baseline"] == f"{40.0 - 80.9:.2f}"
    # Both reference models (GPT-4, GPT-3.5) get a line on each of the seven benchmarks.
    assert len(reference_lines) == 14 and (80.9, None) in reference_lines
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| GSM8K (CoT) | HumanEval | DROP |" in md
    # Each on 5 docs (< MIN_DOCS): n written beside the score, and no average.
    assert ("| tiny-model | measured here | 40.0‡ (n=5) | 80.0‡ (n=5) | 20.0‡ (n=5) | 60.0‡ (n=5) | 20.0‡ (n=5) "
            "| 20.0‡ (n=5) | 40.0‡ (n=5) | — |") in md
    assert "no published counterpart" not in md and "no openai/gpt-4 score" not in md
    assert "\nSources:\n- " in md and "\n- gpt-4 (GPT-4 report): GPT-4 Technical Report" in md
    assert {p.name for p in (tmp_path / "out").iterdir()} == REPORT_FILES


def test_a_users_own_task_is_reported_without_a_published_counterpart(tmp_path: Path, reference_lines: list,
                                                                     capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    # Run from a YAML path outside tasks/: in no catalogue, its metadata (no report keys) in its result file.
    _result(runs, "my_quiz", {"acc": 0.625}, 0, metadata={"version": 1.0})
    (runs / "notes.json").write_text('{"not": "a result"}')
    (runs / "broken.json").write_text("{")
    files = write_report(tmp_path / "out", runs, suite="my_quiz")
    assert capsys.readouterr().err.count("warning: skipped") == 2
    assert {p.name for p in files} == REPORT_FILES
    (row,) = _csv(tmp_path / "out")
    assert (row["benchmark"], row["score"], row["metric"], row["protocol"], row["comparability"]) == (
        "my_quiz", "62.50", "acc", "multiple_choice", "comparable")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| model | source | my_quiz | average |" in md and "| tiny-model | measured here | 62.5‡ (n=5) | — |" in md
    assert "my_quiz: no published counterpart (measured here only)." in md
    assert reference_lines == []  # no GPT-4 line
    assert "Sources:" not in md  # nothing published is shown, so no empty source list
    html = (tmp_path / "out" / "index.html").read_text()
    assert "my_quiz: no published counterpart" in html and "<h2>Sources</h2>" not in html


def test_an_empty_runs_folder_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    with pytest.raises(HarnessError, match="no run result in .*runs — pass the folder `harness run` wrote"):
        write_report(tmp_path / "out", tmp_path / "runs", suite="humaneval")
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_users_suite_from_an_include_path(tmp_path: Path) -> None:
    tasks = tmp_path / "my_tasks"
    tasks.mkdir()
    (tasks / "my_quiz.yaml").write_text(
        "task: my_quiz\ndataset_path: json\noutput_type: multiple_choice\ntest_split: test\n"
        "doc_to_text: '{{q}}'\ndoc_to_target: 0\ndoc_to_choice: '{{choices}}'\n"
        "metric_list:\n  - metric: acc\nmetadata:\n  version: 1.0\n  benchmark_label: My quiz\n")
    (tasks / "my_suite.yaml").write_text("group: my_suite\ntask:\n  - my_quiz\n  - winogrande\n")
    runs = tmp_path / "runs"
    _result(runs, "my_quiz", {"acc": 0.5}, 0, metadata={"version": 1.0}, n=40)
    _result(runs, "winogrande", {"acc": 0.7}, 5, n=40)
    done = run_cli("report", "--runs", str(runs), "--suite", "my_suite", "--include-path", str(tasks),
                   "--out", str(tmp_path / "out"), timeout=600)
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| model | source | My quiz | WinoGrande | average |" in md
    assert "| tiny-model | measured here | 50.0‡ (n=40) | 70.0‡ (n=40) | 60.0 |" in md  # n >= 30: averaged
    assert "My quiz: no published counterpart" in md
    unknown = run_cli("report", "--suite", "my_suite", "--out", str(tmp_path / "x"), timeout=600)
    assert unknown.returncode == 2 and "unknown suite or task 'my_suite'" in unknown.stderr


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
    assert {p.name for p in first} == {p.name for p in second} == REPORT_FILES
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


def test_a_subset_runs_chart_shows_n_on_each_bar_and_the_double_dagger(tmp_path: Path, svg_text: None) -> None:
    runs = tmp_path / "runs"
    for task, metrics, n_shot in (("arc_challenge", {"acc": 0.3, "acc_norm": 0.4}, 25),
                                  ("winogrande", {"acc": 0.6}, 5)):
        _result(runs, task, metrics, n_shot, model="small-run", n=5)  # --limit 5
        _result(runs, task, metrics, n_shot, model="full-run", n={"arc_challenge": 1172, "winogrande": 1267}[task],
                limit=False)
    write_report(tmp_path / "out", runs, suite="arc_challenge,winogrande")
    texts = _svg_texts(tmp_path / "out" / "leaderboard.svg")
    assert texts.count("n=5") == 2 and texts.count("n=1172") == 1 and texts.count("n=1267") == 1  # one per bar
    assert "small-run (measured here)‡" in texts  # the legend marks the subset run, not the full one
    assert "full-run (measured here)" in texts and "full-run (measured here)‡" not in texts
    assert "n < 30: too few docs to read (grey; left out of every average)" in texts
    footnote = " ".join(texts[texts.index(next(t for t in texts if t.startswith("Hatched"))):])  # wrapped lines
    assert "‡: measured on a subset of the docs (--limit)" in footnote and "n: the number of docs" in footnote
    gap = _svg_texts(tmp_path / "out" / "gap.svg")
    assert "small-run (measured here)‡" in gap and any("(n=5)" in t for t in gap)
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| small-run | measured here | 40.0‡ (n=5) | 60.0‡ (n=5) | — |" in md
    assert "| full-run | measured here | 40.0 | 60.0 | 50.0 |" in md  # full runs: no ‡, no n, averaged
    rows = {(r["model"], r["benchmark"]): r for r in _csv(tmp_path / "out")}
    assert rows[("small-run", "winogrande")]["n"] == "5" and rows[("full-run", "winogrande")]["n"] == "1267"
    assert rows[("openai/gpt-4", "winogrande")]["n"] == ""


def test_a_score_on_too_few_docs_is_left_out_of_every_average(tmp_path: Path, svg_text: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    # dolly-v2-3b: 500 docs each, average (40 + 60) / 2 = 50. smollm2: WinoGrande on 500 docs but
    # ARC-Challenge on MIN_DOCS - 1: no average, though its two scores would average (20 + 70) / 2 = 45.
    _result(runs, "arc_challenge", {"acc": 0.3, "acc_norm": 0.4}, 25, model="dolly-v2-3b", n=500)
    _result(runs, "winogrande", {"acc": 0.6}, 5, model="dolly-v2-3b", n=500)
    _result(runs, "arc_challenge", {"acc": 0.1, "acc_norm": 0.2}, 25, model="smollm2-135m-instruct", n=MIN_DOCS - 1)
    _result(runs, "winogrande", {"acc": 0.7}, 5, model="smollm2-135m-instruct", n=500)
    plotted: list[tuple[float, float, str]] = []
    original = Axes.scatter

    def scatter(self, x, y, *args, **kwargs):
        plotted.append((float(x), float(y), kwargs.get("label")))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "scatter", scatter)
    suite = "arc_challenge,winogrande"
    write_report(tmp_path / "out", runs, suite=suite)
    benchmarks = suite_benchmarks(suite)
    board = build(measured_scores(load_runs(runs), benchmarks), load_published(), benchmarks)
    dolly, smollm = board.series[:2]
    assert (dolly.model, smollm.model) == ("dolly-v2-3b", "smollm2-135m-instruct")
    assert board.average(dolly) == pytest.approx(50.0)
    assert board.average(smollm) is None and board.too_few(smollm) == ["arc_challenge"]
    assert board.average(smollm, ["winogrande"]) == pytest.approx(70.0)  # the 500-doc score alone still averages
    assert too_few_docs(smollm.scores["arc_challenge"]) and not too_few_docs(dolly.scores["arc_challenge"])
    n30 = dataclasses.replace(smollm.scores["arc_challenge"], n=MIN_DOCS)
    assert not too_few_docs(n30) and MIN_DOCS == 30
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| dolly-v2-3b | measured here | 40.0‡ (n=500) | 60.0‡ (n=500) | 50.0 |" in md
    assert "| smollm2-135m-instruct | measured here | 20.0‡ (n=29) | 70.0‡ (n=500) | — |" in md
    assert "no measured score of the row has fewer than 30 docs; — otherwise." in md
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<td class="num">—</td></tr>' in page and '<td class="num">50.0</td></tr>' in page
    # The size chart: dolly at its 500-doc average; smollm2 not drawn, and said to be left out.
    measured_points = [(x, y) for x, y, label in plotted if label and "measured here" in label]
    assert measured_points == [(pytest.approx(2775208960), pytest.approx(50.0))]
    size = " ".join(_svg_texts(tmp_path / "out" / "size.svg"))
    assert "too few to average" in size and "smollm2-135m-instruct" in size


OPEN_LLM_RUNS = [  # (task, metrics, n-shot) of the open_llm_leaderboard_v1 suite
    ("arc_challenge", {"acc": 0.3, "acc_norm": 0.4}, 25), ("hellaswag", {"acc": 0.3, "acc_norm": 0.5}, 10),
    ("mmlu", {"acc": 0.3, "acc_subject_mean": 0.25}, 5), ("truthfulqa_mc2", {"acc": 0.4}, 0),
    ("winogrande", {"acc": 0.6}, 5), ("gsm8k", {"exact_match,strict-match": 0.02}, 5),
]


def test_a_baseline_other_than_gpt4_names_every_chart(tmp_path: Path, svg_text: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    titles: list[str] = []
    original = Axes.set_title

    def set_title(self, label, *args, **kwargs):
        titles.append(label)
        return original(self, label, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_title", set_title)
    runs = tmp_path / "runs"
    for task, metrics, n_shot in OPEN_LLM_RUNS:
        _result(runs, task, metrics, n_shot, model="smollm2-135m-instruct", n=100)
    write_report(tmp_path / "gpt4", runs)
    assert len(titles) == 4 and sum("GPT-4" in t for t in titles) == 3  # the default: gap, radar and size
    titles.clear()
    write_report(tmp_path / "llama", runs, baseline="meta-llama/Llama-2-70b-hf")
    assert len(titles) == 4 and not any("GPT-4" in t for t in titles)
    assert titles[1:] == ["Gap to Llama-2-70b-hf (score − Llama-2-70b-hf, points)",
                          "Models against Llama-2-70b-hf (%)",
                          "Size vs average over the 6 benchmarks\nwith a Llama-2-70b-hf score"]  # TruthfulQA too
    for chart in ("gap", "radar", "size"):  # legends, colorbar label and notes too
        texts = _svg_texts(tmp_path / "llama" / f"{chart}.svg")
        assert not any("GPT-4" in t or "gpt-4" in t for t in texts), chart
        assert any("Llama-2-70b-hf" in t for t in texts), chart
    assert "points vs Llama-2-70b-hf" in _svg_texts(tmp_path / "llama" / "gap.svg")
    assert "points vs GPT-4" in _svg_texts(tmp_path / "gpt4" / "gap.svg")
    rows = {(r["model"], r["benchmark"]): r for r in _csv(tmp_path / "llama")}
    llama70 = _published("meta-llama/Llama-2-70b-hf", "winogrande").value
    assert rows[("smollm2-135m-instruct", "winogrande")]["gap_vs_baseline"] == f"{60.0 - llama70:.2f}"

