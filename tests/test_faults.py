"""Every row of the fault table (``tests/faults.py``) through the real CLI: its exit code, one line with
no traceback, its message, and no file left behind; and the README's table is the table's own."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.paths import TASKS_DIR
from tests import faults
from tests.conftest import FIXTURES, run_cli
from tests.scripted_server import ScriptedServer

README = Path(__file__).resolve().parents[1] / "README.md"
CACHES = (".request-cache", ".judge-cache")  # answers and judgments kept for a resume (none complete-looking)
DAMAGED = {"not-json.json": b"{cut short", "latin1.json": "{\"task\": \"caf\xe9\"}".encode("latin-1"),
           "wrong-shape.json": b'{"schema": "open-llm-harness/run-result/v1", "task": "x", "metrics": 5}',
           "nested.json": b"[" * 100_000 + b"]" * 100_000, "a-list.json": b"[1, 2]"}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.httpd.shutdown()


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


def _main(args: list[str], capfd) -> tuple[int, str]:
    """``harness ARGS`` through :func:`harness.cli.main`: its exit code and what it wrote to stderr."""
    capfd.readouterr()
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    return code, capfd.readouterr().err


def _fill(text: str, places: dict[str, str]) -> str:
    for name, value in places.items():
        text = text.replace(f"{{{name}}}", value)
    return text


@pytest.mark.parametrize("fault", faults.FAULTS, ids=[fault.name for fault in faults.FAULTS])
def test_bad_input_gets_one_line_and_leaves_nothing(fault: faults.Fault, tmp_path: Path, server, capfd) -> None:
    missing = [FIXTURES[name].missing for name in fault.needs if name in FIXTURES and not FIXTURES[name].present]
    if missing:
        pytest.skip("; ".join(missing))
    if "no_cuda" in fault.needs and not _no_cuda():
        pytest.skip("this machine has CUDA: the case of a machine without it does not apply")
    if "no_vllm" in fault.needs and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: the case of a machine without it does not apply")
    places = {"tmp": str(tmp_path), "out": str(tmp_path / "out"), "data": str(faults.DATA), "server": server.url,
              "tasks": str(TASKS_DIR)}
    for name, content in fault.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else _fill(content, places).encode())
    written = {path for path in tmp_path.rglob("*") if path.is_file()}
    if fault.server:
        server.reset([], then=fault.server)
    mount = tmp_path / "ro"
    if fault.read_only:
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], check=True)
    args = [_fill(arg, places) for arg in fault.args]
    try:
        if fault.env or fault.server:  # read when the process starts, or a server in this one: a process of its own
            done = run_cli(*args, env={key: _fill(value, places) for key, value in fault.env.items()}, timeout=600)
            code, stderr = done.returncode, done.stderr
        else:  # the CLI's own entry point in this process (imports paid once for the whole table)
            code, stderr = _main(args, capfd)
    finally:
        if fault.read_only:
            subprocess.run(["umount", str(mount)], check=True)
    lines = stderr.strip().splitlines()
    assert code == fault.exit_code, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    assert lines and re.search(fault.message, lines[-1]), f"last line: {lines[-1] if lines else ''!r}"
    assert "error:" in lines[-1]
    assert "Retrying" not in stderr and "retrying" not in stderr, "lm-eval's retry log is not held back"
    left = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file()
                  and path not in written and not set(CACHES) & set(path.parts) and not path.name.startswith("harness-error-"))
    assert left == [], f"files left behind by a refused input: {left}"


def test_the_readmes_fault_table_is_the_tables_own() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- fault table: python -m tests.faults -->\n", "\n<!-- end of fault table -->"
    assert start in text and end in text, "the README has no generated fault table"
    assert text.split(start, 1)[1].split(end, 1)[0] == faults.markdown(), "regenerate it: python -m tests.faults"
    assert len(faults.FAULTS) >= 60


def test_readers_pass_over_damaged_result_files_and_go_on(tmp_path: Path, capfd) -> None:
    """`report`, `status` (and so the sweep loader's check of which cells are done) and `export` beside five
    damaged JSON files: one warning line each, the good runs used."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for good in faults.DATA.glob("*winogrande*155522Z*"):
        (runs / good.name).write_bytes(good.read_bytes())
    for name, content in DAMAGED.items():
        (runs / name).write_bytes(content)
    code, stderr = _main(["report", "--runs", str(runs), "--out", str(tmp_path / "report"), "--suite", "winogrande"],
                         capfd)
    assert code == 0 and "Traceback" not in stderr, stderr
    skipped = [line for line in stderr.splitlines() if line.startswith("warning: skipped")]
    assert sorted(line.split()[2].rsplit("/", 1)[1] for line in skipped) == sorted(DAMAGED)
    assert "smollm2-135m-instruct" in (tmp_path / "report" / "index.html").read_text()
    code, stderr = _main(["status", str(runs)], capfd)
    assert code == 0 and "Traceback" not in stderr and stderr.count("warning: skipped") == len(DAMAGED), stderr
    code, stderr = _main(["export", str(runs), "--format", "model-index", "--out", str(tmp_path / "export"),
                          "--allow-subset"], capfd)
    assert code == 0 and "Traceback" not in stderr and stderr.count("skipped") >= len(DAMAGED), stderr
