"""`harness export`: real result files → model-index cards and .eval_results YAML, read back with huggingface_hub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from huggingface_hub import ModelCard, parse_eval_result_entries

from harness.core import load_result
from tests.conftest import run_cli

DATA = Path(__file__).parent / "data"
WINOGRANDE_5SHOT = DATA / "smollm2-135m-instruct__winogrande__20261122T155522Z.json"
WINOGRANDE_0SHOT = DATA / "smollm2-135m-instruct__winogrande__20261122T160952Z.json"
ARC_CHALLENGE = DATA / "smollm2-135m-instruct__arc_challenge__20261122T155522Z.json"


def _fails_in_one_line(done, message: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and message in lines[0] and " — " in lines[0], done.stderr
    return lines[0]


def test_model_index_card_carries_the_result(tmp_path: Path) -> None:
    result = load_result(WINOGRANDE_5SHOT)
    done = run_cli("export", str(WINOGRANDE_5SHOT), "--format", "model-index", "--out", str(tmp_path),
                   "--allow-subset")
    assert done.returncode == 0, done.stderr
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.model_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    head = card.data.eval_results[0]
    assert len(card.data.eval_results) == 1  # winogrande has one metric
    assert head.metric_type == result.primary_metric == "acc"
    assert head.metric_value == 100 * result.metrics["acc"].value == 100 * 0.3333333333333333
    assert (head.dataset_type, head.dataset_config, head.dataset_split) == (
        result.lm_eval_config["dataset_path"], result.lm_eval_config["dataset_name"], "validation")
    assert head.dataset_type == "allenai/winogrande" and head.dataset_config == "winogrande_xs"
    assert head.dataset_args == {"num_few_shot": result.num_fewshot} == {"num_few_shot": 5}
    assert head.dataset_name == "winogrande (5-shot)" and head.task_type == "text-generation"
    assert head.metric_name == "accuracy (%) — subset: first 3 of 1267 docs"
    assert head.source_url == WINOGRANDE_5SHOT.resolve().as_uri()
    assert head.source_name.startswith("open-llm-harness 0.1.0 (87bc6cd0f84a): ")
    assert "| winogrande | winogrande | allenai/winogrande/winogrande_xs | validation | 5 | accuracy (%) | 33.33 | " \
           "33.33 | 3 of 1267 (subset) |" in card.text


def test_eval_results_file_carries_the_result(tmp_path: Path) -> None:
    result = load_result(WINOGRANDE_0SHOT)
    done = run_cli("export", str(WINOGRANDE_0SHOT), "--format", "hf-eval-results", "--out", str(tmp_path),
                   "--allow-subset")
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / ".eval_results").iterdir())
    assert [f.name for f in files] == ["winogrande_0shot_limit3.yaml"]
    raw = yaml.safe_load(files[0].read_text(encoding="utf-8"))
    assert isinstance(raw, list) and len(raw) == 1
    assert {"id", "task_id"} <= set(raw[0]["dataset"]) and "value" in raw[0]  # the spec's required keys
    (entry,) = parse_eval_result_entries(raw)
    assert entry.dataset_id == result.lm_eval_config["dataset_path"] == "allenai/winogrande"
    assert entry.task_id == result.lm_eval_config["dataset_name"] == "winogrande_xs"
    assert entry.value == 100 * result.metrics[result.primary_metric].value == 100 * 0.3333333333333333
    assert entry.date == result.finished == "2026-11-22T16:10:03.780074+00:00"
    assert entry.source_url == WINOGRANDE_0SHOT.resolve().as_uri()
    assert entry.notes.startswith("open-llm-harness task winogrande; 0-shot; split validation; metric acc in percent, "
                                  "stderr 33.33; gguf weights SmolLM2-135M-Instruct.Q4_1.gguf; subset: first 3 of "
                                  "1267 docs (--limit); deviation: ")
    assert "0-shot (--num-fewshot) instead of the task's pinned 5-shot" in entry.notes


def test_subset_is_refused_without_allow_subset(tmp_path: Path) -> None:
    done = run_cli("export", str(ARC_CHALLENGE), "--format", "model-index", "--out", str(tmp_path / "out"))
    line = _fails_in_one_line(done, "is a --limit subset (first 3 of 1172 docs)")
    assert "--allow-subset" in line
    assert not (tmp_path / "out").exists()


def test_folder_export_writes_one_file_per_result(tmp_path: Path) -> None:
    done = run_cli("export", str(DATA), "--format", "hf-eval-results", "--out", str(tmp_path), "--allow-subset")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / ".eval_results"
    expected = {"arc_challenge_25shot_limit3.yaml": (ARC_CHALLENGE, "allenai/ai2_arc", "ARC-Challenge"),
                "winogrande_0shot_limit3.yaml": (WINOGRANDE_0SHOT, "allenai/winogrande", "winogrande_xs"),
                "winogrande_5shot_limit3.yaml": (WINOGRANDE_5SHOT, "allenai/winogrande", "winogrande_xs")}
    assert sorted(f.name for f in folder.iterdir()) == sorted(expected)
    for name, (source, dataset_id, task_id) in expected.items():
        (entry,) = parse_eval_result_entries(yaml.safe_load((folder / name).read_text(encoding="utf-8")))
        result = load_result(source)
        assert (entry.dataset_id, entry.task_id, entry.source_url) == (dataset_id, task_id, source.resolve().as_uri())
        assert entry.value == 100 * result.metrics[result.primary_metric].value
        assert f"; {result.num_fewshot}-shot; " in entry.notes
    arc_notes = (folder / "arc_challenge_25shot_limit3.yaml").read_text(encoding="utf-8")
    assert "arc_challenge; 25-shot; split test; metric acc_norm" in arc_notes


def test_folder_model_index_refuses_two_results_on_one_split(tmp_path: Path) -> None:
    done = run_cli("export", str(DATA), "--format", "model-index", "--out", str(tmp_path / "out"), "--allow-subset")
    _fails_in_one_line(done, "are both results on allenai/winogrande winogrande_xs validation")
    assert not (tmp_path / "out" / "README.md").exists()


def _mmlu_run(folder: Path) -> dict[str, float]:
    """A group result and its two member results of one run, made from a real result file."""
    base = json.loads(WINOGRANDE_5SHOT.read_text(encoding="utf-8"))
    values = {"mmlu_anatomy": 0.25, "mmlu_astronomy": 0.5}
    for task, value in values.items():
        config = {**base["lm_eval_config"], "task": task, "dataset_path": "cais/mmlu",
                  "dataset_name": task.removeprefix("mmlu_"), "test_split": "test", "validation_split": "validation"}
        member = {**base, "task": task, "kind": "task", "part_of": "mmlu", "lm_eval_config": config,
                  "metrics": {"acc": {"value": value, "stderr": 0.1}},
                  "n_samples": {task: {"original": 3, "effective": 3}}}
        (folder / f"m__{task}__20261122T155522Z.json").write_text(json.dumps(member), encoding="utf-8")
    group = {**base, "task": "mmlu", "kind": "group", "subtasks": list(values), "primary_metric": "acc",
             "metrics": {"acc": {"value": 0.4, "stderr": 0.05}, "acc_subject_mean": {"value": 0.375, "stderr": 0.07}},
             "metadata": {"report_metric": "acc_subject_mean", "benchmark_label": "MMLU"},
             "lm_eval_config": {"group": "mmlu"}, "n_samples": {t: {"original": 3, "effective": 3} for t in values}}
    (folder / "m__mmlu__20261122T155522Z.json").write_text(json.dumps(group), encoding="utf-8")
    return values


def test_group_and_member_results_are_exported(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    values = _mmlu_run(runs)
    shutil.copy(WINOGRANDE_5SHOT.with_suffix(".samples.jsonl"), runs / "m__mmlu__20261122T155522Z.samples.jsonl")
    done = run_cli("export", str(runs), "--format", "model-index", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr  # no subset: every doc of these (made-up) splits was evaluated
    results = ModelCard.load(tmp_path / "out" / "README.md").data.eval_results
    by_dataset = {(r.dataset_type, r.dataset_config, r.metric_type): r for r in results}
    group = by_dataset[("cais/mmlu", None, "acc_subject_mean")]
    assert group.metric_value == 100 * 0.375 and group.dataset_split == "test" and group.dataset_name == "MMLU (5-shot)"
    assert group.metric_name == "accuracy (unweighted mean over subjects) (%)"
    assert by_dataset[("cais/mmlu", None, "acc")].metric_value == 100 * 0.4
    assert results.index(group) < results.index(by_dataset[("cais/mmlu", None, "acc")])  # the headline comes first
    for task, value in values.items():
        assert by_dataset[("cais/mmlu", task.removeprefix("mmlu_"), "acc")].metric_value == 100 * value
    assert len(results) == 4
    (runs / "m__mmlu_anatomy__20261122T155522Z.json").unlink()
    done = run_cli("export", str(runs / "m__mmlu__20261122T155522Z.json"), "--format", "hf-eval-results", "--out",
                   str(tmp_path / "alone"))
    _fails_in_one_line(done, "group mmlu: its member task results are not beside it")


def test_a_damaged_result_file_fails_in_one_line_and_is_passed_over_in_a_folder(tmp_path: Path) -> None:
    damaged = tmp_path / "runs" / "damaged.json"
    damaged.parent.mkdir()
    damaged.write_text(WINOGRANDE_5SHOT.read_text(encoding="utf-8")[:500], encoding="utf-8")
    done = run_cli("export", str(damaged), "--format", "hf-eval-results", "--out", str(tmp_path / "out"))
    _fails_in_one_line(done, f"cannot export {damaged}: {damaged} is not a result file (not JSON")
    assert not (tmp_path / "out").exists()
    shutil.copy(WINOGRANDE_5SHOT, damaged.parent)
    done = run_cli("export", str(damaged.parent), "--format", "model-index", "--out", str(tmp_path / "out"),
                   "--allow-subset")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"warning: skipped {damaged} is not a result file"), done.stderr
    assert "winogrande" in (tmp_path / "out" / "README.md").read_text()


def test_push_without_token_stops_before_anything(tmp_path: Path) -> None:
    home = tmp_path / "hf-home"  # no stored token there
    done = run_cli("export", str(WINOGRANDE_5SHOT), "--format", "hf-eval-results", "--out", str(tmp_path / "out"),
                   "--allow-subset", "--push", "someone/some-model",
                   env={"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_HOME": str(home),
                        "HF_TOKEN_PATH": str(home / "token")})
    _fails_in_one_line(done, "--push needs a Hugging Face token and none is set")
    assert not (tmp_path / "out").exists()
