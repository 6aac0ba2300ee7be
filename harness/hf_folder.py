"""A model's tokenizer (and a GGUF file's config, or its weights dequantized) saved as a Hugging Face folder.

vLLM runs a GGUF model as the file plus a tokenizer folder, and reads the model's config from that folder
(``vllm-gguf-plugin``); lm-eval's ``vllm`` model reads the same folder with ``AutoConfig`` and
``get_tokenizer``. The folder holds the tokenizer exactly as our other backends load it (from the GGUF file, or
from ``--tokenizer``) and the config transformers reads from the GGUF file.

transformers reads a GGUF file slowly (about 20 s for the 135M embedded model, most of it parsing the file and
mapping tensor names, not dequantizing), and then holds the weights as plain float32 tensors. So the
transformers backends load a GGUF model from a folder with those float32 weights, written on its first run:
later runs load it in under a second, and compute with the same tensors, bit for bit.

Each folder is written once into the cache, whole or not at all (staged, then renamed), named for the files it
comes from (path, size, modification time; for weights, the transformers version too), so a changed file gets a
new folder. A weights folder records the GGUF file it was read from: before writing a new one for that file, the
ones an earlier version of the file, or of transformers, left are removed (4 bytes per parameter each).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from harness.errors import HarnessError, first_line
from harness.paths import CACHE_DIR
from harness.registry import ModelSpec
from harness.templates import load_tokenizer

FOLDERS = CACHE_DIR / "hf_folders"
SOURCE_FILE = "harness_source.json"  # in a weights folder: the GGUF file it was read from
DAMAGED_GGUF_FIX = "check that the file is complete (download it again), or run it with --backend llama-cpp"


def _folder_for(model: ModelSpec, tokenizer_path: Path | None, kind: str = "") -> Path:
    sources = {path.resolve(): path.stat() for path in (model.gguf_path, tokenizer_path) if path is not None}
    identity = [model.name, model.hub_id, model.revision] + [(str(path), stat.st_size, stat.st_mtime_ns)
                                                              for path, stat in sources.items()]
    if kind:  # weights as this transformers dequantizes them
        identity.append(metadata.version("transformers"))
    key = hashlib.sha256(repr(identity).encode()).hexdigest()[:16]
    return FOLDERS / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model.name)}-{key}{kind}"


def _write_whole(folder: Path, fill: Callable[[Path], None]) -> None:
    """``fill`` a staging folder beside ``folder``, then rename it: ``folder`` is whole or absent. Another
    process having written it meanwhile is as good."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        fill(staging)
        try:
            staging.rename(folder)
        except OSError:
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _gguf_config(model: ModelSpec):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(model.gguf_path.parent), gguf_file=model.gguf_path.name)
    except (OSError, ValueError, KeyError) as exc:
        raise HarnessError(f"could not read the config of {model.name} from its GGUF file: {first_line(exc)}",
                           DAMAGED_GGUF_FIX) from None


def saved_hf_folder(model: ModelSpec, tokenizer_path: Path | None = None) -> Path:
    """The folder with ``model``'s tokenizer (``tokenizer_path``'s when given) and, for a GGUF file, its config."""
    folder = _folder_for(model, tokenizer_path)
    if folder.is_dir():
        return folder
    tokenizer = load_tokenizer(model, tokenizer_path)  # one line when it cannot be loaded
    config = _gguf_config(model) if model.gguf_path is not None else None

    def fill(staging: Path) -> None:
        tokenizer.save_pretrained(staging)
        if config is not None:
            config.save_pretrained(staging)

    _write_whole(folder, fill)
    return folder


def _damaged(model: ModelSpec, exc: BaseException) -> HarnessError:
    return HarnessError(f"could not load model {model.name} from its GGUF file: {first_line(exc)}", DAMAGED_GGUF_FIX)


def dequantized_bytes(model: ModelSpec, dtype: str = "float32") -> int:
    """The size of a GGUF ``model``'s weights once dequantized to ``dtype``, from the file's tensor table."""
    import torch
    from gguf import GGUFReader

    try:
        elements = sum(int(tensor.n_elements) for tensor in GGUFReader(model.gguf_path).tensors)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise _damaged(model, exc) from None
    return elements * getattr(torch, dtype).itemsize


def save_dequantized(model: ModelSpec, out: Path, dtype: str = "float32") -> bool:
    """Write a GGUF ``model`` to ``out`` as a Hugging Face folder: the weights as transformers loads them from the
    file (``dtype``), its config without the GGUF quantization entry, its tokenizer. False, with nothing read or
    written, when the disk of ``out`` lacks room for the weights (and 1 GiB more)."""
    import torch
    from transformers import AutoModelForCausalLM

    out.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(out.parent).free < dequantized_bytes(model, dtype) + 2**30:
        return False
    try:  # the weights first: a damaged file is named as such, not as a tokenizer that cannot be read
        loaded = AutoModelForCausalLM.from_pretrained(str(model.gguf_path.parent), gguf_file=model.gguf_path.name,
                                                      dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise _damaged(model, exc) from None
    tokenizer_and_config = saved_hf_folder(model)  # one line when the file cannot give them
    del loaded.config.quantization_config  # transformers saves no model that carries it
    with torch.device("meta"):  # a shell for the loaded tensors: no second copy in memory
        plain = AutoModelForCausalLM.from_config(loaded.config, dtype=getattr(torch, dtype))
    plain.load_state_dict(loaded.state_dict(), assign=True)
    plain.generation_config = loaded.generation_config

    def fill(staging: Path) -> None:
        shutil.copytree(tokenizer_and_config, staging, dirs_exist_ok=True)
        plain.save_pretrained(staging)  # its config.json, without quantization_config, replaces the GGUF one
        (staging / SOURCE_FILE).write_text(json.dumps({"gguf": str(model.gguf_path.resolve())}))

    _write_whole(out, fill)
    return True


def _remove_stale(model: ModelSpec, current: Path) -> None:
    """Remove the weights folders read from ``model``'s GGUF path other than ``current``: an earlier version of
    the file, or of transformers, left them, and no run reads them again."""
    source = str(model.gguf_path.resolve())
    for marker in FOLDERS.glob(f"*/{SOURCE_FILE}"):
        try:
            stale = (marker.parent != current and not marker.parent.name.startswith(".")  # not another's staging
                     and json.loads(marker.read_text()).get("gguf") == source)
        except (OSError, ValueError, AttributeError):
            continue
        if stale:
            shutil.rmtree(marker.parent, ignore_errors=True)


def dequantized_folder(model: ModelSpec) -> Path | None:
    """The cached float32 folder of a GGUF ``model`` (written on first use), or None when the disk has no room
    for it (said on stderr; the GGUF file is then read each run)."""
    folder = _folder_for(model, None, kind="-float32")
    if folder.is_dir():
        return folder
    _remove_stale(model, folder)  # first: the room they took may be the room this one needs
    if save_dequantized(model, folder):
        return folder
    print(f"note: no room in {FOLDERS} for {model.name}'s float32 weights; reading its GGUF file each run "
          "(free disk space there, or set HARNESS_CACHE_DIR, to load it faster)", file=sys.stderr)
    return None
