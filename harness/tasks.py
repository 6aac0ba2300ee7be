"""Task resolution as lm-eval does it: our YAML tasks in ``harness/task_definitions/`` (checked before use), a user's folders
(``--include-path``), task YAML paths, and lm-eval's built-in tasks, groups and tags.

A *suite* is a group YAML without ``aggregate_metric_list`` whose members are all known tasks or groups
(``open_llm_leaderboard_v1``): lm-eval reports no number for such a group, so each member runs and is
reported as its own task. Any other group is run as lm-eval runs it, its numbers lm-eval's aggregation.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval.config.group import GroupConfig
from lm_eval.config.task import TaskConfig
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml

from harness import checks
from harness.core import SEEDS
from harness.errors import HarnessError
from harness.paths import TASKS_DIR

# Keys lm-eval accepts in a task or group YAML besides its config fields.
_EXTRA_KEYS = {"include", "group", "task", "tag", "class"}
_KNOWN_KEYS = {f.name for f in dataclasses.fields(TaskConfig)} | {f.name for f in dataclasses.fields(GroupConfig)}
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class TaskInfo:
    """One entry of ``harness tasks``: a task, a group lm-eval aggregates, or a suite of tasks."""

    name: str
    kind: str  # "task" | "group" | "suite"
    num_fewshot: int | None
    primary_metric: str
    protocol: str
    settings_of: str
    members: tuple[str, ...]
    deviations: tuple[str, ...]
    yaml_path: Path
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)  # the YAML's `metadata:` as written


@dataclass(frozen=True)
class TaskPlan:
    """What ``--tasks`` resolved to: the names to run (in order; a YAML path by the name it declares), what
    to hand lm-eval for each (the name, or the path), the TaskManager that indexes them all, and lm-eval's
    Task/Group objects already built for a name (``TaskManager.load``'s result; lm-eval evaluates those
    rather than building them again)."""

    names: tuple[str, ...]
    specs: dict[str, str]
    manager: TaskManager
    built: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def read_task_yaml(path: Path) -> dict[str, Any]:
    """Parse a task YAML (with its includes) and check its keys; a one-line error names what is wrong."""
    try:
        config = load_yaml(path, resolve_func=False)
    except checks.YAML_ERRORS as exc:
        raise HarnessError(f"task YAML {path}: {checks.yaml_problem(exc)}", "fix the YAML there") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read task YAML {path}: {exc}", "fix or remove the file") from None
    if not isinstance(config, dict) or ("task" not in config and "group" not in config):
        raise HarnessError(f"task YAML {path} names no `task:` or `group:`", "add `task: <name>` to the file")
    unknown = sorted(set(config) - _KNOWN_KEYS - _EXTRA_KEYS)
    if unknown:
        raise HarnessError(
            f"task YAML {path} has unknown key(s) {', '.join(unknown)}",
            "remove them or spell them as lm-eval's TaskConfig fields",
        )
    return config


def declared_name(config: dict[str, Any]) -> str:
    """The name a task YAML's config declares (its ``group:``, else its ``task:``), which its results carry."""
    return str(config["group"] if "group" in config else config["task"])


def _folder_configs(folders: tuple[Path, ...]) -> dict[Path, dict[str, Any]]:
    """Every task or group YAML in our folder (all must be valid) and in the user's folders (files that are
    no task, such as an included base template, are passed over as lm-eval's index does)."""
    configs = {path: read_task_yaml(path) for path in sorted(TASKS_DIR.glob("**/*.yaml"))}
    for folder in folders:
        for path in sorted(Path(folder).glob("**/*.yaml")):
            try:
                raw = load_yaml(path, resolve_func=False, recursive=False)
            except (*checks.YAML_ERRORS, OSError, ValueError) as exc:  # lm-eval: ValueError for no mapping
                problem = (exc.strerror or str(exc) if isinstance(exc, OSError) else checks.yaml_problem(exc)
                           if isinstance(exc, checks.YAML_ERRORS) else "it is not a YAML mapping of settings")
                raise HarnessError(f"task YAML {path} (in --include-path {folder}): {problem}",
                                   "fix the file or move it out of the folder") from None
            if isinstance(raw, dict) and ("task" in raw or "group" in raw) and "class" not in raw:
                configs[path] = read_task_yaml(path)
    return configs


@functools.cache
def catalogue(include_paths: tuple[Path, ...] = ()) -> dict[str, TaskInfo]:
    """Our tasks and suites by name, and those of the user's ``include_paths`` (the tasks of a group
    lm-eval aggregates are its members, not listed on their own)."""
    configs = _folder_configs(tuple(include_paths))
    tasks = {cfg["task"]: (path, cfg) for path, cfg in configs.items() if "group" not in cfg}
    groups = {cfg["group"]: (path, cfg) for path, cfg in configs.items() if "group" in cfg}

    def tagged(tag: str) -> list[str]:
        return [name for name, (_, cfg) in tasks.items() if tag in _as_list(cfg.get("tag"))]

    info: dict[str, TaskInfo] = {}
    hidden: set[str] = set()
    for name, (path, cfg) in groups.items():
        entries = [entry for entry in _as_list(cfg["task"]) if isinstance(entry, str)]
        members = [member for entry in entries for member in (tagged(entry) or [entry])]
        meta = cfg.get("metadata") or {}
        is_suite = not cfg.get("aggregate_metric_list") and all(m in tasks or m in groups for m in entries)
        if not is_suite:
            hidden.update(members)
        first = tasks.get(members[0], (path, {}))[1] if members else {}
        aggregated = [item["metric"] for item in _as_list(cfg.get("aggregate_metric_list"))]
        info[name] = TaskInfo(
            name=name,
            kind="suite" if is_suite else "group",
            num_fewshot=None if is_suite else first.get("num_fewshot"),
            primary_metric=meta.get("primary_metric", "per task" if is_suite else (aggregated or [""])[0]),
            protocol=meta.get("protocol", "per task" if is_suite else first.get("output_type", "")),
            settings_of=meta.get("settings_of", ""),
            members=tuple(members),
            deviations=tuple(meta.get("deviations", ())),
            yaml_path=path,
            metadata=meta,
        )
    for name, (path, cfg) in tasks.items():
        if name in hidden:
            continue
        meta = cfg.get("metadata") or {}
        metrics = [m["metric"] for m in cfg.get("metric_list", []) if isinstance(m.get("metric"), str)]
        info[name] = TaskInfo(
            name=name,
            kind="task",
            num_fewshot=cfg.get("num_fewshot", 0),
            primary_metric=meta.get("primary_metric", metrics[0] if metrics else ""),
            protocol=meta.get("protocol", cfg.get("output_type", "")),
            settings_of=meta.get("settings_of", ""),
            members=(),
            deviations=tuple(meta.get("deviations", ())),
            yaml_path=path,
            metadata=meta,
        )
    return dict(sorted(info.items(), key=lambda item: (item[1].kind == "suite", item[0])))


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def is_yaml_path(name: str) -> bool:
    return name.endswith(YAML_SUFFIXES)


def expand(names: list[str], include_paths: tuple[Path, ...] = ()) -> list[str]:
    """Replace suites (also suites of suites) by their member tasks, keeping order: each member gets its own
    result file. YAML paths and other names stay as given."""
    known = catalogue(tuple(include_paths))
    expanded: list[str] = []
    for name in names:
        if name in known and known[name].kind == "suite":
            members = expand(list(known[name].members), include_paths)
        else:
            members = [name]
        expanded.extend(member for member in members if member not in expanded)
    return expanded


def check_include_paths(include_paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """The ``--include-path`` folders, absolute; a missing one is a one-line error."""
    checked = []
    for folder in include_paths:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise HarnessError(f"--include-path {folder} is not a folder",
                               "give a folder that holds task YAML files (lm-eval's --include-path)")
        checked.append(folder.resolve())
    return tuple(checked)


def plan(names: list[str], include_paths: tuple[Path, ...] = ()) -> TaskPlan:
    """Resolve ``--tasks`` (suites expanded): names of ours, of the user's folders, lm-eval built-ins, or YAML
    paths (a task's handed to lm-eval as a path, as its CLI does: includes and ``!function`` helpers
    resolve beside the file; a group's folder is indexed and the group run by name, its members resolving
    there or by name elsewhere). Our and the user's tasks are indexed alone; lm-eval's ~14,700 built-ins
    only when a name needs them."""
    from harness.chat_bench import BENCHES

    include_paths = check_include_paths(tuple(include_paths))
    names = expand(names, include_paths)
    judged = [name for name in names if name in BENCHES]
    if judged:
        raise HarnessError(f"{judged[0]} is graded by an LLM judge, not scored by lm-eval",
                           f"answer it with `harness answer --model M --bench {judged[0]}`, then grade the answers "
                           "with `harness judge`")
    specs: dict[str, str] = {}
    for name in names:
        if is_yaml_path(name):
            path = Path(name).expanduser()
            if not path.is_file():
                raise HarnessError(f"task file {path} does not exist", "give the path of an existing task YAML")
            config = read_task_yaml(path)
            declared = declared_name(config)
            if declared in specs:
                raise HarnessError(f"two of the tasks given are named {declared!r}", "run them one at a time")
            if "group" in config:  # lm-eval 0.4.13 loads no group from a path: index its folder
                include_paths = (*include_paths, path.resolve().parent)
                specs[declared] = declared
            else:
                specs[declared] = str(path.resolve())
        else:
            specs[name] = name
    include_paths = tuple(dict.fromkeys(include_paths))
    catalogue(include_paths)  # checks every YAML in the folders (one-line errors) before lm-eval indexes them
    folders = [str(TASKS_DIR), *map(str, include_paths)]
    manager = TaskManager(include_path=folders, include_defaults=False)
    if any(spec not in manager.all_tasks and not is_yaml_path(spec) for spec in specs.values()):
        # Our tasks shadow lm-eval's built-ins of the same name on purpose; its index warns about each one.
        logging.getLogger("lm_eval.tasks._index").setLevel(logging.ERROR)
        manager = TaskManager(include_path=folders, include_defaults=True)
    for name, spec in specs.items():
        if spec not in manager.all_tasks and not is_yaml_path(spec):
            raise HarnessError(
                f"unknown task {name!r}",
                "use a name from `harness tasks`, an lm-eval task, group or tag name, the path of a task YAML, "
                "or --include-path DIR for the folder that holds it",
            )
    return TaskPlan(tuple(specs), specs, manager)


def config_of(manager: TaskManager, spec: str) -> dict[str, Any] | None:
    """A task's or group's YAML config (includes followed, functions unresolved) by name or YAML path;
    None for a tag or an unknown name."""
    entry = manager.task_index.get(spec)
    if entry is not None:
        return dict(entry.cfg) if entry.cfg is not None else None
    return load_yaml(Path(spec), resolve_func=False) if is_yaml_path(spec) and Path(spec).is_file() else None


def leaf_configs(manager: TaskManager, spec: str) -> dict[str, dict[str, Any]]:
    """The YAML configs of the tasks a name or YAML path runs: the task itself, a tag's tasks, or every task
    under a group and its nested groups."""
    config = config_of(manager, spec)
    if config is None:
        entry = manager.task_index.get(spec)
        return {task: cfg for member in sorted(entry.tags if entry else ()) for task, cfg in
                leaf_configs(manager, member).items()}
    if "group" not in config:
        return {str(config["task"]): config}
    return _member_configs(manager, config.get("task"))


def _member_configs(manager: TaskManager, items: Any) -> dict[str, dict[str, Any]]:
    """The task configs under a group's ``task:`` list: names, inline groups, and inline task overrides."""
    configs: dict[str, dict[str, Any]] = {}
    for item in _as_list(items):
        if isinstance(item, str):
            configs.update(leaf_configs(manager, item))
        elif isinstance(item, dict) and "group" in item:
            configs.update(_member_configs(manager, item.get("task")))
        elif isinstance(item, dict) and "task" in item:
            base = manager.task_index.get(item["task"])
            configs[str(item["task"])] = {**(dict(base.cfg) if base is not None and base.cfg else {}), **item}
    return configs


def group_configs(manager: TaskManager, spec: str) -> dict[str, dict[str, Any]]:
    """The configs of the groups a name or YAML path runs (itself if a group, and its nested groups)."""
    config = config_of(manager, spec)
    if config is None or "group" not in config:
        return {}
    nested = {name: cfg for item in _as_list(config.get("task")) if isinstance(item, str)
              for name, cfg in group_configs(manager, item).items()}
    return {str(config["group"]): config, **nested}


def yaml_files(manager: TaskManager, spec: str) -> list[Path]:
    """The YAML file that defines a task or group (by name or path), followed by the files it includes."""
    entry = manager.task_index.get(spec)
    path = entry.yaml_path if entry is not None and entry.yaml_path else Path(spec)
    files: list[Path] = []
    while path is not None and path.is_file() and path not in files:
        files.append(path)
        include = load_yaml(path, resolve_func=False, recursive=False).get("include")
        path = (path.parent / include) if isinstance(include, str) else None
    return files


def all_yaml_files(manager: TaskManager, spec: str) -> list[Path]:
    """Every YAML file behind a name or path: its own, its nested groups', its tasks' and their includes."""
    names = [spec, *list(group_configs(manager, spec))[1:], *leaf_configs(manager, spec)]
    return list(dict.fromkeys(path for item in names for path in yaml_files(manager, item)))


def task_requests(manager: TaskManager, name: str, limit: int) -> list:
    """A task's first ``limit`` docs' lm-eval requests, few-shot examples drawn with lm-eval's default seed, as
    ``simple_evaluate`` draws them (lm-eval builds the sampler unseeded: every process would draw other examples)."""
    task = manager.load([name])["tasks"][name]
    task.set_fewshot_seed(seed=dict(SEEDS)["fewshot_random_seed"])
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return task.instances
