"""A results folder's record of sweep cells: descriptions, one lock per cell, states, and what is done.

Beside the result files, ``<output>/.cells/`` holds for each cell key: ``KEY.cell.json`` (what the cell
is), ``KEY.lock`` (held with ``flock`` while a process works on the cell; the kernel releases it when
that process dies, so a killed sweep never leaves a stale lock), ``KEY.state.json`` (running,
interrupted or failed, with the reason) and ``KEY.sqlite`` (its request cache). A cell is *done* when
a complete result JSON in the folder carries its key: results are found by key, never by file name.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import provenance, store
from harness.core import ResultFileError, load_result

CELLS_DIR = ".cells"


@dataclass(frozen=True)
class CellStatus:
    """One row of `harness status`: a cell (or a plain run's result) and where it stands."""

    key: str
    model: str
    task: str
    state: str  # done | running | interrupted | failed | pending
    detail: str
    result: Path | None


def _path(output: Path, key: str, suffix: str) -> Path:
    return Path(output) / CELLS_DIR / f"{key}{suffix}"


def cache_path(output: Path, key: str) -> Path:
    """The cell's request cache (SQLite)."""
    return _path(output, key, ".sqlite")


def describe(output: Path, description: dict[str, Any]) -> None:
    """Record what a cell is, so `harness status` can list it before it has a result."""
    path = _path(output, description["key"], ".cell.json")
    if not path.exists():
        store.write_json(path, description)


@contextlib.contextmanager
def cell_lock(output: Path, key: str, wait: bool) -> Iterator[bool]:
    """Hold the cell's lock while the block runs; yields False at once if another process holds it and
    ``wait`` is False. The lock file keeps the holder's host and pid for `harness status`."""
    path = _path(output, key, ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()} {os.getpid()}\n".encode(), 0)
        try:
            yield True
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(output: Path, key: str) -> str | None:
    """``host pid`` of the process holding the cell's lock, or None when nobody holds it."""
    path = _path(output, key, ".lock")
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return Path(path).read_text(encoding="utf-8").strip() or "another process"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def set_state(output: Path, key: str, state: str, **details: Any) -> None:
    """Record that a cell is running, interrupted or failed (with the reason). Best effort: on a full disk
    the record may not fit, and the failure being reported must not be replaced by that one."""
    with contextlib.suppress(OSError):
        store.write_json(_path(output, key, ".state.json"),
                         {"state": state, "at": provenance.utc_now().isoformat(), "pid": os.getpid(), **details})


def clear_state(output: Path, key: str) -> None:
    _path(output, key, ".state.json").unlink(missing_ok=True)


def _state(output: Path, key: str) -> dict[str, Any]:
    path = _path(output, key, ".state.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def cached_answers(output: Path, key: str) -> int:
    """How many answered requests the cell's cache holds (0 when it has none)."""
    path = cache_path(output, key)
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.Error:
        return 0


def results(output: Path) -> dict[str, Path]:
    """Complete result files in ``output`` by cell key (plain runs by their file name), newest last."""
    found: dict[str, Path] = {}
    for path in sorted(Path(output).glob("*.json")):
        with contextlib.suppress(OSError):
            stat = path.stat()
            key = _complete_result_key(str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if key:
                found[key] = path
    return found


@functools.lru_cache(maxsize=100_000)
def _complete_result_key(path: str, inode: int, mtime_ns: int, size: int) -> str | None:
    """A complete result file's cell key (a plain run's: its file name); None for any other file, and for
    the results of a group's member tasks (their run is the group's).

    Remembered by inode, modification time and size, so a sweep that checks each cell against the
    folder parses each file once, not once per cell. Result files are replaced by rename (a new inode),
    never rewritten in place.
    """
    try:
        result = load_result(Path(path))
    except OSError:
        return None  # being replaced: never counts as done
    except ResultFileError as exc:  # said once per file version (this is remembered), and never counts as done
        print(f"warning: skipped {exc}", file=sys.stderr)
        return None
    if result.status == "complete" and result.part_of is None:
        return (result.cell or {}).get("key") or Path(path).name
    return None


def done(output: Path, key: str) -> Path | None:
    """The result file of a finished cell, or None."""
    return results(output).get(key)


def folder_status(output: Path, descriptions: list[dict[str, Any]] | None = None) -> list[CellStatus]:
    """Every cell known in ``output`` (and in ``descriptions``, a sweep's cells) with its state, plus plain
    runs' results; cells in the order given, then the folder's other cells, then plain results."""
    output = Path(output)
    known = {d["key"]: d for d in descriptions or []}
    for path in sorted((output / CELLS_DIR).glob("*.cell.json")):
        with contextlib.suppress(OSError, ValueError):
            description = json.loads(path.read_text(encoding="utf-8"))
            known.setdefault(description["key"], description)
    finished = results(output)
    rows = []
    for key, description in known.items():
        holder = _holder(output, key)
        state = _state(output, key)
        answers = cached_answers(output, key)
        if key in finished:
            row = ("done", finished[key].name)
        elif holder:
            row = ("running", f"{holder}; {answers} answers cached")
        elif state.get("state") == "failed":
            row = ("failed", state.get("reason", ""))
        elif state.get("state") in ("running", "interrupted") or answers:
            row = ("interrupted", f"{answers} answers cached; a rerun resumes from there")
        else:
            row = ("pending", "")
        rows.append(CellStatus(key, description["model"], description["task"], row[0], row[1],
                               finished.get(key)))
    for key, path in finished.items():
        if key not in known:
            with contextlib.suppress(OSError, ResultFileError):  # replaced or removed since the scan
                result = load_result(path)
                rows.append(CellStatus(key, result.model, result.task, "done", path.name, path))
    return rows
