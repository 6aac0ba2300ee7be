"""Shared fixtures: offline hub, the mirror in ../shared/data, and a helper to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from harness.data import data_dir  # noqa: E402

MIRROR = data_dir()
TOKENIZERS = Path(__file__).resolve().parents[2] / "shared" / "tokenizers"

needs_mirror = pytest.mark.skipif(
    MIRROR is None or not MIRROR.is_dir(),
    reason="the benchmark mirror ../shared/data (or $HARNESS_DATA_DIR) is not present on this machine",
)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` in a subprocess, offline, capturing text output."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )
