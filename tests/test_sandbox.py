"""The sandbox that runs model-written code: hostile programs are stopped or contained and count as failed.

The escapes themselves are in ``tests/sandbox_escapes.py``; here they run as root (programs as ``nobody``
in bubblewrap's container) and as an unprivileged user (bubblewrap in a user namespace), and afterwards
no process of the sandbox's user may be left.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import sandbox
from harness.errors import HarnessError
from harness.task_hooks import ALLOW_CODE_EXECUTION, load_humaneval, pass_at_k
from tests import sandbox_escapes
from tests.conftest import needs, run_cli

QUICK = sandbox_escapes.LIMITS
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nobody_before() -> set[int]:
    return sandbox_escapes.processes_of(sandbox.NOBODY)


@needs("bubblewrap", "root")
@pytest.mark.parametrize("escape", sorted(sandbox_escapes.ESCAPES))
def test_an_escape_as_root_is_contained(escape: str, tmp_path: Path, nobody_before: set[int]) -> None:
    assert sandbox.isolation().container == "bubblewrap" and sandbox.isolation().user == "nobody"
    assert sandbox_escapes.ESCAPES[escape](tmp_path) is None
    time.sleep(0.3)
    assert sandbox_escapes.processes_of(sandbox.NOBODY) <= nobody_before, "a process of the sandbox user is left"


@needs("bubblewrap", "root")
def test_every_escape_as_an_unprivileged_user_is_contained() -> None:
    """The same escapes with the harness itself running as ``nobody``: bubblewrap in a user namespace."""
    done = subprocess.run(
        ["setpriv", f"--reuid={sandbox.NOBODY}", f"--regid={sandbox.NOBODY}", "--clear-groups", "--",
         sys.executable, "-m", "tests.sandbox_escapes"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": "/tmp", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [v["escape"] for v in verdicts] == [*sandbox_escapes.ESCAPES, "processes left"]
    assert all(v["container"] == "bubblewrap" for v in verdicts), verdicts
    assert [v for v in verdicts if v["escaped"] is not None] == []


@pytest.mark.parametrize("escape", ["fork_and_exit_zero", "setsid_child_after_exit", "setsid_child_on_timeout"])
def test_without_the_container_the_supervisor_still_kills_every_child(escape: str, monkeypatch) -> None:
    monkeypatch.setattr(sandbox, "isolation", lambda: sandbox.Isolation(None, "the calling user", "test"))
    assert sandbox_escapes.ESCAPES[escape](Path("/nonexistent")) is None


def test_without_a_container_code_runs_only_when_unsandboxed_is_allowed(monkeypatch) -> None:
    monkeypatch.setattr(sandbox, "isolation", lambda: sandbox.Isolation(None, "the calling user", "no bwrap"))
    with pytest.raises(HarnessError, match="no OS-level sandbox: no bwrap.*--allow-unsandboxed-code-execution"):
        sandbox.require_permission(True)
    sandbox.require_permission(True, unsandboxed=True)
    monkeypatch.setenv(ALLOW_CODE_EXECUTION, "unsandboxed")
    assert pass_at_k(["assert x == 1"], [["x = 1", "x = 2"]], [1]) == {"pass@1": 0.5}


def test_a_correct_program_passes_and_a_wrong_one_fails() -> None:
    assert sandbox.run_program("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\n", QUICK).passed
    outcome = sandbox.run_program("def add(a, b):\n    return a * b\nassert add(2, 3) == 5, 'wrong sum'\n", QUICK)
    assert not outcome.passed and "AssertionError: wrong sum" in outcome.reason


def test_an_endless_loop_is_stopped() -> None:
    started = time.monotonic()
    outcome = sandbox.run_program("while True:\n    pass\n", QUICK)
    assert not outcome.passed and ("timed out" in outcome.reason or "SIGXCPU" in outcome.reason or
                                   "SIGKILL" in outcome.reason), outcome
    assert time.monotonic() - started < 15


def test_allocating_ten_gigabytes_fails_without_taking_the_memory() -> None:
    outcome = sandbox.run_program("block = bytearray(10 * 1024 ** 3)\nprint(len(block))\n", QUICK)
    assert not outcome.passed and "MemoryError" in outcome.reason, outcome


def test_network_is_unreachable() -> None:
    """Both the socket module and the raw _socket module: nothing reaches a server listening on 127.0.0.1."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                connections.append(listener.accept())
            except OSError:
                continue

    watcher = threading.Thread(target=accept)
    watcher.start()
    for program in (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
                    f"import _socket\ns = _socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))\n"):
        assert not sandbox.run_program(program, QUICK).passed
    watcher.join()
    listener.close()
    assert connections == [], "a sandboxed program reached a local server"


def test_the_program_sees_no_secrets_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_API_KEY", "sk-should-not-leak")
    assert sandbox.run_program("import os\nassert 'HARNESS_API_KEY' not in os.environ\n", QUICK).passed


def test_code_execution_is_refused_unless_allowed(monkeypatch) -> None:
    with pytest.raises(HarnessError, match="--allow-code-execution"):
        sandbox.require_permission(False)
    monkeypatch.delenv(ALLOW_CODE_EXECUTION, raising=False)
    with pytest.raises(HarnessError, match="--allow-code-execution"):
        pass_at_k(["assert True"], [["pass"]], [1])


def test_humaneval_canonical_solutions_pass_and_empty_bodies_fail(monkeypatch) -> None:
    monkeypatch.setenv(ALLOW_CODE_EXECUTION, "1")
    problems = load_humaneval()["test"].select(range(3))
    for problem in problems:
        test = f"{problem['test']}\ncheck({problem['entry_point']})"
        assert pass_at_k([test], [[problem["prompt"] + problem["canonical_solution"]]], [1]) == {"pass@1": 1.0}
        assert pass_at_k([test], [[problem["prompt"] + "    pass\n"]], [1]) == {"pass@1": 0.0}


def test_pass_at_k_is_the_unbiased_estimator(monkeypatch) -> None:
    """n = 4 programs, 2 correct: pass@1 = 2/4, pass@2 = 1 - C(2,2)/C(4,2) = 5/6."""
    monkeypatch.setenv(ALLOW_CODE_EXECUTION, "1")
    programs = ["x = 1", "x = 2", "x = 1", "x = 3"]
    assert pass_at_k(["assert x == 1"], [programs], [1, 2]) == pytest.approx({"pass@1": 0.5, "pass@2": 5 / 6})


def test_run_refuses_humaneval_without_permission(tmp_path: Path) -> None:
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "humaneval", "--output", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "runs code written by the model" in last and "--allow-code-execution" in last
    assert not list(tmp_path.glob("*.json"))


def test_run_without_a_container_refuses_code_unless_unsandboxed_is_allowed(tmp_path: Path) -> None:
    """No bubblewrap on PATH: one line naming both ways out, exit 2, before any model loads; nothing written."""
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "humaneval", "--allow-code-execution",
                   "--output", str(tmp_path), env={"PATH": str(tmp_path / "no-programs-here")})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "no OS-level sandbox: bubblewrap (bwrap) is not installed" in last
    assert "apt-get install bubblewrap" in last and "--allow-unsandboxed-code-execution" in last
    assert list(tmp_path.iterdir()) == []
