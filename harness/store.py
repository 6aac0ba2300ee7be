"""The results store: one JSON per (model, task) with a per-sample ``.jsonl`` beside it, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = "open-llm-harness/run-result/v1"


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


def save_result(json_path: Path, samples_path: Path, result: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    """Samples first, then the result JSON, so a result file on disk always has its samples beside it."""
    write_jsonl(samples_path, samples)
    write_json(json_path, {"schema": SCHEMA, **result, "samples_file": samples_path.name})


def load_result(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
