"""Per-sample records: lm-eval's logged samples turned into :class:`SampleRecord` (prompt, choices,
log-likelihoods, generation, verdict)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from harness.core import SampleRecord


def _metric_values(sample: dict[str, Any]) -> dict[str, float]:
    return {name: sample[name] for name in sample.get("metrics", []) if isinstance(sample.get(name), int | float)}


def record(
    task: str,
    sample: dict[str, Any],
    output_type: str,
    primary_metric: str,
    target_delimiter: str,
    gold_index: Callable[[dict], int],
) -> SampleRecord:
    """The record of one evaluated doc."""
    arguments = sample["arguments"]
    metrics = _metric_values(sample)
    primary = primary_metric.split(",")[0]
    base = {"task": task, "doc_id": sample["doc_id"], "doc_hash": sample.get("doc_hash"), "metrics": metrics,
            "correct": metrics.get(primary)}
    if output_type == "multiple_choice":
        contexts = [argument[0] for argument in arguments]
        continuations = [argument[1] for argument in arguments]
        loglikelihoods = [float(response[0][0]) for response in sample["resps"]]
        choice_lengths = np.array([float(len(c.removeprefix(target_delimiter))) for c in continuations])
        scores = np.array(loglikelihoods) / (choice_lengths if primary == "acc_norm" else 1.0)
        target = sample.get("target")
        return SampleRecord(
            **base,
            # Tasks with one context per choice (WinoGrande) log the shared continuation as target.
            target=target if isinstance(target, int) else gold_index(sample["doc"]),
            prompt=contexts[0] if len(set(contexts)) == 1 else contexts,
            choices=continuations,
            loglikelihoods=loglikelihoods,
            is_greedy=[bool(response[0][1]) for response in sample["resps"]],
            prediction=int(np.argmax(scores)),
        )
    if output_type == "generate_until":
        filtered = sample.get("filtered_resps") or [None]
        return SampleRecord(
            **base,
            target=sample.get("target"),
            filter=sample.get("filter"),
            prompt=arguments[0][0],
            generation=sample["resps"][0][0] if sample.get("resps") else None,
            prediction=filtered[0],
        )
    return SampleRecord(**base, target=sample.get("target"), prompt=arguments[0][0], response=sample.get("resps"))


def records(
    task: str,
    samples: list[dict[str, Any]],
    config: dict[str, Any],
    primary_metric: str,
    gold_index: Callable[[dict], int],
) -> list[SampleRecord]:
    """Records for all samples of one (sub)task; generation tasks keep the primary filter's samples only."""
    output_type = config.get("output_type", "")
    metric_filter = primary_metric.split(",")[1] if "," in primary_metric else None
    kept = [s for s in samples if metric_filter is None or s.get("filter") in (metric_filter, None)]
    delimiter = config.get("target_delimiter", " ")
    return [record(task, sample, output_type, primary_metric, delimiter, gold_index) for sample in kept]
