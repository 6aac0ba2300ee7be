"""The leaderboard's data: series of scores per benchmark, gaps to a baseline, averages, comparability.

A measured score on fewer than :data:`MIN_DOCS` docs is too few to read: the charts grey it out and no
average includes it (a series with one has no average).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.comparison import Benchmark, Comparability, comparability
from harness.core import RunResult
from harness.errors import HarnessError
from harness.published import Score
from harness.registry import REGISTRY
from harness.tasks import catalogue

SOURCE_LABELS = {
    "measured": "measured here", "open_llm_leaderboard_v1": "Open LLM Leaderboard v1",
    "open_llm_leaderboard_v1_snapshot": "Open LLM Leaderboard v1 (2023-08 snapshot)", "gpt4_report": "GPT-4 report",
    "llama2_paper": "Llama 2 paper", "dolly_model_card": "Dolly v2 model card", "lmsys": "LMSYS",
    "llama2_model_card": "Llama 2 model card", "mt_bench_paper": "MT-bench paper",
}
DEFAULT_SUITE = "open_llm_leaderboard_v1"  # what `harness report` shows unless --suite says otherwise
DEFAULT_PUBLISHED = ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-chat-hf", "lmsys/vicuna-7b-v1.5",
                     "databricks/dolly-v2-12b")
REFERENCE_MODELS = ("openai/gpt-4", "openai/gpt-3.5")
DEFAULT_BASELINE = "openai/gpt-4"
DISPLAY_NAMES = {"openai/gpt-4": "GPT-4", "openai/gpt-3.5": "GPT-3.5"}
# Fewer docs than this and a measured score is too few to read: drawn greyed, left out of every average.
MIN_DOCS = 30
# Sources tried in order when a published model has rows from several.
SOURCE_PREFERENCE = ("open_llm_leaderboard_v1", "open_llm_leaderboard_v1_snapshot", "llama2_paper", "gpt4_report",
                     "dolly_model_card", "lmsys", "mt_bench_paper", "llama2_model_card")


def display_name(model: str) -> str:
    """A model's short name for titles and legends: GPT-4, GPT-3.5, else the hub id's last part."""
    return DISPLAY_NAMES.get(model, model.split("/")[-1])


def docs(score: Score) -> int | None:
    """How many docs a measured score was scored on (None: published, or not known)."""
    return getattr(score, "n", None)


def too_few_docs(score: Score) -> bool:
    """A measured score on fewer than :data:`MIN_DOCS` docs."""
    n = docs(score)
    return score.measured and n is not None and n < MIN_DOCS


@dataclass(frozen=True)
class Series:
    """One bar series: a model's scores from one source (measured here, or a publication)."""

    model: str
    source: str
    scores: dict[str, Score]  # benchmark key -> score

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)

    @property
    def label(self) -> str:
        return f"{self.model.split('/')[-1]} ({self.source_label})"

    @property
    def subset(self) -> bool:
        """Some score of the series was measured on a subset of the docs (``--limit``)."""
        return any(score.subset for score in self.scores.values())

    @property
    def parameters(self) -> int | None:
        for spec in REGISTRY.values():
            if self.model in (spec.name, spec.hub_id):
                return spec.parameters
        return None


@dataclass(frozen=True)
class Leaderboard:
    """Measured and published series over a suite's benchmarks, beside the baseline and the reference models."""

    benchmarks: tuple[Benchmark, ...]  # the columns, one per published benchmark key
    series: tuple[Series, ...]  # measured first, then published
    baseline: Series | None
    references: tuple[Series, ...]  # GPT-4 and GPT-3.5
    baseline_model: str = DEFAULT_BASELINE  # the model asked for as the baseline (it may have no scores)

    @property
    def baseline_name(self) -> str:
        """The baseline's short name, for titles, legends and colorbar labels."""
        return display_name(self.baseline.model if self.baseline is not None else self.baseline_model)

    def verdict(self, score: Score) -> Comparability:
        """How a score was measured relative to this harness's protocol for its benchmark."""
        ours = next(b for b in self.benchmarks if b.key == score.benchmark)
        return comparability(ours.reference, score)

    def gap(self, series: Series, benchmark: str) -> float | None:
        """Score minus the baseline's, in points (None where either is missing)."""
        if self.baseline is None or benchmark not in series.scores or benchmark not in self.baseline.scores:
            return None
        return series.scores[benchmark].value - self.baseline.scores[benchmark].value

    def average(self, series: Series, benchmarks: Iterable[str] | None = None) -> float | None:
        """Mean over the given benchmark keys (default: the suite's); None unless all are present and none is
        a measured score on fewer than :data:`MIN_DOCS` docs."""
        wanted = tuple(b.key for b in self.benchmarks) if benchmarks is None else tuple(benchmarks)
        if not wanted or not all(b in series.scores for b in wanted):
            return None
        if any(too_few_docs(series.scores[b]) for b in wanted):
            return None
        return sum(series.scores[b].value for b in wanted) / len(wanted)

    def too_few(self, series: Series, benchmarks: Iterable[str] | None = None) -> list[str]:
        """The benchmark keys (default: the suite's) on which ``series`` has a score on too few docs."""
        wanted = tuple(b.key for b in self.benchmarks) if benchmarks is None else tuple(benchmarks)
        return [b for b in wanted if b in series.scores and too_few_docs(series.scores[b])]

    @property
    def any_too_few(self) -> bool:
        return any(self.too_few(series) for series in self.series)

    @property
    def with_baseline(self) -> tuple[Benchmark, ...]:
        """The benchmarks the baseline has a score on (the gap, radar and size charts show these)."""
        return tuple(b for b in self.benchmarks if self.baseline is not None and b.key in self.baseline.scores)

    def notes(self) -> list[str]:
        """Footnotes naming the benchmarks no publication, or no baseline, has a score for."""
        published = [s for s in [*self.series, *self.references] if s.source != "measured"]
        unpublished = [b.label for b in self.benchmarks if not any(b.key in s.scores for s in published)]
        no_baseline = [b.label for b in self.benchmarks if b not in self.with_baseline and b.label not in unpublished]
        name = self.baseline.model if self.baseline else self.baseline_model
        notes = [f"{', '.join(unpublished)}: no published counterpart (measured here only)."] if unpublished else []
        if no_baseline:
            notes.append(f"{', '.join(no_baseline)}: no {name} score published (no reference line, no gap).")
        return notes


def suite_benchmarks(suite: str, runs: Iterable[RunResult] = (),
                     include_paths: tuple[Path, ...] = ()) -> tuple[Benchmark, ...]:
    """The columns of ``suite``: a suite or task of the catalogue, a task of ``runs`` (run from a YAML path),
    or a comma-separated list of those, each described by its task YAML's metadata."""
    known = catalogue(tuple(include_paths))
    newest = {r.task: r for r in sorted(runs, key=lambda r: r.finished)}

    def tasks_of(name: str) -> list[str]:
        if name in known and known[name].kind == "suite":
            return [task for member in known[name].members for task in tasks_of(member)]
        if name in known or name in newest:
            return [name]
        raise HarnessError(f"unknown suite or task {name!r}", "use a suite or task of `harness tasks` (with "
                           "--include-path for your own folders), a task in the runs folder, or a list of those")

    tasks = [task for name in suite.split(",") if name.strip() for task in tasks_of(name.strip())]
    if not tasks:
        raise HarnessError(f"--suite {suite!r} names no suite or task", "give a suite or task, e.g. --suite "
                           "open_llm_leaderboard_v1 (see `harness tasks`)")
    columns: dict[str, Benchmark] = {}
    for task in dict.fromkeys(tasks):
        column = Benchmark.of_task(known[task]) if task in known else Benchmark.of_result(newest[task])
        if column.key in columns:
            raise HarnessError(f"tasks {columns[column.key].task} and {task} both stand for benchmark {column.key}",
                               "report them in separate reports")
        columns[column.key] = column
    return tuple(columns.values())


def _published_series(published: list[Score], model: str, keys: tuple[str, ...]) -> Series | None:
    rows = [s for s in published if s.model == model and s.benchmark in keys and s.scale == "percent"]
    for source in SOURCE_PREFERENCE:
        chosen = {s.benchmark: s for s in rows if s.source == source}
        if chosen:
            return Series(model, source, chosen)
    return None


def _reference_series(published: list[Score], model: str, keys: tuple[str, ...]) -> Series | None:
    rows = {s.benchmark: s for s in published if s.model == model and s.benchmark in keys}
    return Series(model, "gpt4_report", rows) if rows else None


def build(
    measured: list[Score],
    published: list[Score],
    benchmarks: tuple[Benchmark, ...],
    models: Iterable[str] = DEFAULT_PUBLISHED,
    baseline: str = DEFAULT_BASELINE,
) -> Leaderboard:
    keys = tuple(b.key for b in benchmarks)
    by_model: dict[str, dict[str, Score]] = {}
    for score in measured:
        if score.benchmark in keys:
            by_model.setdefault(score.model, {})[score.benchmark] = score
    measured_series = [Series(model, "measured", scores) for model, scores in sorted(by_model.items())]
    published_series = [s for s in (_published_series(published, m, keys) for m in models) if s]
    references = tuple(s for s in (_reference_series(published, m, keys) for m in REFERENCE_MODELS) if s)
    # The baseline: a reference model, a series on the board (published or measured), else its published rows.
    base = (next((s for s in [*references, *published_series, *measured_series] if s.model == baseline), None)
            or _published_series(published, baseline, keys))
    return Leaderboard(tuple(benchmarks), tuple(measured_series + published_series), base, references, baseline)
