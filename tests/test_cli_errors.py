"""Bad input: one line naming the problem and the fix, exit code 2, no traceback, no result file."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.registry import resolve_model
from tests.conftest import needs, run_cli


def _assert_clean_failure(done, message: str, output: Path) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[-1].startswith("error: ") and message in lines[-1], done.stderr
    assert " — " in lines[-1], "the message names a fix after the dash"
    assert not list(output.glob("*.json")) and not list(output.glob("*.jsonl"))


def test_unknown_model(tmp_path: Path) -> None:
    done = run_cli("run", "--model", "no-such-model", "--tasks", "arc_easy", "--output", str(tmp_path))
    _assert_clean_failure(done, "unknown model 'no-such-model'", tmp_path)


def test_unknown_task(tmp_path: Path) -> None:
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "no_such_task", "--output", str(tmp_path))
    _assert_clean_failure(done, "unknown task 'no_such_task'", tmp_path)


def test_data_missing_offline_without_mirror(tmp_path: Path) -> None:
    done = run_cli(
        "run", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy", "--output", str(tmp_path),
        env={"HARNESS_DATA_DIR": str(tmp_path / "no-mirror-here")},
    )
    _assert_clean_failure(done, "no local copy of ai2_arc/ARC-Easy", tmp_path)


def test_malformed_task_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad_task.yaml"
    bad.write_text("task: bad_task\ndoc_to_text: [unclosed\noutput_type: multiple_choice\n")
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", str(bad), "--output", str(tmp_path))
    _assert_clean_failure(done, "malformed YAML at line 3", tmp_path)


def test_task_yaml_with_unknown_key(tmp_path: Path) -> None:
    bad = tmp_path / "typo_task.yaml"
    bad.write_text("task: typo_task\ndataset_path: json\nnum_fewshots: 5\n")
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", str(bad), "--output", str(tmp_path))
    _assert_clean_failure(done, "unknown key(s) num_fewshots", tmp_path)


def test_weight_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"\x00" * 1024)
    done = run_cli("run", "--model", str(fake), "--tasks", "arc_easy", "--output", str(tmp_path))
    _assert_clean_failure(done, "is not a GGUF file", tmp_path)


@needs("mirror")
def test_truncated_gguf_weight_file(tmp_path: Path) -> None:
    real = resolve_model("smollm2-135m-instruct").gguf_path
    truncated = tmp_path / "truncated.gguf"
    with real.open("rb") as source:
        truncated.write_bytes(source.read(2_000_000))
    done = run_cli("run", "--model", str(truncated), "--tasks", "arc_easy", "--limit", "2", "--output", str(tmp_path))
    _assert_clean_failure(done, "could not load model truncated", tmp_path)


@pytest.mark.parametrize("argument", ["--limit=0", "--tasks=,"])
def test_bad_arguments(tmp_path: Path, argument: str) -> None:
    args = ["run", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy", "--output", str(tmp_path), argument]
    done = run_cli(*args)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: ")


def test_builtin_lm_eval_task_without_its_data_offline(tmp_path: Path) -> None:
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "lambada_openai", "--output", str(tmp_path))
    _assert_clean_failure(done, "task 'lambada_openai' could not load its documents", tmp_path)
