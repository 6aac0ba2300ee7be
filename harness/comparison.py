"""Comparability of two scores, the benchmark a task stands for, and measured run results as :class:`Score` rows.

What a task corresponds to comes from its YAML's ``metadata:``, in the vocabulary of
``harness/published_scores.csv``: ``benchmark`` (the csv's benchmark key; default: the task
name), ``benchmark_label`` (default: the task name), ``published_metric`` (the csv's metric; default: the
primary metric), ``protocol`` (the csv's protocol; default: the output type) and ``report_metric`` (the
result's metric the report shows; default: the primary metric).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from harness.core import ResultFileError, RunResult, load_result
from harness.published import Score
from harness.tasks import TaskInfo


class Comparability(str, Enum):
    COMPARABLE = "comparable"
    LOOSELY = "loosely comparable"
    NOT = "not comparable"

    @property
    def mark(self) -> str:
        return {"comparable": "", "loosely comparable": "*", "not comparable": "†"}[self.value]


def comparability(a: Score, b: Score) -> Comparability:
    """Comparable: same benchmark, n-shot, metric and protocol; loosely: only the protocol differs."""
    if (a.benchmark, a.n_shot, a.metric) != (b.benchmark, b.n_shot, b.metric) or a.n_shot is None:
        return Comparability.NOT
    return Comparability.COMPARABLE if a.protocol == b.protocol else Comparability.LOOSELY


@dataclass(frozen=True)
class Benchmark:
    """One report column: a task, the published benchmark it stands for, and how this harness measures it."""

    task: str
    key: str  # the csv's `benchmark`
    label: str
    metric: str  # the csv's `metric`
    protocol: str  # the csv's `protocol`
    n_shot: int | None  # the task's pinned n-shot
    report_metric: str | None = None  # the result's metric shown; None: the result's primary metric

    @classmethod
    def of(cls, task: str, metadata: Mapping[str, Any], primary_metric: str, protocol: str,
           n_shot: int | None) -> Benchmark:
        return cls(task, metadata.get("benchmark", task), metadata.get("benchmark_label", task),
                   metadata.get("published_metric", primary_metric), metadata.get("protocol", protocol), n_shot,
                   metadata.get("report_metric"))

    @classmethod
    def of_task(cls, info: TaskInfo) -> Benchmark:
        return cls.of(info.name, info.metadata, info.primary_metric, info.protocol, info.num_fewshot)

    @classmethod
    def of_result(cls, result: RunResult) -> Benchmark:
        """From the metadata a result carries (a task run from a YAML path, in no catalogue)."""
        return cls.of(result.task, result.metadata, result.primary_metric, result.output_type or "",
                      result.num_fewshot)

    @property
    def reference(self) -> Score:
        """A value-less Score describing how this harness measures it (for verdicts on published rows)."""
        return Score("harness", self.key, self.n_shot, self.metric, self.protocol, 0.0, None, "measured", "", "", "")


@dataclass(frozen=True)
class MeasuredScore(Score):
    """A score measured here, with the number of docs its run scored (``RunResult.n``)."""

    n: int | None = None


def load_runs(runs_dir: Path) -> list[RunResult]:
    """The complete run results under ``runs_dir``; a file that is no result is passed over with a warning."""
    results = []
    for path in sorted(Path(runs_dir).glob("*.json")):
        try:
            results.append(load_result(path))
        except (OSError, ResultFileError) as exc:
            print(f"warning: skipped {exc}", file=sys.stderr)
    return [result for result in results if result.status == "complete"]


def measured_score(result: RunResult, benchmark: Benchmark) -> Score | None:
    """The headline Score of one run result, in points (None where the result lacks the metric)."""
    values = result.metrics.get(benchmark.report_metric or result.primary_metric)
    if values is None or values.value is None:
        return None
    prov = result.provenance
    deviations = list(prov.get("deviations", []))
    protocol = benchmark.protocol
    if any(not d.startswith("--limit") for d in deviations):
        # A deviation from lm-eval's protocol (e.g. a different few-shot pool): at best loosely comparable.
        protocol += " (with deviations)"
    return MeasuredScore(
        model=result.model,
        benchmark=benchmark.key,
        n_shot=result.num_fewshot,
        metric=benchmark.metric,
        protocol=protocol,
        value=100.0 * values.value,
        stderr=100.0 * values.stderr if values.stderr is not None else None,
        source="measured",
        source_title=f"measured here ({result.n} docs, {prov.get('dtype')}, {prov.get('device')})",
        locator=result.samples_file,
        caveats="; ".join(deviations),
        n=result.n,
    )


def measured_scores(runs: Iterable[RunResult], benchmarks: Iterable[Benchmark]) -> list[Score]:
    """Headline scores of the runs of each benchmark's task; the newest run wins per (model, benchmark)."""
    by_task = {benchmark.task: benchmark for benchmark in benchmarks}
    latest: dict[tuple[str, str], tuple[str, Score]] = {}
    for result in runs:
        score = measured_score(result, by_task[result.task]) if result.task in by_task else None
        if score is None:
            continue
        key = (score.model, score.benchmark)
        if key not in latest or result.finished > latest[key][0]:
            latest[key] = (result.finished, score)
    return [score for _, score in sorted(latest.values(), key=lambda item: (item[1].model, item[1].benchmark))]
