"""Sweep files: a YAML grid of models × tasks, expanded into cells, each identified by what decides its numbers.

A cell is one model (with its options) on one task setting. Its key is a hash of the model (name,
hub id, revision, weight files), the task (its YAML files, the sha256 of its data files), the settings
that change numbers (n-shot, limit, backend, dtype, device, chat template, seeds, generation settings) and
the versions of lm-eval and transformers — never of file names, so renaming or moving results does not redo work.
The batch size is left out: scores do not depend on it (tested), and backing off after an
out-of-memory must not make a cell new.

    output: results/sweeps/leaderboard     # where results go (default: results/sweeps/<file name>)
    tasks: [open_llm_leaderboard_v1, arc_easy, my_tasks/qa.yaml]   # tasks, suites (one cell per task), YAML paths
    include_path: my_tasks                 # folder(s) whose task YAMLs resolve by name (lm-eval's --include-path)
    num_fewshot: {arc_easy: 5}             # or one number for every task
    limit: 40                              # first N docs of each (sub)task
    seed: 42                               # lm-eval's seeds (one for all four, or [random, numpy, torch, few-shot])
    gen_kwargs: {max_gen_toks: 256}        # generation settings replacing the generation tasks' own (lm-eval's)
    batch_size: 8                          # default for every model
    models:
      - smollm2-135m-instruct
      - model: meta-llama/Llama-2-7b-chat-hf
        dtype: bfloat16
        batch_size: 4
        chat: true
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import checks, provenance
from harness.core import SEEDS, RunSpec
from harness.errors import HarnessError
from harness.paths import RESULTS_DIR

_SWEEP_KEYS = {"output", "tasks", "models", "num_fewshot", "limit", "batch_size", "dtype", "device", "backend",
               "allow_code_execution", "allow_unsandboxed_code_execution", "include_path", "seed", "gen_kwargs"}
_MODEL_KEYS = {"model", "dtype", "batch_size", "device", "backend", "chat", "system", "chat_template", "base_url",
               "tokenizer"}
_KEY_LIBRARIES = ("lm_eval", "transformers")


@dataclass(frozen=True)
class Cell:
    """One (model with options, task setting) of a sweep: the RunSpec of a single task, and its key."""

    spec: RunSpec  # with one task
    key: str

    @property
    def task(self) -> str:
        return self.spec.tasks[0]

    @property
    def label(self) -> str:
        shots = "" if self.spec.num_fewshot is None else f" {self.spec.num_fewshot}-shot"
        return f"{self.spec.model.name} × {self.task}{shots}"


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file: where its results go and its cells, in file order (models outer, tasks inner)."""

    path: Path
    output: Path
    cells: tuple[Cell, ...]


def _fail(path: Path, problem: str, fix: str) -> HarnessError:
    return HarnessError(f"sweep file {path}: {problem}", fix)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HarnessError(f"sweep file {path} does not exist", "give the path of a sweep YAML")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except checks.YAML_ERRORS as exc:
        raise _fail(path, checks.yaml_problem(exc), "fix the file: a sweep is a YAML mapping of settings") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions") from None
    if not isinstance(config, dict):
        raise _fail(path, "is not a mapping of settings", "start from the example in `harness sweep --help`")
    unknown = sorted(set(config) - _SWEEP_KEYS)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}", f"use only {', '.join(sorted(_SWEEP_KEYS))}")
    for required in ("models", "tasks"):
        if not config.get(required):
            raise _fail(path, f"no `{required}:` given", f"list at least one entry under `{required}:`")
    return config


def _model_entries(path: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    entries = []
    models = [config["models"]] if isinstance(config["models"], str) else config["models"]
    if not isinstance(models, list):
        raise _fail(path, f"`models:` is {models!r}, not a list", "list the models: `models: [NAME, …]` or entries "
                                                                  "with `- model: NAME`")
    for number, entry in enumerate(models, start=1):
        entry = {"model": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not entry.get("model"):
            raise _fail(path, f"models entry {number} names no model", "write `- NAME` or `- model: NAME` with options")
        unknown = sorted(set(entry) - _MODEL_KEYS)
        if unknown:
            raise _fail(path, f"models entry {number} ({entry['model']}) has unknown key(s) {', '.join(unknown)}",
                        f"use only {', '.join(sorted(_MODEL_KEYS))}")
        entries.append(entry)
    return entries


def _num_fewshot(path: Path, config: dict[str, Any], task: str) -> int | None:
    value = config.get("num_fewshot")
    if isinstance(value, dict):
        value = value.get(task)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise _fail(path, f"num_fewshot for {task} is {value!r}", "give a whole number ≥ 0")
    return value


def load_sweep(path: Path, default_device: str | None = None) -> Sweep:
    """Parse a sweep file and expand it into cells; every problem is a one-line error naming file and key.

    Cells without a ``device`` run on ``default_device`` (the Ray executor passes ``cuda`` when its
    cluster has GPUs), else on this machine's CUDA when present, else on the CPU.
    """
    from harness.backend_kinds import BACKENDS, default_backend
    from harness.registry import resolve_model
    from harness.runner import default_device as local_device
    from harness.tasks import check_include_paths, expand, is_yaml_path, plan
    from harness.templates import TEMPLATES

    path = Path(path)
    config = _read(path)
    tasks = config["tasks"] if isinstance(config["tasks"], list) else str(config["tasks"]).split(",")
    # Paths are made absolute (relative ones are read from the working directory): Ray workers run elsewhere.
    include = config.get("include_path") or []
    include_paths = check_include_paths(tuple(Path(str(folder)) for folder in
                                              (include if isinstance(include, list) else [include])))
    names = [str(Path(name).resolve()) if is_yaml_path(name) else name
             for name in expand([str(name).strip() for name in tasks if str(name).strip()], include_paths)]
    manager = plan(names, include_paths).manager
    limit = config.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise _fail(path, f"limit is {limit!r}", "give a whole number of docs ≥ 1, or leave it out")
    try:
        seeds = checks.seeds(config["seed"], "seed") if config.get("seed") is not None else SEEDS
    except HarnessError as error:
        raise _fail(path, error.problem, error.fix) from None
    cells = []
    for entry in _model_entries(path, config):
        device = entry.get("device", config.get("device")) or default_device or local_device()
        backend = entry.get("backend", config.get("backend")) or default_backend(device)
        if backend not in BACKENDS:
            raise _fail(path, f"unknown backend {backend!r} for {entry['model']}", f"use one of {', '.join(BACKENDS)}")
        model = resolve_model(str(entry["model"]))
        if entry.get("chat_template"):
            if entry["chat_template"] not in (*TEMPLATES, "tokenizer"):
                raise _fail(path, f"unknown chat_template {entry['chat_template']!r} for {entry['model']}",
                            f"use one of {', '.join((*TEMPLATES, 'tokenizer'))}")
            model = dataclasses.replace(model, template=entry["chat_template"])
        for task in names:
            spec = RunSpec(
                model=model,
                tasks=(task,),
                limit=limit,
                num_fewshot=_num_fewshot(path, config, task),
                batch_size=str(entry.get("batch_size", config.get("batch_size", 8))),
                device=device,
                backend=backend,
                dtype=entry.get("dtype", config.get("dtype")),
                chat=bool(entry.get("chat", False)),
                system=entry.get("system"),
                base_url=entry.get("base_url"),
                tokenizer=Path(entry["tokenizer"]) if entry.get("tokenizer") else None,
                allow_code_execution=bool(config.get("allow_code_execution", False)
                                          or config.get("allow_unsandboxed_code_execution", False)),
                allow_unsandboxed_code_execution=bool(config.get("allow_unsandboxed_code_execution", False)),
                include_paths=include_paths,
                seeds=seeds,
            )
            try:
                spec = dataclasses.replace(spec, gen_kwargs=checks.generation_kwargs(config.get("gen_kwargs"),
                                                                                     backend, "gen_kwargs"))
                checks.spec(spec, here=default_device is None)
            except HarnessError as error:
                raise _fail(path, f"{entry['model']}: {error.problem}", error.fix) from None
            cells.append(Cell(spec, cell_key(spec, manager)))
    output = Path(config.get("output") or RESULTS_DIR / "sweeps" / path.stem).resolve()
    return Sweep(path=path, output=output, cells=tuple(cells))


@functools.cache
def _key_library_versions() -> dict[str, str | None]:
    versions = provenance.library_versions()
    return {name: versions[name] for name in _KEY_LIBRARIES}


def cell_key(spec: RunSpec, manager) -> str:
    """The hash that identifies a cell: the spec's digest over its task files, data files and weights."""
    from harness.runner import weights_fingerprint
    from harness.tasks import all_yaml_files, leaf_configs

    task = spec.tasks[0]
    data = provenance.data_files(leaf_configs(manager, task))
    return spec.digest(
        weights=weights_fingerprint(spec.model),
        task_files={str(p): provenance.sha256_file(p) for p in all_yaml_files(manager, task)},
        data=data["files"] or data["sources"],
        libraries=_key_library_versions(),
    )


def cell_description(cell: Cell) -> dict[str, Any]:
    """What the results folder records about a cell (for `harness status` without the sweep file)."""
    spec = cell.spec
    return {"key": cell.key, "label": cell.label, "model": spec.model.name, "task": cell.task,
            "num_fewshot": spec.num_fewshot, "limit": spec.limit, "backend": spec.backend,
            "dtype": spec.effective_dtype, "device": spec.device, "chat": spec.chat, "batch_size": spec.batch_size}
