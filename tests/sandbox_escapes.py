"""Programs that try to leave the code sandbox, each with what must hold on the host afterwards.

``tests/test_sandbox.py`` runs every escape in-process (as root, where programs run as ``nobody``) and,
through ``python -m tests.sandbox_escapes``, as an unprivileged user (bubblewrap in a user namespace);
this module's ``main`` prints one JSON line per escape. An escape returns ``None`` when it was contained,
else what got out.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from harness import sandbox

LIMITS = sandbox.Limits(timeout_s=5, memory_bytes=512 << 20, cpu_seconds=5)
MARK = "4242.4242"  # the argument of every `sleep` an escaping child runs: its mark in `ps`


def _escaped_children() -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid=,user=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in listing.splitlines() if MARK in line and "ps -eo" not in line]


def _sleeper(prepare: str) -> str:
    """Program text: fork a child that runs ``prepare`` (posix calls) and then sleeps, marked."""
    return ("import posix\n"
            "if posix.fork() == 0:\n"
            f"    {prepare}\n"
            f"    posix.execv('/bin/sleep', ['sleep', '{MARK}'])\n")


def _no_children_left(outcome: sandbox.Outcome, expected: str) -> str | None:
    time.sleep(0.5)
    if outcome.passed or expected not in outcome.reason:
        return f"judged {outcome}, expected a failure saying {expected!r}"
    left = _escaped_children()
    return f"still running: {left}" if left else None


def fork_and_exit_zero(_: Path) -> str | None:
    program = _sleeper("posix.close(0); posix.close(1); posix.close(2)") + "raise SystemExit(0)\n"
    return _no_children_left(sandbox.run_program(program, LIMITS), "left processes running")


def setsid_child_on_timeout(_: Path) -> str | None:
    program = _sleeper("posix.setsid()") + "while True:\n    pass\n"
    return _no_children_left(sandbox.run_program(program, LIMITS), "timed out")


def setsid_child_after_exit(_: Path) -> str | None:
    program = _sleeper("posix.setsid()") + "raise SystemExit(0)\n"
    return _no_children_left(sandbox.run_program(program, LIMITS), "left processes running")


def fork_bomb(_: Path) -> str | None:
    started = time.monotonic()
    outcome = sandbox.run_program("import posix\nwhile True:\n    try:\n        posix.fork()\n"
                                  "    except OSError:\n        pass\n", LIMITS)
    took = time.monotonic() - started
    if outcome.passed or took > LIMITS.timeout_s + 10:
        return f"judged {outcome} after {took:.1f} s"
    return None


def unix_sockets(folder: Path) -> str | None:
    """A world-writable socket file and an abstract socket, both listening on the host."""
    folder.chmod(0o777)
    path = folder / "host.sock"
    abstract = f"\0harness-escape-{os.getpid()}"
    listeners, accepted = [], []
    for address in (str(path), abstract):
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(address)
        listener.listen()
        listener.settimeout(0.2)
        listeners.append(listener)
    path.chmod(0o777)

    def accept(listener: socket.socket) -> None:
        deadline = time.monotonic() + LIMITS.timeout_s + 3
        while time.monotonic() < deadline:
            try:
                accepted.append(listener.accept())
            except OSError:
                continue

    watchers = [threading.Thread(target=accept, args=(listener,)) for listener in listeners]
    for watcher in watchers:
        watcher.start()
    program = ("import _socket\nreached = []\n"
               f"for address in ({str(path)!r}, {abstract!r}):\n"
               "    try:\n        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)\n"
               "        s.connect(address)\n        reached.append(address)\n"
               "    except OSError:\n        pass\n"
               "raise SystemExit(f'verdict: reached {reached}')\n")
    outcome = sandbox.run_program(program, LIMITS)
    for watcher in watchers:
        watcher.join()
    for listener in listeners:
        listener.close()
    if accepted or "verdict: reached []" not in outcome.reason:
        return f"{len(accepted)} connection(s) reached the host; judged {outcome}"
    return None


def stderr_flood(_: Path) -> str | None:
    """512 MB written to stderr: the harness keeps a few KB (its Python allocations peak under 4 MB)."""
    flood = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(512):\n    sys.stderr.write(chunk)\n"
    tracemalloc.start()
    try:
        outcome = sandbox.run_program(flood, sandbox.Limits(timeout_s=60, cpu_seconds=60))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None if peak < 4 << 20 and outcome.passed else f"peak {peak / 2**20:.1f} MB, judged {outcome}"


def files_left_in_temporary_folders(_: Path) -> str | None:
    places = [Path(folder) / f"harness-escape-{os.getpid()}" for folder in ("/tmp", "/dev/shm", "/var/tmp")]
    program = "".join(f"try:\n    open({str(place)!r}, 'w').write('left behind')\nexcept OSError:\n    pass\n"
                      for place in places)
    outcome = sandbox.run_program(program, LIMITS)
    left = [str(place) for place in places if place.exists()]
    for place in left:
        Path(place).unlink()
    return f"left {left}" if left or not outcome.passed else None


def files_written_outside(folder: Path) -> str | None:
    """A world-writable file of the user's: neither deleted, nor overwritten, nor filled."""
    folder.chmod(0o777)
    victim = folder / "precious.txt"
    victim.write_text("keep me")
    victim.chmod(0o666)
    program = (f"import ctypes, posix\nlibc = ctypes.CDLL(None)\nfor attempt in (lambda: libc.unlink({str(victim).encode()!r}),"
               f" lambda: open({str(victim)!r}, 'w').write('gone'), lambda: posix.unlink({str(victim)!r})):\n"
               "    try:\n        attempt()\n    except OSError:\n        pass\n")
    sandbox.run_program(program, LIMITS)
    return None if victim.exists() and victim.read_text() == "keep me" else "the user's file was changed"


def parent_environment(_: Path) -> str | None:
    secret = f"sk-escape-{os.getpid()}"
    os.environ["HARNESS_ESCAPE_SECRET"] = secret
    try:
        program = ("import os\nfound = []\n"
                   f"for pid in [{os.getpid()}, os.getppid(), *os.listdir('/proc')]:\n"
                   "    try:\n"
                   f"        if {secret!r}.encode() in open(f'/proc/{{pid}}/environ', 'rb').read():\n"
                   "            found.append(pid)\n"
                   "    except (OSError, ValueError):\n        pass\n"
                   "raise SystemExit(f'verdict: found in {found}')\n")
        outcome = sandbox.run_program(program, LIMITS)
    finally:
        del os.environ["HARNESS_ESCAPE_SECRET"]
    return None if "verdict: found in []" in outcome.reason else f"judged {outcome}"


def kill_the_parent(_: Path) -> str | None:
    """A process of the user's and the harness's own parent: neither can be signalled."""
    victim = subprocess.Popen(["sleep", "300"])
    try:
        program = ("import ctypes, os\nlibc = ctypes.CDLL(None)\n"
                   f"libc.kill({victim.pid}, 9)\nlibc.kill({os.getpid()}, 9)\nlibc.kill(os.getppid(), 9)\n"
                   "libc.kill(-1, 9)\n")
        sandbox.run_program(program, LIMITS)
        time.sleep(0.2)
        return None if victim.poll() is None else "a process of the user's was killed"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


ESCAPES: dict[str, Callable[[Path], str | None]] = {
    escape.__name__: escape for escape in (
        fork_and_exit_zero, setsid_child_on_timeout, setsid_child_after_exit, fork_bomb, unix_sockets,
        stderr_flood, files_left_in_temporary_folders, files_written_outside, parent_environment,
        kill_the_parent)
}


def processes_of(uid: int) -> set[int]:
    """The live processes of a user (zombies, already ended, left out: this machine's init reaps slowly)."""
    listing = subprocess.run(["ps", "-o", "pid=,stat=", "-u", str(uid)], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in listing.splitlines() if not line.split()[1].startswith("Z")}


def main() -> None:
    """Every escape as the calling user; then no process of this user is left but this one."""
    for name, escape in ESCAPES.items():
        with tempfile.TemporaryDirectory(prefix="harness-escape-") as folder:
            print(json.dumps({"escape": name, "container": sandbox.isolation().container,
                              "escaped": escape(Path(folder))}), flush=True)
    left = processes_of(os.getuid()) - {os.getpid()}
    left = {pid for pid in left if Path(f"/proc/{pid}").exists()}  # `ps` itself has gone
    named = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in sorted(left)]
    print(json.dumps({"escape": "processes left", "container": sandbox.isolation().container,
                      "escaped": named or None}), flush=True)


if __name__ == "__main__":
    main()
