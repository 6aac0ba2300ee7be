"""Benchmark documents from the local mirror (``$HARNESS_DATA_DIR``) or the Hugging Face hub.

Every loader returns a ``datasets.DatasetDict`` in the schema of the hub dataset that lm-eval's
built-in task reads, so the same YAML templates apply to docs from either source. DROP is the
exception: its mirror is a derived file, read into the schema lm-eval's DROP ``process_docs`` makes
(passage, question, answers), which our task also gives hub docs.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import datasets

from harness.errors import HarnessError
from harness.paths import CHECKOUT

DEFAULT_MIRROR = CHECKOUT.parent / "shared" / "data" if CHECKOUT else None  # ../shared/data beside a checkout

Row = dict
Reader = Callable[[list[Path], str | None], list[Row]]


@dataclass(frozen=True)
class MirroredDataset:
    """A hub dataset and where the same documents lie in the mirror."""

    name: str
    hub_path: str
    hub_config: Callable[[str | None], str | None]
    split_files: Callable[[str | None], dict[str, tuple[str, ...]]]
    reader: Reader


def data_dir() -> Path | None:
    """The mirror folder: ``$HARNESS_DATA_DIR`` when set, else ``../shared/data`` beside the project."""
    configured = os.environ.get("HARNESS_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return DEFAULT_MIRROR.resolve() if DEFAULT_MIRROR is not None and DEFAULT_MIRROR.is_dir() else None


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise HarnessError(
                    f"malformed row in {path} line {line_number}: {exc.msg}",
                    "restore the file from its source (see the mirror's SOURCES.md)",
                ) from None


def _read_arc(paths: list[Path], config: str | None) -> list[Row]:
    return [
        {
            "id": row["id"],
            "question": row["question"]["stem"],
            "choices": {
                "text": [choice["text"] for choice in row["question"]["choices"]],
                "label": [choice["label"] for choice in row["question"]["choices"]],
            },
            "answerKey": row["answerKey"],
        }
        for path in paths
        for row in _jsonl(path)
    ]


def _read_hellaswag(paths: list[Path], config: str | None) -> list[Row]:
    """The mirror's derived text format: six lines per item (context, gold, four endings)."""
    rows: list[Row] = []
    for path in paths:
        lines = bz2.open(path, "rt", encoding="utf-8").read().split("\n")
        for index in range(len(lines) // 6):
            context, label, *endings = lines[6 * index : 6 * index + 6]
            activity_label, _, ctx = context.partition(": ")
            rows.append(
                {
                    "ind": index,
                    "activity_label": activity_label,
                    "ctx_a": ctx,
                    "ctx_b": "",
                    "ctx": ctx,
                    "endings": endings,
                    "source_id": "",
                    "split": "val",
                    "split_type": "",
                    "label": label,
                }
            )
    return rows


def _read_mmlu(paths: list[Path], config: str | None) -> list[Row]:
    rows: list[Row] = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for line_number, fields in enumerate(csv.reader(handle), start=1):
                if len(fields) != 6 or fields[5] not in ("A", "B", "C", "D"):
                    raise HarnessError(
                        f"malformed row in {path} line {line_number}: expected question,A,B,C,D,answer",
                        "restore the file from its source (see the mirror's SOURCES.md)",
                    )
                rows.append(
                    {
                        "question": fields[0],
                        "subject": config,
                        "choices": fields[1:5],
                        "answer": "ABCD".index(fields[5]),
                    }
                )
    return rows


def _read_truthfulqa(paths: list[Path], config: str | None) -> list[Row]:
    def targets(mapping: dict[str, int]) -> dict[str, list]:
        return {"choices": list(mapping), "labels": list(mapping.values())}

    return [
        {
            "question": item["question"],
            "mc1_targets": targets(item["mc1_targets"]),
            "mc2_targets": targets(item["mc2_targets"]),
        }
        for path in paths
        for item in json.loads(path.read_text(encoding="utf-8"))
    ]


def _read_winogrande(paths: list[Path], config: str | None) -> list[Row]:
    keys = ("sentence", "option1", "option2", "answer")
    return [{key: row[key] for key in keys} for path in paths for row in _jsonl(path)]


def _read_gsm8k(paths: list[Path], config: str | None) -> list[Row]:
    return [{"question": row["question"], "answer": row["answer"]} for path in paths for row in _jsonl(path)]


def _read_drop(paths: list[Path], config: str | None) -> list[Row]:
    """OpenAI simple-evals' DROP dev file ("Passage: …\nQuestion: …\nAnswer:", gold answers joined by "|")."""
    rows = []
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                try:
                    row = json.loads(line)
                    passage, question = row["context"].removeprefix("Passage: ").split("\nQuestion: ", 1)
                    answers = [[answer] for answer in row["ref_text"].split("|")]
                except (json.JSONDecodeError, KeyError, ValueError) as exc:
                    raise HarnessError(
                        f"malformed row in {path} line {line_number}: {type(exc).__name__}",
                        "restore the file from its source (see the mirror's SOURCES.md)",
                    ) from None
                rows.append({"passage": passage, "question": question.removesuffix("\nAnswer:"), "answers": answers})
    return rows


def _arc_files(config: str | None) -> dict[str, tuple[str, ...]]:
    base = f"arc/{config}/{config}"
    return {"train": (f"{base}-Train.jsonl",), "validation": (f"{base}-Dev.jsonl",), "test": (f"{base}-Test.jsonl",)}


def _mmlu_files(config: str | None) -> dict[str, tuple[str, ...]]:
    return {
        "test": (f"mmlu/test/{config}_test.csv",),
        "validation": (f"mmlu/val/{config}_val.csv",),
        "dev": (f"mmlu/dev/{config}_dev.csv",),
    }


DATASETS: dict[str, MirroredDataset] = {
    dataset.name: dataset
    for dataset in (
        MirroredDataset("ai2_arc", "allenai/ai2_arc", lambda config: config, _arc_files, _read_arc),
        MirroredDataset(
            "hellaswag",
            "Rowan/hellaswag",
            lambda config: None,
            lambda config: {"validation": ("hellaswag/hellaswag_val_full.txt.bz2",)},
            _read_hellaswag,
        ),
        MirroredDataset("mmlu", "cais/mmlu", lambda config: config, _mmlu_files, _read_mmlu),
        MirroredDataset(
            "truthful_qa",
            "truthfulqa/truthful_qa",
            lambda config: "multiple_choice",
            lambda config: {"validation": ("truthfulqa/v1/mc_task.json",)},
            _read_truthfulqa,
        ),
        MirroredDataset(
            "winogrande",
            "allenai/winogrande",
            lambda config: "winogrande_xs",
            lambda config: {"train": ("winogrande/train_xs.jsonl",), "validation": ("winogrande/dev.jsonl",)},
            _read_winogrande,
        ),
        MirroredDataset(
            "gsm8k",
            "openai/gsm8k",
            lambda config: "main",
            lambda config: {"train": ("gsm8k/train.jsonl",), "test": ("gsm8k/test.jsonl",)},
            _read_gsm8k,
        ),
        MirroredDataset(
            "drop",
            "EleutherAI/drop",
            lambda config: None,
            lambda config: {"validation": ("drop/drop_v0_dev.jsonl.gz",)},
            _read_drop,
        ),
    )
}


def _dataset(name: str) -> MirroredDataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise HarnessError(
            f"unknown mirrored dataset {name!r}", f"use one of {', '.join(sorted(DATASETS))} in dataset_kwargs"
        ) from None


def _hub_offline() -> bool:
    return any(os.environ.get(flag, "").lower() in {"1", "true", "yes"} for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def listed_checksums() -> dict[str, str]:
    """The sha256 the mirror's ``SOURCES.md`` lists for each file: table rows ``| `path` | bytes | `sha256` |``
    and ``sha256sum`` lines ``<sha256>  path``."""
    root = data_dir()
    sources = root / "SOURCES.md" if root is not None else None
    if sources is None or not sources.is_file():
        return {}
    text = sources.read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|[^|]*\|\s*`([0-9a-f]{64})`\s*\|", text, flags=re.MULTILINE)
    sums = re.findall(r"^([0-9a-f]{64})\s+\*?(\S+)\s*$", text, flags=re.MULTILINE)
    return {**{path: sha256 for sha256, path in sums}, **dict(rows)}


def hub_source(name: str, config: str | None = None) -> str:
    """The hub dataset (``path`` or ``path/config``) a mirrored dataset is read from when the mirror lacks it."""
    dataset = _dataset(name)
    hub_config = dataset.hub_config(config)
    return f"{dataset.hub_path}/{hub_config}" if hub_config else dataset.hub_path


def mirror_files(name: str, config: str | None = None) -> dict[str, list[Path]]:
    """Mirror paths per split for a dataset, or {} when no mirror holds it."""
    root = data_dir()
    if root is None:
        return {}
    files = {split: [root / rel for rel in rels] for split, rels in _dataset(name).split_files(config).items()}
    return files if all(path.is_file() for paths in files.values() for path in paths) else {}


def check_available(name: str, config: str | None = None) -> None:
    """Raise a one-line error when the docs can come neither from the mirror nor from the hub."""
    if mirror_files(name, config) or not _hub_offline():
        return
    where = os.environ.get("HARNESS_DATA_DIR") or DEFAULT_MIRROR
    raise HarnessError(
        f"no local copy of {name}{'/' + config if config else ''} "
        f"{f'under {where}' if where else '(no mirror: HARNESS_DATA_DIR is not set)'} and the Hugging Face hub is offline",
        "set HARNESS_DATA_DIR to a mirror of the benchmark files (see shared/data/SOURCES.md) or go online "
        "and unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE",
    )


def load_docs(name: str, config: str | None = None) -> datasets.DatasetDict:
    """All splits of a dataset in its hub schema, read from the mirror when it has them."""
    dataset = _dataset(name)
    files = mirror_files(name, config)
    if files:
        return datasets.DatasetDict(
            {split: datasets.Dataset.from_list(dataset.reader(paths, config)) for split, paths in files.items()}
        )
    check_available(name, config)
    try:
        return datasets.load_dataset(dataset.hub_path, dataset.hub_config(config))
    except Exception as exc:  # network errors take many forms; name the dataset and the fix
        raise HarnessError(
            f"could not download {dataset.hub_path} from the Hugging Face hub ({type(exc).__name__})",
            "set HARNESS_DATA_DIR to a local mirror of the benchmark files",
        ) from None
