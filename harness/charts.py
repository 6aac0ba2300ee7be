"""Matplotlib charts of a :class:`Leaderboard`: leaderboard bars, gap heatmap, radar, size vs score.

Charts are drawn for a paper column (3.4 in wide at 9 pt; 7 in for the wide bar chart), in the
Okabe-Ito colour-blind-safe palette, for any number of benchmarks. Hatching marks a bar that is only
loosely comparable with this harness's protocol, a dagger one that is not comparable, a double dagger one
measured on a subset (``--limit``). A chart with nothing to draw says why in place of the plot.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harness.comparison import Comparability, comparability  # noqa: E402
from harness.leaderboard import Leaderboard, Series  # noqa: E402

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


def _nothing_to_draw(fig, ax, out_dir: Path, name: str, why: str) -> list[Path]:
    ax.set_axis_off()
    ax.text(0.5, 0.5, why, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return _save(fig, out_dir, name)


def _mark(board: Leaderboard, series: Series) -> str:
    """The weakest verdict's mark over a series' scores ("*" if any is loosely comparable, "†" if any is not)."""
    verdicts = {board.verdict(score) for score in series.scores.values()}
    return next((v.mark for v in (Comparability.NOT, Comparability.LOOSELY) if v in verdicts), "")


def leaderboard_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    keys = [b.key for b in board.benchmarks]
    width = 0.8 / max(len(board.series), 1)
    x = np.arange(len(keys))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(min(7.0, 2.6 + 0.75 * len(keys)), 3.0))
        for i, series in enumerate(board.series):
            color = OKABE_ITO[i % len(OKABE_ITO)]
            for j, key in enumerate(k for k in keys if k in series.scores):
                score = series.scores[key]
                verdict = board.verdict(score)
                xpos = x[keys.index(key)] - 0.4 + width * (i + 0.5)
                ax.bar(xpos, score.value, width * 0.92, color=color, hatch=HATCH[verdict], edgecolor="white",
                       linewidth=0.3, label=series.label if j == 0 else None)
                if score.stderr:
                    ax.errorbar(xpos, score.value, yerr=score.stderr, color="black", capsize=1.5, linewidth=0.6)
                mark = ("†" if verdict is Comparability.NOT else "") + ("‡" if score.subset else "")
                if mark:
                    ax.text(xpos, score.value + (score.stderr or 0) + 1, mark, ha="center", va="bottom", fontsize=6)
        for ref, style in zip(board.references, ("-", "--")):
            for j, key in enumerate(k for k in keys if k in ref.scores):
                xpos = x[keys.index(key)]
                ax.hlines(ref.scores[key].value, xpos - 0.45, xpos + 0.45, colors="#444444", linestyles=style,
                          linewidth=1.0, label=ref.label + _mark(board, ref) if j == 0 else None)
        ax.set_xticks(x, [b.label for b in board.benchmarks], rotation=20 if len(keys) > 6 else 0,
                      ha="right" if len(keys) > 6 else "center")
        ax.set_xlim(-0.5, len(keys) - 0.5)
        ax.set_ylabel("score (%)")
        ax.set_ylim(0, 100)
        legend = ax.legend(ncols=2 if len(keys) < 4 else 3, loc="upper center", frameon=False,
                           bbox_to_anchor=(0.5, -0.18 if len(keys) > 6 else -0.13))
        ax.set_title("Measured and published scores (error bars: ±1 stderr)")
        notes = ["Hatched / *: loosely comparable (only the scoring protocol differs, e.g. GPT-4's letter choice vs "
                 "log-likelihood ranking). † / cross-hatched: not comparable (n-shot or metric differ). "
                 "‡: measured on a subset of the docs (--limit).", *board.notes()]
        ax.annotate(" ".join(notes), xy=(0.5, 0), xycoords=legend, xytext=(0, -6), textcoords="offset points",
                    ha="center", va="top", multialignment="left", fontsize=6, wrap=True)
        return _save(fig, out_dir, "leaderboard")


def gap_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    benchmarks = board.with_baseline
    rows = list(board.series)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4 + 0.3 * len(benchmarks), 0.6 + 0.32 * max(len(rows), 1)))
        if not benchmarks or not rows:
            return _nothing_to_draw(fig, ax, out_dir, "gap", "No gap to GPT-4: it has no published score on "
                                    "these benchmarks." if rows else "No series to compare with GPT-4.")
        grid = np.array([[board.gap(s, b.key) for b in benchmarks] for s in rows], dtype=float)  # None → NaN
        limit = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
        image = ax.imshow(grid, cmap="PuOr", vmin=-limit, vmax=limit, aspect="auto")
        for r, series in enumerate(rows):
            for c, benchmark in enumerate(benchmarks):
                value = grid[r, c]
                if math.isnan(value):
                    ax.text(c, r, "n/a", ha="center", va="center", fontsize=6, color="#666666")
                    continue
                mark = comparability(series.scores[benchmark.key], board.baseline.scores[benchmark.key]).mark
                ax.text(c, r, f"{value:+.1f}{mark}", ha="center", va="center", fontsize=6,
                        color="white" if abs(value) > 0.6 * limit else "black")
        ax.set_xticks(range(len(benchmarks)), [b.label for b in benchmarks], rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), [s.label for s in rows])
        fig.colorbar(image, ax=ax, label="points vs GPT-4", shrink=0.8)
        ax.set_title("Gap to GPT-4 (score − GPT-4, points)")
        missing = [b.label for b in board.benchmarks if b not in benchmarks]
        ax.set_xlabel("*: loosely comparable with the baseline (only the protocol differs); †: not comparable"
                      + (f"\nnot shown (no GPT-4 score): {', '.join(missing)}" if missing else ""),
                      fontsize=6, labelpad=6)
        return _save(fig, out_dir, "gap")


def radar_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    keys = [b.key for b in board.with_baseline]
    angles = np.linspace(0, 2 * np.pi, len(keys), endpoint=False).tolist()
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 3.4), subplot_kw={"polar": True})
        if len(keys) < 3:
            return _nothing_to_draw(fig, ax, out_dir, "radar", f"A radar needs 3 or more benchmarks with a GPT-4 "
                                    f"score; this suite has {len(keys)}.")
        everyone = [*board.series, *(board.references[:1] if board.baseline else [])]
        for i, series in enumerate(everyone):
            if not all(k in series.scores for k in keys):
                continue
            values = [series.scores[k].value for k in keys]
            is_base = series is board.baseline or (board.baseline and series.model == board.baseline.model)
            color = "#444444" if is_base else OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot([*angles, angles[0]], [*values, values[0]], color=color, linewidth=1.0,
                    linestyle="--" if is_base else "-", label=series.label + (_mark(board, series) if is_base else ""))
            ax.fill([*angles, angles[0]], [*values, values[0]], color=color, alpha=0.08)
        ax.set_theta_offset(np.pi / 2)
        ax.set_theta_direction(-1)
        ax.set_xticks(angles, [b.label for b in board.with_baseline])
        ax.tick_params(axis="x", pad=12)
        ax.set_rlabel_position(180 / len(keys))
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75], ["25", "50", "75"])
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
        ax.set_title("Models against GPT-4 (%)", pad=18)
        return _save(fig, out_dir, "radar")


def size_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    common = [b.key for b in board.with_baseline]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 2.6))
        points = [(i, s, board.average(s, common), s.parameters) for i, s in enumerate(board.series)]
        points = [point for point in points if point[2] is not None and point[3] is not None]
        if not points:
            return _nothing_to_draw(fig, ax, out_dir, "size", "No model of known size has a score on every "
                                    "benchmark GPT-4 reports here.")
        for i, series, average, params in points:
            ax.scatter(params, average, color=OKABE_ITO[i % len(OKABE_ITO)], s=18, label=series.label, zorder=3,
                       marker="o" if series.source == "measured" else "s")
        base = board.average(board.baseline, common)
        ax.axhline(base, color="#444444", linestyle="--", linewidth=1.0,
                   label=f"GPT-4{_mark(board, board.baseline)} ({base:.1f})")
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
