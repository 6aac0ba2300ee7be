"""Runs: a RunSpec through lm-eval's evaluator, one result JSON (+ per-sample JSONL) per (model, task)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from lm_eval.tasks._yaml_loader import load_yaml

from harness import data, provenance, samples, sandbox, store
from harness.errors import HarnessError
from harness.paths import PROJECT_ROOT, RUNS_DIR
from harness.registry import ModelSpec
from harness.request_cache import resumable
from harness.task_hooks import ALLOW_CODE_EXECUTION
from harness.tasks import catalogue, expand, task_manager, yaml_files
from harness.templates import check_chat_options, install_chat_template, load_tokenizer

SEEDS = {"random_seed": 0, "numpy_random_seed": 1234, "torch_random_seed": 1234, "fewshot_random_seed": 1234}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
_EXPECTED_WARNINGS = ("Custom kwargs can be passed", "num_fewshot > 0 but fewshot_split is None")


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's numbers."""

    model: ModelSpec
    tasks: tuple[str, ...]
    limit: int | None = None
    num_fewshot: int | None = None
    batch_size: str = "8"
    device: str = "cpu"
    backend: str = "harness"
    dtype: str | None = None
    chat: bool = False
    system: str | None = None
    base_url: str | None = None
    tokenizer: Path | None = None
    allow_code_execution: bool = False
    seeds: dict[str, int] = field(default_factory=lambda: dict(SEEDS))

    @property
    def effective_dtype(self) -> str:
        """The weights' dtype as computed in: ``--dtype``, else the registry's; a GGUF file or a server decides
        for the llama-cpp and openai-compatible backends."""
        if self.backend == "llama-cpp":
            return "as stored in the GGUF file"
        if self.backend == "openai-compatible":
            return "the server's"
        return self.dtype or self.model.dtype


@dataclass(frozen=True)
class TaskOutcome:
    """One finished (model, task): where it was written and its headline numbers."""

    task: str
    json_path: Path
    samples_path: Path
    num_fewshot: int | None
    n: int
    metrics: dict[str, dict[str, float | None]]
    primary_metric: str
    requests: dict[str, int] | None = None  # answers taken from the request cache, and computed


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _quiet_expected_warnings() -> None:
    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not any(text in record.getMessage() for text in _EXPECTED_WARNINGS)

    for name in ("lm_eval.api.task", "lm_eval.tasks.manager"):
        logging.getLogger(name).addFilter(_Drop())
    # Our tasks shadow lm-eval's built-ins of the same name on purpose; the index warns about each one.
    logging.getLogger("lm_eval.tasks._index").setLevel(logging.ERROR)
    datasets.disable_progress_bars()


def _backend_kwargs(spec: RunSpec) -> dict[str, Any]:
    """What the spec's backend is constructed with: weights (GGUF, folder or hub id), or a server."""
    model = spec.model
    if spec.backend == "openai-compatible":
        if not spec.base_url:
            raise HarnessError("--backend openai-compatible needs the server's address",
                               "pass --base-url, e.g. --base-url http://127.0.0.1:8000/v1")
        return {"base_url": spec.base_url, "model": model.hub_id or model.name,
                "tokenizer": load_tokenizer(model, spec.tokenizer)}
    if model.gguf_path is not None:
        weights = {"pretrained": str(model.gguf_path.parent), "gguf_file": model.gguf_path.name}
    elif spec.backend == "llama-cpp":
        raise HarnessError(f"--backend llama-cpp runs GGUF files, and {model.name} is not one",
                           "pass a .gguf file as --model, or use --backend harness")
    elif model.local_path is not None:
        if spec.tokenizer is None and not any((model.local_path / name).is_file() for name in _TOKENIZER_FILES):
            raise HarnessError(f"model folder {model.local_path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)})",
                               "copy the model's tokenizer files into the folder, or pass --tokenizer")
        weights = {"pretrained": str(model.local_path)}
    else:
        weights = {"pretrained": model.hub_id, "revision": model.revision}
    if spec.tokenizer is not None and spec.backend in ("harness", "hf"):
        weights["tokenizer"] = load_tokenizer(model, spec.tokenizer)
    return {**weights, "device": spec.device, "batch_size": spec.batch_size, "dtype": spec.effective_dtype}


def load_model(spec: RunSpec):
    """The spec's backend (``--backend``) for its model, with the chat template installed for ``--chat``."""
    from harness.backends import backend_class

    kwargs = _backend_kwargs(spec)
    try:
        lm = backend_class(spec.backend)(**kwargs)
    except ImportError as exc:
        raise HarnessError(f"--backend {spec.backend} needs the package {exc.name or exc}, which is not installed",
                           "install it (vLLM needs a GPU machine: pip install vllm), or choose another --backend") from None
    except (OSError, ValueError, RuntimeError, EnvironmentError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(
            f"could not load model {spec.model.name}: {first_line[:300]}",
            "check that the weight files are complete and readable (re-download them), or that the hub is reachable",
        ) from None
    if spec.chat:
        if getattr(lm, "tokenizer", None) is None:  # llama.cpp tokenizes itself; the template renders with HF's
            lm.tokenizer = load_tokenizer(spec.model, spec.tokenizer)
        install_chat_template(spec.model, lm.tokenizer)
    return lm


def weights_provenance(model: ModelSpec, lm) -> dict[str, Any]:
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
        "weight_files": {path.name: provenance.sha256_file(path) for path in files},
        "weight_dir": str(files[0].parent) if files else None,
        "architecture": model.architecture,
        "parameters": model.parameters,
        "context_length": model.context_length,
        "template": model.template,
    }


def _subtasks(result: dict[str, Any], task: str) -> list[str]:
    return list(result.get("group_subtasks", {}).get(task, [])) or [task]


def data_provenance(configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    files: dict[str, str] = {}
    sources: set[str] = set()
    for config in configs.values():
        kwargs = config.get("dataset_kwargs") or {}
        if "dataset" not in kwargs:
            sources.add(f"hub:{config.get('dataset_path')}/{config.get('dataset_name')}")
            continue
        mirror = data.mirror_files(kwargs["dataset"], kwargs.get("subset"))
        if not mirror:
            sources.add(f"hub:{config.get('dataset_path')}/{config.get('dataset_name')}")
        for paths in mirror.values():
            for path in paths:
                files[path.relative_to(data.data_dir()).as_posix()] = provenance.sha256_file(path)
    if files:
        sources.add("mirror")
    return {"sources": sorted(sources), "mirror_dir": str(data.data_dir()), "files": dict(sorted(files.items()))}


def _metrics(result_row: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """lm-eval's ``"acc,none"`` / ``"acc_stderr,none"`` keys → ``{"acc": {"value", "stderr"}}``."""

    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) and not math.isnan(float(value)) else None

    metrics: dict[str, dict[str, float | None]] = {}
    for key, value in result_row.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filter_name = key.split(",", 1)
        label = metric if filter_name == "none" else key
        metrics[label] = {"value": number(value), "stderr": number(result_row.get(f"{metric}_stderr,{filter_name}"))}
    return metrics


def _subject_mean(result: dict[str, Any], subtasks: list[str], metric: str) -> dict[str, float | None]:
    """Unweighted mean over subtasks, with the stderr of a mean of independent estimates."""
    rows = [result["results"][name] for name in subtasks]
    values = [row[f"{metric},none"] for row in rows]
    stderrs = [row.get(f"{metric}_stderr,none") for row in rows]
    stderr = math.sqrt(sum(s * s for s in stderrs)) / len(stderrs) if all(isinstance(s, float) for s in stderrs) else None
    return {"value": sum(values) / len(values), "stderr": stderr}


def _simple_evaluate(spec: RunSpec, lm, manager, task: str) -> dict[str, Any]:
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=[task],
        num_fewshot=spec.num_fewshot,
        limit=spec.limit,
        task_manager=manager,
        log_samples=True,
        device=spec.device,
        confirm_run_unsafe_code=spec.allow_code_execution,
        apply_chat_template=spec.chat,
        fewshot_as_multiturn=spec.chat,
        system_instruction=spec.system,
        **spec.seeds,
    )


def evaluate_task(spec: RunSpec, lm, manager, task: str, model_info: dict, stamp: str, output_dir: Path,
                  cache: Path | None = None, cell: dict[str, Any] | None = None) -> TaskOutcome:
    """One task through lm-eval, its result written to ``output_dir``; with ``cache``, every answered request
    is kept there as it comes (a rerun asks only for the rest); ``cell`` marks the result as a sweep cell's."""
    from harness.backends.prefix import out_of_memory

    started = provenance.utc_now()
    clock = time.perf_counter()
    try:
        if cache is None:
            result, request_counts = _simple_evaluate(spec, lm, manager, task), None
        else:
            with resumable(lm, cache) as answers:
                result = _simple_evaluate(spec, lm, manager, task)
                request_counts = answers.counts
    except RuntimeError as exc:  # torch.OutOfMemoryError is one too
        if not out_of_memory(exc):
            raise
        raise HarnessError(f"out of memory on {spec.device} while scoring {task} (the batch size was already "
                           "backed off to 1)", "use a lower-precision --dtype, a smaller model or a machine with "
                           "more memory; answers computed so far are kept in a sweep's request cache") from None
    wall = time.perf_counter() - clock
    # A YAML path resolves to the task name it declares: the top of lm-eval's task tree.
    name = task if task in result["results"] else next(iter(result["group_subtasks"]))
    subtasks = _subtasks(result, name)
    configs = {sub: result["configs"][sub] for sub in subtasks}
    info = catalogue().get(name)
    first_config = configs[subtasks[0]]
    primary = info.primary_metric if info else (first_config.get("metric_list") or [{"metric": "acc"}])[0]["metric"]
    metrics = _metrics(result["results"][name])
    if len(subtasks) > 1:
        metrics["acc_subject_mean"] = _subject_mean(result, subtasks, "acc")
    per_subtask = {sub: _metrics(result["results"][sub]) for sub in subtasks} if len(subtasks) > 1 else {}
    n_samples = {sub: result["n-samples"][sub] for sub in subtasks}
    n = sum(counts["effective"] for counts in n_samples.values())
    records = [
        rec
        for sub in subtasks
        for rec in samples.records(sub, result["samples"][sub], configs[sub], primary, _gold_index(manager, sub))
    ]
    deviations = sorted({d for config in configs.values() for d in (config.get("metadata") or {}).get("deviations", [])})
    if spec.limit is not None:
        deviations.append(f"--limit {spec.limit}: only the first {spec.limit} docs of each (sub)task were evaluated")
    if spec.chat:
        template = "the tokenizer's own" if spec.model.template == "tokenizer" else f"the {spec.model.template}"
        deviations.append(f"prompts rendered through {template} chat template, few-shot examples as conversation "
                          "turns (the pinned settings use plain prompts)")
    n_shot = result["n-shot"].get(subtasks[0])
    if info is not None and n_shot != info.num_fewshot:
        deviations.append(f"{n_shot}-shot (--num-fewshot) instead of the task's pinned {info.num_fewshot}-shot")
    payload = {
        "status": "complete",
        **({"cell": cell} if cell else {}),
        "model": model_info["name"],
        "task": name,
        "primary_metric": primary,
        "metrics": metrics,
        "metric_notes": (
            {
                "acc": "per-question mean over all subjects (lm-eval's group acc, weighted by subject size)",
                "acc_subject_mean": "unweighted mean of the per-subject accuracies",
            }
            if len(subtasks) > 1
            else {}
        ),
        "subtasks": per_subtask,
        "n": n,
        "n_samples": n_samples,
        "num_fewshot": n_shot,
        "lm_eval_config": configs if len(subtasks) > 1 else first_config,
        "provenance": {
            "model": model_info,
            "task_yaml": {
                _display_path(path): provenance.sha256_file(path)
                for sub in dict.fromkeys([name, *subtasks])
                for path in yaml_files(manager, sub)
            },
            "data": data_provenance(configs),
            "harness": {"version": _version(), **provenance.git_commit()},
            "libraries": provenance.library_versions(),
            "seeds": spec.seeds,
            "device": spec.device,
            "dtype": spec.effective_dtype,
            "batch_size": spec.batch_size,
            "backend": spec.backend,
            "server": spec.base_url,
            "request_cache": None if cache is None else {"file": cache.name, **request_counts},
            "chat_template": _chat_provenance(spec, lm),
            "code_execution": {"sandbox": sandbox.protections(), **dataclasses.asdict(sandbox.Limits())}
            if any(config.get("unsafe_code") for config in configs.values()) else None,
            "limit": spec.limit,
            "started": started.isoformat(),
            "finished": provenance.utc_now().isoformat(),
            "wall_seconds": round(wall, 3),
            "deviations": deviations,
        },
    }
    json_path, samples_path = store.result_paths(output_dir, spec.model.slug, name, stamp)
    store.save_result(json_path, samples_path, payload, records)
    return TaskOutcome(name, json_path, samples_path, n_shot, n, metrics, primary, request_counts)


def _server_request_cache(spec: RunSpec, output_dir: Path) -> Path | None:
    """For a server backend, where each answer is kept as it arrives (keyed by the run's model, server and
    prompt settings), so a run stopped by a failing server does not ask again."""
    if spec.backend != "openai-compatible":
        return None
    key = provenance.sha256_text(repr((spec.model.name, spec.model.revision, spec.base_url, spec.chat, spec.system,
                                       str(spec.tokenizer))))[:16]
    return Path(output_dir) / ".request-cache" / f"{spec.model.slug}-{key}.sqlite"


def _chat_provenance(spec: RunSpec, lm) -> dict[str, Any] | None:
    """The chat template a run's prompts went through (name, Jinja source and its sha256), or None."""
    if not spec.chat:
        return None
    jinja = lm.tokenizer.chat_template
    return {"name": spec.model.template, "system": spec.system, "fewshot_as_multiturn": True,
            "jinja": jinja, "sha256": provenance.sha256_text(jinja)}


def _gold_index(manager, task: str):
    """The gold choice index of a doc, as lm-eval's task computes it (for tasks whose target is text).

    The task is loaded on the first call only: most tasks log an index as target and never call this.
    """

    @functools.cache
    def task_obj():
        return manager.load([task])["tasks"][task]

    def gold(doc: dict) -> int:
        loaded = task_obj()
        return loaded.doc_to_text(doc) if loaded.multiple_input else loaded.doc_to_target(doc)

    return gold


def _display_path(path: Path) -> str:
    """Project files relative to the project root (so results compare across checkouts), others absolute."""
    resolved = path.resolve()
    return resolved.relative_to(PROJECT_ROOT).as_posix() if resolved.is_relative_to(PROJECT_ROOT) else str(resolved)


def _version() -> str:
    from harness import __version__

    return __version__


def _check_builtin_loads(manager, name: str) -> None:
    """An lm-eval built-in (or YAML-path) task loads its dataset on construction; fail clearly if it cannot."""
    try:
        manager.load([name])
    except Exception as exc:  # datasets/hub errors come in many types; all mean "this task cannot load here"
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise HarnessError(
            f"task {name!r} could not load its documents ({type(exc).__name__}: {first_line})",
            "check the task's dataset settings and functions; offline, point it at local files "
            "(dataset_kwargs data_files) or at the mirror",
        ) from None


def preflight(spec: RunSpec):
    """Check tasks, YAML and data before any model is loaded; returns the TaskManager to run with."""
    _quiet_expected_warnings()
    check_chat_options(spec.model, spec.chat, spec.system)
    names = expand(list(spec.tasks))
    manager = task_manager(names)  # checks YAML paths given by the user; catalogue() checks ours
    own = catalogue()
    for name in names:
        if name not in own:
            _check_builtin_loads(manager, name)
            continue
        for config in task_configs(manager, name).values():
            kwargs = config.get("dataset_kwargs")
            if kwargs and "dataset" in kwargs:
                data.check_available(kwargs["dataset"], kwargs.get("subset"))
    if any(_executes_code(manager, name) for name in names):
        sandbox.require_permission(spec.allow_code_execution)
    return names, manager


def task_configs(manager, name: str) -> dict[str, dict[str, Any]]:
    """The YAML configs (as indexed, includes followed) of a task, or of each task in one of our groups."""
    info = catalogue().get(name)
    members = info.members if info is not None and info.kind == "group" else (name,)
    configs = {}
    for member in members:
        entry = manager.task_index.get(member)
        files = yaml_files(manager, member)
        configs[member] = dict(entry.cfg) if entry is not None and entry.cfg else (
            load_yaml(files[0], resolve_func=False) if files else {})
    return configs


def _executes_code(manager, name: str) -> bool:
    """Whether a task runs model-written code (lm-eval's ``unsafe_code`` flag in its YAML)."""
    files = yaml_files(manager, name)  # the defining file first; load_yaml follows its includes
    return bool(files and load_yaml(files[0], resolve_func=False).get("unsafe_code"))


def evaluate(spec: RunSpec, output_dir: Path = RUNS_DIR) -> list[TaskOutcome]:
    """Evaluate the spec's model on each task; each task's result is written as soon as it finishes."""
    names, manager = preflight(spec)
    lm = load_model(spec)
    model_info = weights_provenance(spec.model, lm)
    stamp = provenance.utc_now().strftime("%Y%m%dT%H%M%SZ")
    cache = _server_request_cache(spec, Path(output_dir))
    with code_execution(spec):
        return [evaluate_task(spec, lm, manager, name, model_info, stamp, Path(output_dir), cache) for name in names]


@contextlib.contextmanager
def code_execution(spec: RunSpec) -> Iterator[None]:
    """Let the code tasks' scoring (harness.task_hooks.pass_at_k) run programs while the block runs, if the
    user allowed it."""
    if spec.allow_code_execution:
        os.environ[ALLOW_CODE_EXECUTION] = "1"
    try:
        yield
    finally:
        os.environ.pop(ALLOW_CODE_EXECUTION, None)
