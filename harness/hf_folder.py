"""A model's tokenizer (and a GGUF file's config) saved as a Hugging Face folder, for backends that take paths.

vLLM runs a GGUF model as the file plus a tokenizer folder, and reads the model's config from that folder
(``vllm-gguf-plugin``); lm-eval's ``vllm`` model reads the same folder with ``AutoConfig`` and
``get_tokenizer``. The folder holds the tokenizer exactly as our other backends load it (from the GGUF file, or
from ``--tokenizer``) and the config transformers reads from the GGUF file. It is written once into the cache,
named for the files it comes from (path, size, modification time), so a changed file gets a new folder.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import CACHE_DIR
from harness.registry import ModelSpec
from harness.templates import load_tokenizer

FOLDERS = CACHE_DIR / "hf_folders"


def _folder_for(model: ModelSpec, tokenizer_path: Path | None) -> Path:
    sources = {path.resolve(): path.stat() for path in (model.gguf_path, tokenizer_path) if path is not None}
    identity = [model.name, model.hub_id, model.revision] + [(str(path), stat.st_size, stat.st_mtime_ns)
                                                              for path, stat in sources.items()]
    key = hashlib.sha256(repr(identity).encode()).hexdigest()[:16]
    return FOLDERS / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model.name)}-{key}"


def saved_hf_folder(model: ModelSpec, tokenizer_path: Path | None = None) -> Path:
    """The folder with ``model``'s tokenizer (``tokenizer_path``'s when given) and, for a GGUF file, its config."""
    from transformers import AutoConfig

    folder = _folder_for(model, tokenizer_path)
    if folder.is_dir():
        return folder
    tokenizer = load_tokenizer(model, tokenizer_path)  # one line when it cannot be loaded
    FOLDERS.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=FOLDERS, prefix=".staging-"))
    try:
        tokenizer.save_pretrained(staging)
        if model.gguf_path is not None:
            try:
                config = AutoConfig.from_pretrained(str(model.gguf_path.parent), gguf_file=model.gguf_path.name)
            except (OSError, ValueError, KeyError) as exc:
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise HarnessError(f"could not read the config of {model.name} from its GGUF file: {first_line}",
                                   "check that the file is complete (download it again), or run it with "
                                   "--backend llama-cpp") from None
            config.save_pretrained(staging)
        try:
            staging.rename(folder)  # whole or not at all
        except OSError:
            if not folder.is_dir():  # not another run having written it meanwhile
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
