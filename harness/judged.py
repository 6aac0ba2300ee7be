"""Judged results for the report: MT-bench (and Vicuna-benchmark) scores measured here, read from the results
``harness judge`` wrote, beside the published MT-bench figures (1-10, GPT-4 as judge)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.core import JUDGED, RunResult
from harness.published import Score, load_published


@dataclass(frozen=True)
class JudgedScore:
    """One model's judged score on one benchmark, with its interval, its judge and per-category means."""

    model: str
    bench: str
    value: float
    lower: float | None
    upper: float | None
    judge: str  # "model at host"
    comparability: str  # "comparable" or "different judge (...)"
    questions: int
    of: int | None
    categories: dict[str, float]

    @property
    def comparable(self) -> bool:
        return self.comparability == "comparable"


def is_judged(result: RunResult) -> bool:
    return result.output_type == JUDGED


def judged_scores(runs: Iterable[RunResult]) -> list[JudgedScore]:
    """The newest judged result per (model, benchmark, judge), best first."""
    newest: dict[tuple[str, str, str], RunResult] = {}
    for result in (r for r in runs if is_judged(r)):
        judge = result.provenance.get("judge", {})
        key = (result.model, result.task, f"{judge.get('model')} at {judge.get('host')}")
        if key not in newest or result.finished > newest[key].finished:
            newest[key] = result
    scores = []
    for (model, bench, judge), result in newest.items():
        ci = (result.provenance.get("bootstrap", {}).get("ci95") or {}).get("score") or (None, None)
        categories = {name.removeprefix("score_"): value.value for name, value in result.metrics.items()
                      if name.startswith("score_") and not name.startswith("score_turn_") and value.value is not None}
        asked = (result.provenance.get("answers") or {}).get("questions_of")
        scores.append(JudgedScore(model, bench, result.primary.value, ci[0], ci[1], judge,
                                  result.metadata.get("comparability", "different judge"), result.n, asked, categories))
    return sorted(scores, key=lambda s: -s.value)


def published_judged(bench: str) -> list[Score]:
    """The published rows of a judged benchmark (MT-bench: GPT-4 as judge), best first."""
    return sorted((s for s in load_published() if s.benchmark == bench), key=lambda s: -s.value)
