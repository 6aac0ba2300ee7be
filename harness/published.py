"""Published reference scores (GPT-4 report, Llama 2 paper, Open LLM Leaderboard v1, model cards, LMSYS).

The figures live in ``harness/published_scores.csv`` (package data) with n-shot, metric, scoring protocol,
source, locator and caveats for each; this module loads them as :class:`Score` rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from harness.paths import PUBLISHED_CSV


@dataclass(frozen=True)
class Score:
    """One number on one benchmark, measured here or published, in percent (MT-bench: 1-10)."""

    model: str
    benchmark: str
    n_shot: int | None
    metric: str
    protocol: str
    value: float
    stderr: float | None
    source: str  # "measured" or a publication key such as "gpt4_report"
    source_title: str
    locator: str
    caveats: str
    scale: str = "percent"

    @property
    def measured(self) -> bool:
        return self.source == "measured"

    @property
    def subset(self) -> bool:
        """Measured on the first docs of the benchmark only (``--limit``)."""
        return self.measured and "--limit" in self.caveats


def load_published(path: Path = PUBLISHED_CSV) -> list[Score]:
    """Every published row, in file order."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return [
            Score(
                model=row["model"],
                benchmark=row["benchmark"],
                n_shot=int(row["n_shot"]) if row["n_shot"] else None,
                metric=row["metric"],
                protocol=row["protocol"],
                value=float(row["score"]),
                stderr=None,
                source=row["source"],
                source_title=row["source_title"],
                locator=row["locator"],
                caveats=row["caveats"],
                scale=row["scale"],
            )
            for row in csv.DictReader(handle)
        ]
