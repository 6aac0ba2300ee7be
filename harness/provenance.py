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
from typing import Any

from harness.paths import CHECKOUT, PACKAGE_DIR

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
    """The checkout's git commit and whether the work tree had uncommitted changes (None for an installed package)."""

    def git(*args: str) -> str | None:
        if CHECKOUT is None:
            return None
        try:
            done = subprocess.run(["git", *args], cwd=CHECKOUT, capture_output=True, text=True, timeout=10)
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


def display_path(path: Path) -> str:
    """The package's files (and a checkout's) relative to the folder above the package, so results compare across
    checkouts and installs (``harness/task_definitions/arc_easy.yaml``); others absolute."""
    resolved, root = Path(path).resolve(), PACKAGE_DIR.parent
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(resolved)


def weights(model, lm) -> dict[str, Any]:
    """The model's identity and the sha256 of each weight file a run read (``model`` is a ModelSpec)."""
    files: list[Path] = []
    if model.gguf_path is not None:
        files = [model.gguf_path]
    elif model.local_path is not None:
        files = sorted(p for p in model.local_path.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf", ".pt"})
    config = getattr(getattr(lm, "model", None), "config", None)
    return {
        "name": model.name,
        "hub_id": model.hub_id,
        "source": model.source,
        "revision": model.revision,
        "resolved_commit": getattr(config, "_commit_hash", None),
        "weight_files": {path.name: sha256_file(path) for path in files},
        "weight_dir": str(files[0].parent) if files else None,
        # where the backend read them: a GGUF file's cached float32 folder for the transformers backends
        "loaded_from": (getattr(config, "name_or_path", None)
                        or str(model.gguf_path or model.local_path or model.hub_id)),
        "architecture": model.architecture,
        "parameters": model.parameters,
        "context_length": model.context_length,
        "template": model.template,
    }


def data_files(configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where tasks' docs come from: the mirror's files (with sha256), local data files, or the hub."""
    from harness import data

    files: dict[str, str] = {}
    sources: set[str] = set()
    for config in configs.values():
        kwargs = config.get("dataset_kwargs") or {}
        if "dataset" in kwargs:  # our mirrored datasets (custom_dataset: utils.load_docs)
            mirror = data.mirror_files(kwargs["dataset"], kwargs.get("subset"))
            if mirror:
                sources.add("mirror")
                for paths in mirror.values():
                    for path in paths:
                        files[path.relative_to(data.data_dir()).as_posix()] = sha256_file(path)
            else:
                sources.add(f"hub:{data.hub_source(kwargs['dataset'], kwargs.get('subset'))}")
            continue
        local = [Path(p) for p in _data_file_paths(kwargs.get("data_files")) if Path(p).is_file()]
        if local:
            sources.add("local files")
            files.update({str(path.resolve()): sha256_file(path) for path in local})
        elif config.get("custom_dataset"):
            sources.add("task code (custom_dataset)")
        elif config.get("dataset_path"):
            name = config.get("dataset_name")
            sources.add(f"hub:{config['dataset_path']}{'/' + name if name else ''}")
        else:
            sources.add("task code (process_docs)")
    mirror_dir = data.data_dir()
    return {"sources": sorted(sources), "mirror_dir": str(mirror_dir) if mirror_dir else None,
            "files": dict(sorted(files.items()))}


def _data_file_paths(value: Any) -> list[str]:
    """The paths in a ``datasets`` ``data_files`` value (a path, a list, or a split → path(s) mapping)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [path for item in value.values() for path in _data_file_paths(item)]
    if isinstance(value, list | tuple):
        return [path for item in value for path in _data_file_paths(item)]
    return []


def tokenizer(path: Path | None) -> dict[str, Any] | None:
    """A ``--tokenizer`` given instead of the model's own: its path and the sha256 of its files."""
    if path is None:
        return None
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return {"path": str(path.resolve()), "files": {p.name: sha256_file(p) for p in files}}
