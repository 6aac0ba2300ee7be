"""Finding a folder's finished cells: complete result files only, each file parsed once per process."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness import cells


def _write(path: Path, status: str, key: str | None) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"status": status, **({"cell": {"key": key}} if key else {})}))
    os.replace(temporary, path)  # as the store writes results: a new file, never rewritten in place


def test_only_complete_results_count_and_each_file_is_parsed_once(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path / "a.json", "complete", "key-a")
    _write(tmp_path / "b.json", "running", "key-b")
    _write(tmp_path / "plain.json", "complete", None)  # a plain run: known by its file name
    (tmp_path / "notes.json").write_text("not json")
    parsed: list[str] = []
    load = cells.store.load_result
    monkeypatch.setattr(cells.store, "load_result", lambda path: parsed.append(Path(path).name) or load(path))
    cells._complete_result_key.cache_clear()

    for _ in range(50):  # a sweep checks every cell against the folder
        assert cells.done(tmp_path, "key-a") == tmp_path / "a.json"
        assert cells.done(tmp_path, "key-b") is None
    assert cells.results(tmp_path) == {"key-a": tmp_path / "a.json", "plain.json": tmp_path / "plain.json"}
    assert sorted(parsed) == ["a.json", "b.json", "notes.json", "plain.json"]

    _write(tmp_path / "b.json", "complete", "key-b")  # the cell finishes: its file is replaced
    assert cells.done(tmp_path, "key-b") == tmp_path / "b.json"
    assert sorted(parsed) == ["a.json", "b.json", "b.json", "notes.json", "plain.json"]
