"""llama-cpp-python's OpenAI-compatible server on a free port of 127.0.0.1, for the tests that need a real server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def serve(gguf: Path, log: Path, *options: str) -> Iterator[str]:
    """The server for ``gguf`` (context 4096, ``options`` added), up and answering; yields its root URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--verbose", "false", "--n_threads", str(os.cpu_count()),
             *options],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama-cpp-python's server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        process.kill()
        process.wait(timeout=30)
