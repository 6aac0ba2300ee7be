"""The leaderboard's data: series of scores per benchmark, gaps to a baseline, averages, comparability."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.comparison import Comparability, comparability, protocol_of_task
from harness.published import Score
from harness.registry import REGISTRY

SUITES = {
    "open_llm_leaderboard_v1": ("arc_challenge", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k"),
}
BENCHMARK_LABELS = {
    "arc_challenge": "ARC-Challenge", "hellaswag": "HellaSwag", "mmlu": "MMLU", "truthfulqa": "TruthfulQA (mc2)",
    "winogrande": "WinoGrande", "gsm8k": "GSM8K", "arc_easy": "ARC-Easy",
}
SOURCE_LABELS = {
    "measured": "measured here", "open_llm_leaderboard_v1": "Open LLM Leaderboard v1",
    "open_llm_leaderboard_v1_snapshot": "Open LLM Leaderboard v1 (2023-08 snapshot)", "gpt4_report": "GPT-4 report",
    "llama2_paper": "Llama 2 paper", "dolly_model_card": "Dolly v2 model card", "lmsys": "LMSYS",
    "llama2_model_card": "Llama 2 model card", "mt_bench_paper": "MT-bench paper",
}
DEFAULT_PUBLISHED = ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-chat-hf", "lmsys/vicuna-7b-v1.5",
                     "databricks/dolly-v2-12b")
REFERENCE_MODELS = ("openai/gpt-4", "openai/gpt-3.5")
# Sources tried in order when a published model has rows from several.
SOURCE_PREFERENCE = ("open_llm_leaderboard_v1", "open_llm_leaderboard_v1_snapshot", "llama2_paper", "gpt4_report",
                     "dolly_model_card", "lmsys", "mt_bench_paper", "llama2_model_card")


@dataclass(frozen=True)
class Series:
    """One bar series: a model's scores from one source (measured here, or a publication)."""

    model: str
    source: str
    scores: dict[str, Score]  # benchmark -> score

    @property
    def label(self) -> str:
        short = self.model.split("/")[-1]
        return f"{short} ({SOURCE_LABELS.get(self.source, self.source)})"

    @property
    def parameters(self) -> int | None:
        for spec in REGISTRY.values():
            if self.model in (spec.name, spec.hub_id):
                return spec.parameters
        return None


@dataclass(frozen=True)
class Leaderboard:
    benchmarks: tuple[str, ...]
    series: tuple[Series, ...]  # measured first, then published
    baseline: Series | None
    references: tuple[Series, ...]  # GPT-4 and GPT-3.5

    def verdict(self, score: Score) -> Comparability:
        """How a score was measured relative to this harness's protocol for its benchmark."""
        ours = protocol_of_task(score.benchmark)
        return comparability(ours, score) if ours else Comparability.NOT

    def gap(self, series: Series, benchmark: str) -> float | None:
        """Score minus the baseline's, in points (None where either is missing)."""
        if self.baseline is None or benchmark not in series.scores or benchmark not in self.baseline.scores:
            return None
        return series.scores[benchmark].value - self.baseline.scores[benchmark].value

    def average(self, series: Series, benchmarks: Iterable[str] | None = None) -> float | None:
        """Mean over the given benchmarks (default: the suite's), None unless all are present."""
        wanted = tuple(benchmarks or self.benchmarks)
        if not all(b in series.scores for b in wanted):
            return None
        return sum(series.scores[b].value for b in wanted) / len(wanted)


def _published_series(published: list[Score], model: str, benchmarks: tuple[str, ...]) -> Series | None:
    rows = [s for s in published if s.model == model and s.benchmark in benchmarks and s.scale == "percent"]
    for source in SOURCE_PREFERENCE:
        chosen = {s.benchmark: s for s in rows if s.source == source}
        if chosen:
            return Series(model, source, chosen)
    return None


def _reference_series(published: list[Score], model: str, benchmarks: tuple[str, ...]) -> Series | None:
    rows = {s.benchmark: s for s in published if s.model == model and s.benchmark in benchmarks}
    return Series(model, "gpt4_report", rows) if rows else None


def build(
    measured: list[Score],
    published: list[Score],
    suite: str = "open_llm_leaderboard_v1",
    models: Iterable[str] = DEFAULT_PUBLISHED,
    baseline: str = "openai/gpt-4",
) -> Leaderboard:
    benchmarks = SUITES[suite]
    by_model: dict[str, dict[str, Score]] = {}
    for score in measured:
        if score.benchmark in benchmarks:
            by_model.setdefault(score.model, {})[score.benchmark] = score
    measured_series = [Series(model, "measured", scores) for model, scores in sorted(by_model.items())]
    published_series = [s for s in (_published_series(published, m, benchmarks) for m in models) if s]
    references = tuple(s for s in (_reference_series(published, m, benchmarks) for m in REFERENCE_MODELS) if s)
    base = next((s for s in references if s.model == baseline), None) or _reference_series(published, baseline, benchmarks)
    return Leaderboard(benchmarks, tuple(measured_series + published_series), base, references)
