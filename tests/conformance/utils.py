"""``!function`` helpers of the conformance tasks (lm-eval imports this file by path, beside the YAMLs).

Docs come from two places: the small JSONL files in ``data/`` beside this file (written for the tests) and
the benchmark mirror (``harness.data.data_dir()``, i.e. ``../shared/data``), read through harness.data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
from lm_eval.tasks.winogrande.preprocess_winogrande import doc_to_choice as winogrande_doc_to_choice  # noqa: F401
from lm_eval.tasks.winogrande.preprocess_winogrande import doc_to_target as winogrande_doc_to_target  # noqa: F401
from lm_eval.tasks.winogrande.preprocess_winogrande import doc_to_text as winogrande_doc_to_text  # noqa: F401

HERE = Path(__file__).resolve().parent


def load_jsonl(files: dict[str, str], rows: int | None = None, **_metadata: object) -> datasets.DatasetDict:
    """``custom_dataset``: one split per entry of ``dataset_kwargs.files`` (paths relative to this folder),
    each cut to its first ``rows`` rows when given."""
    splits = {}
    for split, name in files.items():
        with (HERE / name).open(encoding="utf-8") as handle:
            docs = [json.loads(line) for line in handle if line.strip()]
        splits[split] = datasets.Dataset.from_list(docs[:rows])
    return datasets.DatasetDict(splits)


def load_mirror(dataset: str, subset: str | None = None, **_metadata: object) -> datasets.DatasetDict:
    """``custom_dataset``: a benchmark from the mirror, in its hub schema (see harness.data)."""
    from harness import data

    if not data.mirror_files(dataset, subset):
        raise FileNotFoundError(f"the benchmark mirror ({data.data_dir()}) has no {dataset} {subset or ''}")
    return data.load_docs(dataset, subset)


def _clean(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """``process_docs``: HellaSwag rows → ``context`` / ``endings`` / ``gold`` (only the columns the task reads)."""

    def convert(doc: dict) -> dict:
        return {
            "context": _clean(doc["activity_label"] + ": " + doc["ctx_a"] + " " + doc["ctx_b"].capitalize()),
            "endings": [_clean(ending) for ending in doc["endings"]],
            "gold": int(doc["label"]),
        }

    return dataset.map(convert, remove_columns=dataset.column_names)


def hellaswag_text(doc: dict) -> str:
    """``doc_to_text``: the cleaned context, as a function rather than a template."""
    return "Complete the story.\n" + doc["context"]


def margin_results(doc: dict, results: list[tuple[float, bool]]) -> dict[str, float]:
    """``process_results`` with two custom metrics: ``hit`` (the gold choice scores highest) and
    ``gold_margin`` (gold log-likelihood minus the best other choice's)."""
    lls = [ll for ll, _ in results]
    gold = arc_gold(doc) if "answerKey" in doc else int(doc["gold"])
    best_other = max(ll for index, ll in enumerate(lls) if index != gold)
    return {"hit": float(lls[gold] > best_other), "gold_margin": lls[gold] - best_other}


def arc_gold(doc: dict) -> int:
    """``doc_to_target``: index of the answer key among the choice labels."""
    return doc["choices"]["label"].index(doc["answerKey"])
