"""lm-eval's output → :class:`RunResult` objects: one per task and one per group, read generically.

Whatever the output type, metric or filter, a result's metrics are lm-eval's rows as they stand
(``"acc,none"`` → ``acc``, ``"exact_match,strict-match"`` kept whole); a group's are lm-eval's own
aggregation. The only numbers computed here are ones a YAML declares: ``metadata.subtask_means``
(``{name: metric}``: the unweighted mean of that metric over the group's direct subtasks).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness import samples
from harness.core import MetricValue, RunResult, SampleRecord, number


@dataclass(frozen=True)
class RunContext:
    """What every result of one lm-eval call shares: the model, the spec and the run's provenance."""

    model: str
    spec: dict[str, Any]
    provenance: dict[str, Any]
    yaml_provenance: Callable[[str], dict[str, str]]  # name → {yaml file: sha256}
    data_provenance: Callable[[dict[str, dict]], dict[str, Any]]  # leaf configs → data files
    group_config: Callable[[str], dict[str, Any]]  # group name → its YAML config
    gold_index: Callable[[str], Callable[[dict], int]]  # task → doc → gold choice index
    extra_deviations: tuple[str, ...] = ()
    over_context: Callable[[str, list[dict]], str | None] = lambda task, samples: None  # prompts cut to fit
    requested_fewshot: int | None = None
    cell: dict[str, Any] | None = None


def metrics_of(row: dict[str, Any]) -> dict[str, MetricValue]:
    """lm-eval's ``"acc,none"`` / ``"acc_stderr,none"`` keys → ``{"acc": MetricValue(value, stderr)}``."""
    metrics: dict[str, MetricValue] = {}
    for key, value in row.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filter_name = key.split(",", 1)
        label = metric if filter_name == "none" else key
        metrics[label] = MetricValue(number(value), number(row.get(f"{metric}_stderr,{filter_name}")))
    return metrics


def _children(raw: dict[str, Any], name: str) -> list[str]:
    return list(raw.get("group_subtasks", {}).get(name, []))


def _leaves(raw: dict[str, Any], name: str) -> list[str]:
    if name in raw["configs"]:
        return [name]
    return [leaf for child in _children(raw, name) for leaf in _leaves(raw, child)]


def _tops(raw: dict[str, Any], requested: str) -> list[str]:
    """The names a requested task, group or tag produced at the top of lm-eval's task tree."""
    if requested in raw["results"]:
        return [requested]
    nested = {child for children in raw.get("group_subtasks", {}).values() for child in children}
    return [name for name in raw["results"] if name not in nested]


def _walk(raw: dict[str, Any], name: str, parent: str | None) -> list[tuple[str, str | None]]:
    return [(name, parent), *[item for child in _children(raw, name) for item in _walk(raw, child, name)]]


def _subtask_means(means: dict[str, str], members: dict[str, dict[str, MetricValue]]) -> dict[str, MetricValue]:
    """Unweighted means over subtasks, with the stderr of a mean of independent estimates."""
    derived = {}
    for label, metric in means.items():
        values = [m[metric] for m in members.values() if metric in m and m[metric].value is not None]
        if not values or len(values) != len(members):
            continue
        stderrs = [v.stderr for v in values]
        stderr = (math.sqrt(sum(s * s for s in stderrs)) / len(stderrs)) if all(s is not None for s in stderrs) else None
        derived[label] = MetricValue(sum(v.value for v in values) / len(values), stderr)
    return derived


def _primary(metadata: dict[str, Any], metrics: dict[str, MetricValue]) -> str:
    declared = metadata.get("primary_metric")
    return declared if declared in metrics or not metrics else next(iter(metrics))


def build(raw: dict[str, Any], requested: str, context: RunContext) -> list[tuple[RunResult, list[SampleRecord]]]:
    """Every result of one ``simple_evaluate`` call for one requested name, the requested one(s) first."""
    records: dict[str, list[SampleRecord]] = {}
    built = []
    for top in _tops(raw, requested):
        for name, parent in _walk(raw, top, None):
            leaves = _leaves(raw, name)
            is_task = name in raw["configs"]
            config = raw["configs"][name] if is_task else context.group_config(name)
            metadata = dict(config.get("metadata") or {})
            metrics = metrics_of(raw["results"].get(name, {}))
            members = {child: metrics_of(raw["results"].get(child, {})) for child in _children(raw, name)}
            metrics.update(_subtask_means(metadata.get("subtask_means") or {}, members))
            primary = _primary(metadata, metrics)
            for leaf in leaves:
                if leaf not in records:
                    records[leaf] = samples.records(leaf, raw["samples"][leaf], raw["configs"][leaf],
                                                    _primary(raw["configs"][leaf].get("metadata") or {},
                                                             metrics_of(raw["results"][leaf])),
                                                    context.gold_index(leaf))
            n_samples = {leaf: raw["n-samples"][leaf] for leaf in leaves}
            n_shot = raw["n-shot"].get(name, raw["n-shot"].get(leaves[0]) if leaves else None)
            leaf_configs = {leaf: raw["configs"][leaf] for leaf in leaves}
            result = RunResult(
                model=context.model,
                task=name,
                kind="task" if is_task else "group",
                primary_metric=primary,
                metrics=metrics,
                n=sum(counts["effective"] for counts in n_samples.values()),
                num_fewshot=n_shot,
                provenance={**context.provenance,
                            "task_yaml": context.yaml_provenance(name),
                            "data": context.data_provenance(leaf_configs),
                            "deviations": _deviations(context, metadata, leaf_configs, n_shot)
                            + [cut for leaf in leaves if (cut := context.over_context(leaf, raw["samples"][leaf]))]},
                spec=context.spec,
                output_type=config.get("output_type") if is_task else None,
                subtasks=tuple(_children(raw, name)),
                members=members,
                n_samples=n_samples,
                metric_notes=dict(metadata.get("metric_notes") or {}),
                metadata=metadata,
                lm_eval_config=config,
                part_of=parent,
                cell=context.cell if parent is None else None,
            )
            built.append((result, [record for leaf in leaves for record in records[leaf]]))
    return built


def _deviations(context: RunContext, metadata: dict[str, Any], leaf_configs: dict[str, dict],
                n_shot: int | None) -> list[str]:
    """How this run differs from the settings its YAML pins: the YAML's own notes, then the run's."""
    declared = list(metadata.get("deviations", ()))
    declared += [d for config in leaf_configs.values() for d in (config.get("metadata") or {}).get("deviations", [])]
    deviations = list(dict.fromkeys(declared)) + list(context.extra_deviations)
    if context.spec.get("gen_kwargs") and any(c.get("output_type") == "generate_until" for c in leaf_configs.values()):
        deviations.append(f"--gen-kwargs {json.dumps(context.spec['gen_kwargs'], ensure_ascii=False)}: generation "
                          "settings in place of the task's own")
    pinned = {config.get("num_fewshot") or 0 for config in leaf_configs.values()}
    if context.requested_fewshot is not None and pinned != {context.requested_fewshot}:
        pins = "/".join(str(p) for p in sorted(pinned))
        deviations.append(f"{n_shot}-shot (--num-fewshot) instead of the task's pinned {pins}-shot")
    return deviations
