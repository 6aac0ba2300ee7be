"""The task catalogue: our YAML tasks in ``tasks/`` (checked before use), suites, and lm-eval's built-ins."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lm_eval.config.group import GroupConfig
from lm_eval.config.task import TaskConfig
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml

from harness.errors import HarnessError
from harness.paths import TASKS_DIR

# Keys lm-eval accepts in a task or group YAML besides its config fields.
_EXTRA_KEYS = {"include", "group", "task", "tag", "class"}
_KNOWN_KEYS = {f.name for f in dataclasses.fields(TaskConfig)} | {f.name for f in dataclasses.fields(GroupConfig)}


@dataclass(frozen=True)
class TaskInfo:
    """One entry of ``harness tasks``: a task, a group scored as one task (mmlu), or a suite of tasks."""

    name: str
    kind: str  # "task" | "group" | "suite"
    num_fewshot: int | None
    primary_metric: str
    protocol: str
    settings_of: str
    members: tuple[str, ...]
    deviations: tuple[str, ...]
    yaml_path: Path


def read_task_yaml(path: Path) -> dict[str, Any]:
    """Parse a task YAML (with its includes) and check its keys; a one-line error names what is wrong."""
    try:
        config = load_yaml(path, resolve_func=False)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise HarnessError(f"malformed task YAML {path}{where}: {problem}", "fix the YAML syntax there") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read task YAML {path}: {exc}", "fix or remove the file") from None
    if "task" not in config and "group" not in config:
        raise HarnessError(f"task YAML {path} names no `task:` or `group:`", "add `task: <name>` to the file")
    unknown = sorted(set(config) - _KNOWN_KEYS - _EXTRA_KEYS)
    if unknown:
        raise HarnessError(
            f"task YAML {path} has unknown key(s) {', '.join(unknown)}",
            "remove them or spell them as lm-eval's TaskConfig fields",
        )
    return config


def _own_configs() -> dict[Path, dict[str, Any]]:
    return {path: read_task_yaml(path) for path in sorted(TASKS_DIR.glob("**/*.yaml"))}


@functools.cache
def catalogue() -> dict[str, TaskInfo]:
    """Our tasks and suites by name (MMLU's 57 subjects are members of `mmlu`, not listed on their own)."""
    configs = _own_configs()
    tasks = {cfg["task"]: (path, cfg) for path, cfg in configs.items() if "task" in cfg and "group" not in cfg}
    groups = {cfg["group"]: (path, cfg) for path, cfg in configs.items() if "group" in cfg}

    def tagged(tag: str) -> list[str]:
        return [name for name, (_, cfg) in tasks.items() if tag in _as_list(cfg.get("tag"))]

    info: dict[str, TaskInfo] = {}
    hidden: set[str] = set()
    for name, (path, cfg) in groups.items():
        members = [member for entry in _as_list(cfg["task"]) for member in (tagged(entry) or [entry])]
        meta = cfg.get("metadata") or {}
        is_suite = all(member in tasks or member in groups for member in _as_list(cfg["task"]))
        if not is_suite:
            hidden.update(members)
        first = tasks.get(members[0], (path, {}))[1] if members else {}
        info[name] = TaskInfo(
            name=name,
            kind="suite" if is_suite else "group",
            num_fewshot=None if is_suite else first.get("num_fewshot"),
            primary_metric=meta.get("primary_metric", "per task" if is_suite else "acc"),
            protocol=meta.get("protocol", "per task" if is_suite else ""),
            settings_of=meta.get("settings_of", ""),
            members=tuple(members),
            deviations=tuple(meta.get("deviations", ())),
            yaml_path=path,
        )
    for name, (path, cfg) in tasks.items():
        if name in hidden:
            continue
        meta = cfg.get("metadata") or {}
        metrics = [m["metric"] for m in cfg.get("metric_list", [])]
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
        )
    return dict(sorted(info.items(), key=lambda item: (item[1].kind == "suite", item[0])))


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def expand(names: list[str]) -> list[str]:
    """Replace suites by their member tasks (each member gets its own result file), keeping order."""
    known = catalogue()
    expanded: list[str] = []
    for name in names:
        members = known[name].members if name in known and known[name].kind == "suite" else (name,)
        expanded.extend(member for member in members if member not in expanded)
    return expanded


def task_manager(names: list[str]) -> TaskManager:
    """A TaskManager over our tasks; lm-eval's ~14,700 built-ins are indexed only when a name needs them."""
    own = catalogue()
    yaml_paths = [name for name in names if name.endswith((".yaml", ".yml"))]
    for path in yaml_paths:
        if not Path(path).is_file():
            raise HarnessError(f"task file {path} does not exist", "give the path of an existing task YAML")
        read_task_yaml(Path(path))
    needs_builtins = any(name not in own and name not in yaml_paths for name in names)
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=needs_builtins)
    for name in names:
        if name not in yaml_paths and name not in manager.all_tasks:
            raise HarnessError(
                f"unknown task {name!r}",
                "use a name from `harness tasks`, an lm-eval task name, or the path of a task YAML",
            )
    return manager


def yaml_files(manager: TaskManager, name: str) -> list[Path]:
    """The YAML file that defines a task or group, followed by the files it includes."""
    entry = manager.task_index.get(name)
    path = entry.yaml_path if entry is not None and entry.yaml_path else Path(name)
    files: list[Path] = []
    while path is not None and path.is_file() and path not in files:
        files.append(path)
        include = load_yaml(path, resolve_func=False, recursive=False).get("include")
        path = (path.parent / include) if isinstance(include, str) else None
    return files
