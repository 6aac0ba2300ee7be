"""Finding a folder's finished cells: complete result files only, each file parsed once per process."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness import cells
from harness.core import MetricValue, RunResult


def _write(path: Path, status: str, key: str | None, part_of: str | None = None) -> None:
    result = RunResult(model="m", task=path.stem, kind="task", primary_metric="acc", metrics={"acc": MetricValue(0.5)},
                       n=2, num_fewshot=0, provenance={}, status=status, cell={"key": key} if key else None,
                       part_of=part_of)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(result.to_json()))
    os.replace(temporary, path)  # as the store writes results: a new file, never rewritten in place


def test_only_complete_results_count_and_each_file_is_parsed_once(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path / "a.json", "complete", "key-a")
    _write(tmp_path / "b.json", "running", "key-b")
    _write(tmp_path / "plain.json", "complete", None)  # a plain run: known by its file name
    _write(tmp_path / "member.json", "complete", None, part_of="a-group")  # a group's member: the group is the run
    (tmp_path / "notes.json").write_text("not json")
    (tmp_path / "other.json").write_text(json.dumps({"status": "complete"}))  # JSON, but no result file
    parsed: list[str] = []
    load = cells.load_result
    monkeypatch.setattr(cells, "load_result", lambda path: parsed.append(Path(path).name) or load(path))
    cells._complete_result_key.cache_clear()

    for _ in range(50):  # a sweep checks every cell against the folder
        assert cells.done(tmp_path, "key-a") == tmp_path / "a.json"
        assert cells.done(tmp_path, "key-b") is None
    assert cells.results(tmp_path) == {"key-a": tmp_path / "a.json", "plain.json": tmp_path / "plain.json"}
    assert sorted(parsed) == ["a.json", "b.json", "member.json", "notes.json", "other.json", "plain.json"]

    _write(tmp_path / "b.json", "complete", "key-b")  # the cell finishes: its file is replaced
    assert cells.done(tmp_path, "key-b") == tmp_path / "b.json"
    assert sorted(parsed) == ["a.json", "b.json", "b.json", "member.json", "notes.json", "other.json", "plain.json"]
