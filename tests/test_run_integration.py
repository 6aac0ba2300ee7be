"""End to end: the CLI evaluates the embedded model on real benchmark docs and writes trustworthy files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.paths import TASKS_DIR
from harness.provenance import sha256_file
from tests.conftest import needs, random_model, run_cli

pytestmark = [needs("mirror", "embedded_model"), pytest.mark.slow]

PROVENANCE_KEYS = {
    "model", "task_yaml", "data", "harness", "libraries", "seeds", "device", "dtype", "batch_size", "limit",
    "started", "finished", "wall_seconds", "deviations",
}


@pytest.fixture(scope="module")
def two_task_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    output = tmp_path_factory.mktemp("runs")
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy,winogrande", "--limit", "20",
                   "--device", "cpu", "--output", str(output))
    assert done.returncode == 0, done.stderr[-3000:]
    return output, done.stdout


def _result(output: Path, task: str) -> dict:
    (path,) = output.glob(f"smollm2-135m-instruct__{task}__*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("task", ["arc_easy", "winogrande"])
def test_result_json_has_metrics_provenance_and_20_samples(two_task_run, task: str) -> None:
    output, stdout = two_task_run
    result = _result(output, task)
    assert result["status"] == "complete" and result["task"] == task and result["n"] == 20
    assert result["num_fewshot"] == {"arc_easy": 0, "winogrande": 5}[task]
    assert result["lm_eval_config"]["task"] == task
    for values in result["metrics"].values():
        assert 0.0 <= values["value"] <= 1.0 and values["stderr"] > 0
    assert result["primary_metric"] in result["metrics"]
    prov = result["provenance"]
    assert PROVENANCE_KEYS <= set(prov)
    assert prov["model"]["weight_files"] == {
        "SmolLM2-135M-Instruct.Q4_1.gguf": sha256_file(Path(prov["model"]["weight_dir"]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
    }
    assert prov["task_yaml"] == {f"harness/task_definitions/{task}.yaml": sha256_file(TASKS_DIR / f"{task}.yaml")}
    mirror = Path(prov["data"]["mirror_dir"])
    assert prov["data"]["files"] and all(sha256_file(mirror / f) == h for f, h in prov["data"]["files"].items())
    assert {"lm_eval", "transformers", "torch"} <= set(prov["libraries"])
    assert prov["harness"]["commit"] and prov["device"] == "cpu" and prov["dtype"] == "float32"
    assert any("--limit 20" in d for d in prov["deviations"])
    if task == "winogrande":
        assert any("train_xs" in d for d in prov["deviations"])
    assert f"{task}" in stdout and "acc" in stdout


@needs("tokenizers")
def test_results_and_answers_record_the_dtype_the_weights_were_loaded_in(tmp_path: Path) -> None:
    """Without --dtype the backend decides ('auto': a checkpoint's own dtype for transformers, bfloat16 for a
    float32 one in vLLM): a run's result and a chat bench's answers record the dtype the loaded model holds,
    never 'auto'."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = random_model(tmp_path / "tiny-llama", "llama")
    AutoModelForCausalLM.from_pretrained(folder).to(torch.bfloat16).save_pretrained(folder)
    commands = {
        "run": ("--tasks", "arc_easy", "--limit", "2"),
        "answer": ("--question-ids", "81", "--max-new-tokens", "4", "--chat-template", "llama-2-chat"),
    }
    recorded = {}
    for command, options in commands.items():
        for dtype in ("", "float32"):
            output = tmp_path / f"{command}-{dtype or 'auto'}"
            done = run_cli(command, "--model", str(folder), *options, "--device", "cpu",
                           *(("--dtype", dtype) if dtype else ()), "--output", str(output))
            assert done.returncode == 0, done.stderr[-3000:]
            (path,) = output.glob("*__arc_easy__*.json" if command == "run" else "*__mt_bench.answers.json")
            written = json.loads(path.read_text())
            recorded[command, dtype or "auto"] = (written["spec"]["effective_dtype"], written["provenance"]["dtype"])
            if command == "run":  # the table's header line says the same as the result
                assert f"dtype: {written['provenance']['dtype']}\n" in done.stdout, done.stdout
    assert recorded == {(command, dtype): (dtype, loaded) for command in commands
                        for dtype, loaded in (("auto", "bfloat16"), ("float32", "float32"))}


@pytest.mark.parametrize("task", ["arc_easy", "winogrande"])
def test_per_sample_records_agree_with_lm_eval_metrics(two_task_run, task: str) -> None:
    output, _ = two_task_run
    result = _result(output, task)
    lines = (output / result["samples_file"]).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 20
    for rec in records:
        assert rec["prompt"] and len(rec["choices"]) == len(rec["loglikelihoods"]) >= 2
        # Our prediction is the argmax log-likelihood; lm-eval's per-sample acc must agree with it.
        assert rec["metrics"]["acc"] == float(rec["prediction"] == rec["target"])
    mean_acc = sum(rec["metrics"]["acc"] for rec in records) / 20
    assert result["metrics"]["acc"]["value"] == pytest.approx(mean_acc)


def test_mmlu_reports_per_question_and_per_subject_means(tmp_path: Path) -> None:
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "mmlu", "--limit", "2",
                   "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    result = _result(tmp_path, "mmlu")
    records = [json.loads(line) for line in (tmp_path / result["samples_file"]).read_text().splitlines()]
    assert result["kind"] == "group" and len(result["subtasks"]) == 57 and len(records) == 114
    assert result["num_fewshot"] == 5
    per_question = sum(rec["correct"] for rec in records) / len(records)
    per_subject = sum(sub["acc"]["value"] for sub in result["members"].values()) / 57
    assert result["metrics"]["acc"]["value"] == pytest.approx(per_question)
    assert result["metrics"]["acc_subject_mean"]["value"] == pytest.approx(per_subject)
    assert "per-question" in result["metric_notes"]["acc"] and "unweighted" in result["metric_notes"]["acc_subject_mean"]
    assert len(result["provenance"]["task_yaml"]) == 57 + 2  # group, 57 subjects, shared template
    assert len(result["provenance"]["data"]["files"]) == 57 * 3
    # One result per subject too, each marked as part of the group and agreeing with the group's row.
    subjects = {r["task"]: r for r in map(json.loads, map(Path.read_text, tmp_path.glob("*__mmlu_*__*.json")))}
    assert len(subjects) == 57 and all(r["part_of"] == "mmlu" and r["n"] == 2 for r in subjects.values())
    assert {name: r["metrics"]["acc"] for name, r in subjects.items()} == {
        name: metrics["acc"] for name, metrics in result["members"].items()}


STORED_ARC_EASY = TASKS_DIR.parents[1] / "results" / "runs" / "smollm2-135m-instruct__arc_easy__20261122T151854Z.json"


def test_a_fresh_run_goes_through_report_and_compare(two_task_run, tmp_path: Path) -> None:
    """The files this run just wrote (not stored old ones) feed `harness report` and `harness compare`."""
    output, _ = two_task_run
    fresh = _result(output, "winogrande")
    report = run_cli("report", "--runs", str(output), "--suite", "arc_easy,winogrande", "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr[-2000:]
    with (tmp_path / "r" / "leaderboard.csv").open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["source"] == "measured"]
    measured = {row["benchmark"]: row for row in rows}
    assert float(measured["winogrande"]["score"]) == pytest.approx(100 * fresh["metrics"]["acc"]["value"])
    assert measured["winogrande"]["n"] == "20" and measured["arc_easy"]["n"] == "20"
    assert {p.name for p in (tmp_path / "r").glob("*.png")} >= {"leaderboard.png"}

    (run_a,) = output.glob("smollm2-135m-instruct__arc_easy__*Z.json")
    compared = run_cli("compare", str(run_a), str(STORED_ARC_EASY))
    assert compared.returncode == 0, compared.stderr
    correct = [[json.loads(line)["correct"] for line in path.with_suffix(".samples.jsonl").read_text().splitlines()]
               for path in (run_a, STORED_ARC_EASY)]
    shared = len(correct[0])  # the fresh run's 20 docs are the first 20 of the stored full run
    a, b = sum(correct[0]) / shared, sum(correct[1][:shared]) / shared
    row = [cell.strip() for cell in compared.stdout.splitlines()[2].split("|")]
    assert row[:5] == ["arc_easy", str(shared), f"{a:.4f}", f"{b:.4f}", f"{b - a:+.4f}"]
