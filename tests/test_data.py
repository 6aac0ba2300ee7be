"""The mirror loaders: every split at its documented size, in the hub schema; offline without a mirror fails clearly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness import HarnessError
from harness.data import check_available, load_docs
from tests.conftest import MIRROR, needs, run_cli

# Sizes from the mirror's SOURCES.md (official sizes).
SIZES = [
    ("ai2_arc", "ARC-Challenge", {"train": 1119, "validation": 299, "test": 1172}),
    ("ai2_arc", "ARC-Easy", {"train": 2251, "validation": 570, "test": 2376}),
    ("hellaswag", None, {"validation": 10042}),
    ("truthful_qa", None, {"validation": 817}),
    ("winogrande", None, {"train": 160, "validation": 1267}),
    ("gsm8k", None, {"train": 7473, "test": 1319}),
]


@needs("mirror")
@pytest.mark.parametrize(("dataset", "subset", "sizes"), SIZES)
def test_mirror_splits_have_official_sizes(dataset: str, subset: str | None, sizes: dict[str, int]) -> None:
    docs = load_docs(dataset, subset)
    assert {split: len(docs[split]) for split in docs} == sizes


@needs("mirror")
def test_mmlu_totals_match_the_official_counts() -> None:
    from harness.paths import TASKS_DIR

    subjects = [p.stem.removeprefix("mmlu_") for p in (TASKS_DIR / "mmlu").glob("mmlu_*.yaml")]
    totals = {"test": 0, "dev": 0, "validation": 0}
    for subject in subjects:
        docs = load_docs("mmlu", subject)
        for split in totals:
            totals[split] += len(docs[split])
        assert set(docs["test"]["answer"]) <= {0, 1, 2, 3}
    assert totals == {"test": 14042, "dev": 285, "validation": 1531}


@needs("mirror")
def test_first_items_read_as_the_sources_say() -> None:
    hellaswag = load_docs("hellaswag")["validation"][0]
    assert hellaswag["activity_label"] == "Roof shingle removal"
    assert hellaswag["ctx"] == "A man is sitting on a roof. he" and hellaswag["label"] == "3"
    winogrande = load_docs("winogrande")["validation"]
    assert set(winogrande["answer"]) == {"1", "2"}
    tqa = load_docs("truthful_qa")["validation"]
    assert all(sum(row["mc1_targets"]["labels"]) == 1 for row in tqa)


def test_offline_without_a_mirror_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(HarnessError, match="no local copy of ai2_arc/ARC-Easy") as caught:
        check_available("ai2_arc", "ARC-Easy")
    assert "HARNESS_DATA_DIR" in caught.value.fix and "\n" not in str(caught.value)


def _data_rows(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in stdout.splitlines()[3:] if "|" in line]


@needs("mirror")
def test_harness_data_names_each_mirror_file_with_its_sha256() -> None:
    done = run_cli("data", "--tasks", "arc_easy,winogrande")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"benchmark mirror: {MIRROR} (../shared/data beside the checkout)"
    rows = _data_rows(done.stdout)
    assert rows[0][:2] == ["arc_easy", "mirror"] and rows[3][:2] == ["winogrande", "mirror"]
    for _, _, path, sha256, check in rows:
        assert sha256 == hashlib.sha256((MIRROR / path).read_bytes()).hexdigest()
        assert check == "= SOURCES.md"
    assert [row[2] for row in rows] == ["arc/ARC-Easy/ARC-Easy-Dev.jsonl", "arc/ARC-Easy/ARC-Easy-Test.jsonl",
                                        "arc/ARC-Easy/ARC-Easy-Train.jsonl", "winogrande/dev.jsonl",
                                        "winogrande/train_xs.jsonl"]


def test_harness_data_without_the_mirror_says_the_hub_and_what_to_set(tmp_path: Path) -> None:
    empty = tmp_path / "no-mirror"
    empty.mkdir()
    done = run_cli("data", "--tasks", "arc_easy", env={"HARNESS_DATA_DIR": str(empty)})
    assert done.returncode == 0, done.stderr
    assert _data_rows(done.stdout)[0][:3] == ["arc_easy", "hub:allenai/ai2_arc/ARC-Easy", ""]
    missing = run_cli("data", "--tasks", "arc_easy", env={"HARNESS_DATA_DIR": str(tmp_path / "absent")})
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == (f"error: HARNESS_DATA_DIR={tmp_path / 'absent'} is not a folder — point it at "
                                      "the benchmark mirror (the folder holding SOURCES.md), or unset it")


def test_an_unknown_task_gets_one_line_without_lm_evals_index_warnings() -> None:
    """A name that is not ours makes lm-eval index its ~14,700 built-ins, some of which our tasks shadow on
    purpose; its warning about each of those is held back, so `harness data` (not only `run`) prints one line."""
    done = run_cli("data", "--tasks", "no_such_task")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unknown task 'no_such_task' — use a name from `harness tasks`, an lm-eval task, group or tag name, "
        "the path of a task YAML, or --include-path DIR for the folder that holds it"]
