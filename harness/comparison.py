"""Comparability of two scores, and measured run results turned into :class:`Score` rows."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from harness.published import Score
from harness.store import load_result
from harness.tasks import catalogue

# Our tasks → (benchmark, metric, headline metric key in the result JSON). The protocol follows the metric.
TASK_BENCHMARKS = {
    "arc_challenge": ("arc_challenge", "accuracy", "acc_norm"),
    "arc_easy": ("arc_easy", "accuracy", "acc"),
    "hellaswag": ("hellaswag", "accuracy", "acc_norm"),
    "mmlu": ("mmlu", "accuracy", "acc_subject_mean"),
    "truthfulqa_mc2": ("truthfulqa", "mc2", "acc"),
    "winogrande": ("winogrande", "accuracy", "acc"),
    "gsm8k": ("gsm8k", "accuracy", "exact_match,strict-match"),
}
PROTOCOLS = {"acc": "loglikelihood", "acc_norm": "loglikelihood-norm", "acc_subject_mean": "loglikelihood",
             "exact_match,strict-match": "generation"}


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


def measured_score(result: dict) -> Score | None:
    """The headline Score of one run result JSON (None for tasks without a benchmark mapping)."""
    task = result["task"]
    if task not in TASK_BENCHMARKS:
        return None
    benchmark, metric, key = TASK_BENCHMARKS[task]
    values = result["metrics"].get(key)
    if values is None or values["value"] is None:
        return None
    prov = result["provenance"]
    deviations = prov.get("deviations", [])
    caveats = "; ".join(deviations)
    protocol = PROTOCOLS[key]
    if any(not d.startswith("--limit") for d in deviations):
        # A deviation from lm-eval's protocol (e.g. a different few-shot pool): at best loosely comparable.
        protocol += " (with deviations)"
    return Score(
        model=result["model"],
        benchmark=benchmark,
        n_shot=result.get("num_fewshot"),
        metric=metric,
        protocol=protocol,
        value=100.0 * values["value"],
        stderr=100.0 * values["stderr"] if values["stderr"] is not None else None,
        source="measured",
        source_title=f"measured here ({result['n']} docs, {prov['dtype']}, {prov['device']})",
        locator=result.get("samples_file", ""),
        caveats=caveats,
    )


def measured_scores(runs_dir: Path) -> list[Score]:
    """Headline scores of every complete run under ``runs_dir``; the newest run wins per (model, benchmark)."""
    latest: dict[tuple[str, str], tuple[str, Score]] = {}
    for path in sorted(Path(runs_dir).glob("*.json")):
        result = load_result(path)
        if result.get("status") != "complete":
            continue
        score = measured_score(result)
        if score is None:
            continue
        key = (score.model, score.benchmark)
        finished = result["provenance"]["finished"]
        if key not in latest or finished > latest[key][0]:
            latest[key] = (finished, score)
    return [score for _, score in sorted(latest.values(), key=lambda item: (item[1].model, item[1].benchmark))]


def protocol_of_task(benchmark: str) -> Score | None:
    """A value-less Score describing how this harness measures a benchmark (for verdicts on published rows)."""
    for task, (bench, metric, key) in TASK_BENCHMARKS.items():
        if bench == benchmark:
            info = catalogue().get(task)
            return Score("harness", bench, info.num_fewshot if info else None, metric, PROTOCOLS[key], 0.0, None,
                         "measured", "", "", "")
    return None
