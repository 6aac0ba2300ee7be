"""The mirror loaders: every split at its documented size, in the hub schema; offline without a mirror fails clearly."""

from __future__ import annotations

import pytest

from harness import HarnessError
from harness.data import check_available, load_docs
from tests.conftest import needs_mirror

# Sizes from the mirror's SOURCES.md (official sizes).
SIZES = [
    ("ai2_arc", "ARC-Challenge", {"train": 1119, "validation": 299, "test": 1172}),
    ("ai2_arc", "ARC-Easy", {"train": 2251, "validation": 570, "test": 2376}),
    ("hellaswag", None, {"validation": 10042}),
    ("truthful_qa", None, {"validation": 817}),
    ("winogrande", None, {"train": 160, "validation": 1267}),
    ("gsm8k", None, {"train": 7473, "test": 1319}),
]


@needs_mirror
@pytest.mark.parametrize(("dataset", "subset", "sizes"), SIZES)
def test_mirror_splits_have_official_sizes(dataset: str, subset: str | None, sizes: dict[str, int]) -> None:
    docs = load_docs(dataset, subset)
    assert {split: len(docs[split]) for split in docs} == sizes


@needs_mirror
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


@needs_mirror
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
