"""Provenance: file hashes, library versions and the git commit behind every number."""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from harness.paths import PROJECT_ROOT

LIBRARIES = ("lm_eval", "transformers", "torch", "datasets", "tokenizers", "accelerate", "gguf", "numpy")


@functools.cache
def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes (cached per path for the life of the process)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """SHA-256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def git_commit() -> dict[str, str | bool | None]:
    """The project's git commit and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape the numbers."""
    names = {"lm_eval": "lm-eval"}
    versions: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for library in LIBRARIES:
        try:
            versions[library] = metadata.version(names.get(library, library))
        except metadata.PackageNotFoundError:
            versions[library] = None
    return versions


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
