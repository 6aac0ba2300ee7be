"""Matplotlib charts of a :class:`Leaderboard`: leaderboard bars, gap heatmap, radar, size vs score.

Charts are drawn for a paper column (3.4 in wide at 9 pt; 7 in for the wide bar chart), in the
Okabe-Ito colour-blind-safe palette. Hatching marks a series that is only loosely comparable with
this harness's protocol; a dagger marks one that is not comparable.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harness.comparison import Comparability, comparability  # noqa: E402
from harness.leaderboard import BENCHMARK_LABELS, Leaderboard, Series  # noqa: E402

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FORMATS = ("png", "svg", "pdf")
STYLE = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 6.5, "svg.hashsalt": "open-llm-harness", "svg.fonttype": "path", "pdf.fonttype": 42,
    "axes.spines.top": False, "axes.spines.right": False,
}
HATCH = {Comparability.COMPARABLE: "", Comparability.LOOSELY: "///", Comparability.NOT: "xx"}


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"{name}.{fmt}"
        metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
                    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}}[fmt]
        fig.savefig(path, dpi=200, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def _label(benchmark: str) -> str:
    return BENCHMARK_LABELS.get(benchmark, benchmark)


def _series_verdict(board: Leaderboard, series: Series) -> Comparability:
    """The weakest verdict over a series' scores (a series is hatched if any bar is not like-for-like)."""
    verdicts = {board.verdict(score) for score in series.scores.values()}
    for verdict in (Comparability.NOT, Comparability.LOOSELY):
        if verdict in verdicts:
            return verdict
    return Comparability.COMPARABLE


def leaderboard_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    benchmarks = board.benchmarks
    n = max(len(board.series), 1)
    width = 0.8 / n
    x = np.arange(len(benchmarks))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 3.0))
        for i, series in enumerate(board.series):
            color = OKABE_ITO[i % len(OKABE_ITO)]
            for j, benchmark in enumerate(benchmarks):
                score = series.scores.get(benchmark)
                if score is None:
                    continue
                verdict = board.verdict(score)
                xpos = x[j] - 0.4 + width * (i + 0.5)
                ax.bar(xpos, score.value, width * 0.92, color=color, hatch=HATCH[verdict], edgecolor="white",
                       linewidth=0.3, label=series.label if j == min(k for k, b in enumerate(benchmarks)
                                                                    if b in series.scores) else None)
                if score.stderr:
                    ax.errorbar(xpos, score.value, yerr=score.stderr, color="black", capsize=1.5, linewidth=0.6)
                if verdict is Comparability.NOT:
                    ax.text(xpos, score.value + 1, "†", ha="center", va="bottom", fontsize=6)
        for ref, style in zip(board.references, ("-", "--")):
            for j, benchmark in enumerate(benchmarks):
                if benchmark in ref.scores:
                    ax.hlines(ref.scores[benchmark].value, x[j] - 0.45, x[j] + 0.45, colors="#444444",
                              linestyles=style, linewidth=1.0,
                              label=f"{ref.model.split('/')[-1]} (GPT-4 report)*" if j == min(
                                  k for k, b in enumerate(benchmarks) if b in ref.scores) else None)
        ax.set_xticks(x, [_label(b) for b in benchmarks])
        ax.set_ylabel("score (%)")
        ax.set_ylim(0, 100)
        ax.legend(ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
        ax.set_title("Measured and published scores (error bars: ±1 stderr)")
        fig.text(0.0, -0.2, "Hatched / *: loosely comparable (only the scoring protocol differs, e.g. GPT-4's "
                 "letter choice vs log-likelihood ranking). † / cross-hatched: not comparable (n-shot or metric differ).",
                 fontsize=6, wrap=True)
        return _save(fig, out_dir, "leaderboard")


def gap_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    benchmarks = [b for b in board.benchmarks if board.baseline and b in board.baseline.scores]
    rows = list(board.series)
    grid = np.array([[board.gap(s, b) if board.gap(s, b) is not None else np.nan for b in benchmarks] for s in rows],
                    dtype=float).reshape(len(rows), len(benchmarks))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4 + 0.3 * len(benchmarks), 0.6 + 0.32 * max(len(rows), 1)))
        limit = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
        image = ax.imshow(grid, cmap="PuOr", vmin=-limit, vmax=limit, aspect="auto")
        for r, series in enumerate(rows):
            for c, benchmark in enumerate(benchmarks):
                value = grid[r, c]
                if math.isnan(value):
                    ax.text(c, r, "n/a", ha="center", va="center", fontsize=6, color="#666666")
                    continue
                mark = comparability(series.scores[benchmark], board.baseline.scores[benchmark]).mark
                ax.text(c, r, f"{value:+.1f}{mark}", ha="center", va="center", fontsize=6,
                        color="white" if abs(value) > 0.6 * limit else "black")
        ax.set_xticks(range(len(benchmarks)), [_label(b) for b in benchmarks], rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), [s.label for s in rows])
        fig.colorbar(image, ax=ax, label="points vs GPT-4", shrink=0.8)
        ax.set_title("Gap to GPT-4 (score − GPT-4, points)")
        ax.set_xlabel("*: loosely comparable with the baseline (only the protocol differs); †: not comparable",
                      fontsize=6, labelpad=6)
        return _save(fig, out_dir, "gap")


def radar_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    benchmarks = [b for b in board.benchmarks if board.baseline and b in board.baseline.scores]
    angles = np.linspace(0, 2 * np.pi, len(benchmarks), endpoint=False).tolist()
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 3.4), subplot_kw={"polar": True})
        everyone = [*board.series, *(board.references[:1] if board.baseline else [])]
        for i, series in enumerate(everyone):
            if not all(b in series.scores for b in benchmarks):
                continue
            values = [series.scores[b].value for b in benchmarks]
            is_base = series is board.baseline or (board.baseline and series.model == board.baseline.model)
            color = "#444444" if is_base else OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot([*angles, angles[0]], [*values, values[0]], color=color, linewidth=1.0,
                    linestyle="--" if is_base else "-", label=series.label + ("*" if is_base else ""))
            ax.fill([*angles, angles[0]], [*values, values[0]], color=color, alpha=0.08)
        ax.set_theta_offset(np.pi / 2)
        ax.set_theta_direction(-1)
        ax.set_xticks(angles, [_label(b) for b in benchmarks])
        ax.tick_params(axis="x", pad=12)
        ax.set_rlabel_position(180 / len(benchmarks))
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75], ["25", "50", "75"])
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
        ax.set_title("Models against GPT-4 (%)", pad=18)
        return _save(fig, out_dir, "radar")


def size_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    common = [b for b in board.benchmarks if board.baseline and b in board.baseline.scores]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 2.6))
        for i, series in enumerate(board.series):
            average, params = board.average(series, common), series.parameters
            if average is None or params is None:
                continue
            ax.scatter(params, average, color=OKABE_ITO[i % len(OKABE_ITO)], s=18, label=series.label, zorder=3,
                       marker="o" if series.source == "measured" else "s")
        if board.baseline is not None:
            base = board.average(board.baseline, common)
            if base is not None:
                ax.axhline(base, color="#444444", linestyle="--", linewidth=1.0, label=f"GPT-4* ({base:.1f})")
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("average (%)")
        ax.set_title(f"Size vs average over {len(common)} benchmarks GPT-4 reports", fontsize=8)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
        return _save(fig, out_dir, "size")


def draw_all(board: Leaderboard, out_dir: Path) -> dict[str, list[Path]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "leaderboard": leaderboard_chart(board, out_dir),
        "gap": gap_chart(board, out_dir),
        "radar": radar_chart(board, out_dir),
        "size": size_chart(board, out_dir),
    }
