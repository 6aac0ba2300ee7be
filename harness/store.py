"""The results store: one JSON per (model, task or group) with a per-sample ``.jsonl`` beside it, written
atomically (read back with :func:`harness.core.load_result` and :func:`harness.core.load_samples`)."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.core import RunResult, SampleRecord


def _atomic_write(path: Path, write: callable) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)  # temp files are created 0600; results are ordinary files
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: dict[str, Any]) -> None:
    _atomic_write(path, lambda handle: json.dump(payload, handle, indent=2, sort_keys=False, default=str))


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    def write(handle) -> None:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    _atomic_write(path, write)


def result_paths(output_dir: Path, model_slug: str, task: str, stamp: str) -> tuple[Path, Path]:
    """(result JSON, per-sample JSONL) for one (model, task) run."""
    stem = f"{model_slug}__{task}__{stamp}"
    return output_dir / f"{stem}.json", output_dir / f"{stem}.samples.jsonl"


def save_result(output_dir: Path, model_slug: str, stamp: str, result: RunResult,
                records: list[SampleRecord]) -> RunResult:
    """Samples first, then the result JSON, so a result file on disk always has its samples beside it;
    returns the result with its path."""
    json_path, samples_path = result_paths(output_dir, model_slug, result.task, stamp)
    write_jsonl(samples_path, (dataclasses.asdict(record) for record in records))
    saved = dataclasses.replace(result, samples_file=samples_path.name, path=json_path)
    write_json(json_path, saved.to_json())
    return saved
