"""Matplotlib charts of a :class:`Leaderboard`: leaderboard bars, gap heatmap, radar, size vs score.

Charts are drawn for a paper column (3.4 in wide at 9 pt; 7 in for the wide bar chart), in the
Okabe-Ito colour-blind-safe palette, for any number of benchmarks. Hatching marks a bar that is only
loosely comparable with this harness's protocol, a dagger one that is not comparable, a double dagger one
measured on a subset (``--limit``); each measured bar says on how many docs (n) it was scored. A measured
score on fewer than :data:`harness.leaderboard.MIN_DOCS` docs is greyed out and left out of the averages.
Titles, legends and labels name the leaderboard's baseline (``--baseline``). A chart with nothing to draw
says why in place of the plot.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from harness.comparison import Comparability, comparability  # noqa: E402
from harness.leaderboard import MIN_DOCS, Leaderboard, Series, display_name, docs, too_few_docs  # noqa: E402

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FORMATS = ("png", "svg", "pdf")
STYLE = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 6.5, "svg.hashsalt": "open-llm-harness", "svg.fonttype": "path", "pdf.fonttype": 42,
    "axes.spines.top": False, "axes.spines.right": False,
}
HATCH = {Comparability.COMPARABLE: "", Comparability.LOOSELY: "///", Comparability.NOT: "xx"}
GREY = "#DDDDDD"  # the face of a score on too few docs to read
TOO_FEW = f"n < {MIN_DOCS}: too few docs to read (grey; left out of every average)"


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


def series_label(series: Series) -> str:
    """A series' legend label, ``‡`` after a measured series with a score on a subset of the docs."""
    return f"{display_name(series.model)} ({series.source_label})" + ("‡" if series.subset else "")


def bar_note(score) -> str:
    """The text written on a measured bar: the number of docs it was scored on ("" for a published bar)."""
    n = docs(score)
    return "" if not score.measured or n is None else f"n={n}"


def _others(board: Leaderboard) -> list[Series]:
    """The series compared with the baseline: every series of the board but the baseline itself."""
    return [s for s in board.series if s is not board.baseline]


def leaderboard_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    keys = [b.key for b in board.benchmarks]
    width = 0.8 / max(len(board.series), 1)
    x = np.arange(len(keys))
    handles = []
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(min(7.0, 2.6 + 0.75 * len(keys)), 3.0))
        for i, series in enumerate(board.series):
            color = OKABE_ITO[i % len(OKABE_ITO)]
            handles.append(Patch(facecolor=color, label=series_label(series)))
            for key in (k for k in keys if k in series.scores):
                score = series.scores[key]
                verdict = board.verdict(score)
                grey = too_few_docs(score)
                xpos = x[keys.index(key)] - 0.4 + width * (i + 0.5)
                ax.bar(xpos, score.value, width * 0.92, color=GREY if grey else color, hatch=HATCH[verdict],
                       edgecolor=color if grey else "white", linewidth=0.8 if grey else 0.3)
                top = score.value
                if score.stderr:
                    ax.errorbar(xpos, score.value, yerr=score.stderr, color="black", capsize=1.5, linewidth=0.6)
                    top = min(score.value + score.stderr, 100)
                mark = ("†" if verdict is Comparability.NOT else "") + ("‡" if score.subset else "")
                note = bar_note(score)
                if note and score.value >= 4 + 2 * len(note):  # room inside the bar, from its foot
                    ax.text(xpos, 1.5, note, ha="center", va="bottom", rotation=90, fontsize=5.5,
                            color="#222222" if grey else "white",  # over a hatch, on a patch of the bar's grey
                            bbox={"boxstyle": "square,pad=0.1", "facecolor": GREY, "linewidth": 0} if grey else None)
                elif note:  # a short bar: n above it (and its error bar), under the marks
                    ax.text(xpos, top + 2, note, ha="center", va="bottom", rotation=90, fontsize=5.5,
                            color="#222222")
                    top += 2 * len(note) + 3
                if mark:
                    ax.text(xpos, top + 1, mark, ha="center", va="bottom", fontsize=6)
        lines = list(zip(board.references, ("-", "--")))
        if board.baseline is not None and board.baseline not in board.references and board.baseline not in board.series:
            lines.append((board.baseline, ":"))
        lined = []  # the reference lines come first in the legend
        for ref, style in lines:
            for key in (k for k in keys if k in ref.scores):
                xpos = x[keys.index(key)]
                ax.hlines(ref.scores[key].value, xpos - 0.45, xpos + 0.45, colors="#444444", linestyles=style,
                          linewidth=1.0)
            if any(k in ref.scores for k in keys):
                lined.append(Line2D([], [], color="#444444", linestyle=style, linewidth=1.0,
                                    label=series_label(ref) + _mark(board, ref)))
        handles = lined + handles
        if board.any_too_few:
            handles.append(Patch(facecolor=GREY, edgecolor="#777777", linewidth=0.8, label=TOO_FEW))
        ax.set_xticks(x, [b.label for b in board.benchmarks], rotation=20 if len(keys) > 6 else 0,
                      ha="right" if len(keys) > 6 else "center")
        ax.set_xlim(-0.5, len(keys) - 0.5)
        ax.set_ylabel("score (%)")
        ax.set_ylim(0, 100)
        legend = ax.legend(handles=handles, ncols=2 if len(keys) < 4 else 3, loc="upper center", frameon=False,
                           bbox_to_anchor=(0.5, -0.18 if len(keys) > 6 else -0.13))
        ax.set_title("Measured and published scores (error bars: ±1 stderr)")
        notes = ["Hatched / *: loosely comparable (only the scoring protocol differs, e.g. letter choice vs "
                 "log-likelihood ranking). † / cross-hatched: not comparable (n-shot or metric differ). "
                 "‡: measured on a subset of the docs (--limit). n: the number of docs a measured bar was scored on.",
                 *([f"Grey: n < {MIN_DOCS} docs, too few to read; such a score is left out of every average."]
                   if board.any_too_few else []),
                 *board.notes()]
        ax.annotate(" ".join(notes), xy=(0.5, 0), xycoords=legend, xytext=(0, -6), textcoords="offset points",
                    ha="center", va="top", multialignment="left", fontsize=6, wrap=True)
        return _save(fig, out_dir, "leaderboard")


def gap_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    benchmarks = board.with_baseline
    rows = _others(board)
    name = board.baseline_name
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4 + 0.3 * len(benchmarks), 0.6 + 0.32 * max(len(rows), 1)))
        if not benchmarks or not rows:
            return _nothing_to_draw(fig, ax, out_dir, "gap", f"No gap to {name}: it has no published score on "
                                    "these benchmarks." if rows else f"No series to compare with {name}.")
        grid = np.array([[board.gap(s, b.key) for b in benchmarks] for s in rows], dtype=float)  # None → NaN
        grey = np.array([[b.key in s.scores and too_few_docs(s.scores[b.key]) for b in benchmarks] for s in rows])
        readable = np.where(grey, np.nan, grid)
        limit = np.nanmax(np.abs(readable)) if np.isfinite(readable).any() else 1.0
        image = ax.imshow(readable, cmap="PuOr", vmin=-limit, vmax=limit, aspect="auto")
        for r, series in enumerate(rows):
            for c, benchmark in enumerate(benchmarks):
                value = grid[r, c]
                if math.isnan(value):
                    ax.text(c, r, "n/a", ha="center", va="center", fontsize=6, color="#666666")
                    continue
                mark = comparability(series.scores[benchmark.key], board.baseline.scores[benchmark.key]).mark
                if grey[r, c]:
                    ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=GREY, edgecolor="#C8C8C8",
                                           hatch="///", linewidth=0))
                    ax.text(c, r, f"{value:+.1f}{mark} ({bar_note(series.scores[benchmark.key])})", ha="center",
                            va="center", fontsize=5.5, color="#222222",
                            bbox={"boxstyle": "square,pad=0.15", "facecolor": GREY, "linewidth": 0})
                    continue
                ax.text(c, r, f"{value:+.1f}{mark}", ha="center", va="center", fontsize=6,
                        color="white" if abs(value) > 0.6 * limit else "black")
        ax.set_xticks(range(len(benchmarks)), [b.label for b in benchmarks], rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), [series_label(s) for s in rows])
        fig.colorbar(image, ax=ax, label=f"points vs {name}", shrink=0.8)
        ax.set_title(f"Gap to {name} (score − {name}, points)")
        missing = [b.label for b in board.benchmarks if b not in benchmarks]
        ax.set_xlabel("*: loosely comparable with the baseline (only the protocol differs); †: not comparable; "
                      "‡: measured on a subset (--limit)"
                      + (f"\ngrey: n < {MIN_DOCS} docs, too few to read" if grey.any() else "")
                      + (f"\nnot shown (no {name} score): {', '.join(missing)}" if missing else ""),
                      fontsize=6, labelpad=6)
        return _save(fig, out_dir, "gap")


def radar_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    keys = [b.key for b in board.with_baseline]
    angles = np.linspace(0, 2 * np.pi, len(keys), endpoint=False).tolist()
    name = board.baseline_name
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 3.4), subplot_kw={"polar": True})
        if len(keys) < 3:
            return _nothing_to_draw(fig, ax, out_dir, "radar", f"A radar needs 3 or more benchmarks with a {name} "
                                    f"score; this suite has {len(keys)}.")
        any_grey, not_drawn = False, []
        for i, series in enumerate([*_others(board), board.baseline]):
            if not all(k in series.scores for k in keys):
                not_drawn.append(series_label(series))
                continue
            values = [series.scores[k].value for k in keys]
            is_base = series is board.baseline
            index = board.series.index(series) if series in board.series else i
            color = "#444444" if is_base else OKABE_ITO[index % len(OKABE_ITO)]
            grey = [j for j, k in enumerate(keys) if too_few_docs(series.scores[k])]
            any_grey = any_grey or bool(grey)
            ax.plot([*angles, angles[0]], [*values, values[0]], color=color, linewidth=1.0,
                    linestyle="--" if is_base else ":" if grey else "-",
                    label=series_label(series) + (_mark(board, series) if is_base else ""))
            ax.fill([*angles, angles[0]], [*values, values[0]], color=color, alpha=0.08)
            if grey:
                ax.scatter([angles[j] for j in grey], [values[j] for j in grey], s=14, facecolors=GREY,
                           edgecolors=color, linewidths=0.8, zorder=3)
        if any_grey:
            ax.scatter([], [], s=14, facecolors=GREY, edgecolors="#777777", linewidths=0.8,
                       label=f"n < {MIN_DOCS}: too few docs to read (dotted line)")
        ax.set_theta_offset(np.pi / 2)
        ax.set_theta_direction(-1)
        ax.set_xticks(angles, [b.label for b in board.with_baseline])
        ax.tick_params(axis="x", pad=12)
        ax.set_rlabel_position(180 / len(keys))
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75], ["25", "50", "75"], fontsize=6, color="#555555")
        legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
        if not_drawn:
            ax.annotate(f"Not drawn (no score on every axis): {'; '.join(not_drawn)}.", xy=(0.5, 0), xycoords=legend,
                        xytext=(0, -4), textcoords="offset points", ha="center", va="top", fontsize=6, wrap=True)
        ax.set_title(f"Models against {name} (%)", pad=18)
        return _save(fig, out_dir, "radar")


def _count(value: float, _position=None) -> str:
    """A parameter count for an axis: 135M, 7B, 1.5B."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


def size_chart(board: Leaderboard, out_dir: Path) -> list[Path]:
    common = [b.key for b in board.with_baseline]
    name = board.baseline_name
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 2.6))
        sized = [(i, s) for i, s in enumerate(board.series) if s.parameters is not None]
        points = [(i, s, board.average(s, common), s.parameters) for i, s in sized]
        labels = {b.key: b.label for b in board.benchmarks}
        left_out = []  # why a model of known size has no point
        for _, series, average, _ in points:
            if average is not None or not common:
                continue
            missing = [labels[k] for k in common if k not in series.scores]
            too_few = [labels[k] for k in board.too_few(series, common)]
            label = series_label(series)
            left_out.append(f"{label}: no score on {', '.join(missing)}" if missing else
                            f"{label}: n < {MIN_DOCS} docs on {', '.join(too_few)} (too few to average)")
        points = [point for point in points if point[2] is not None]
        if not points:
            why = f"No model of known size has a readable score on every benchmark with a {name} score"
            return _nothing_to_draw(fig, ax, out_dir, "size", why + (f" ({'; '.join(left_out)})." if left_out
                                                                     else "."))
        seen: dict[int, int] = {}
        for i, series, average, params in points:  # models of equal size side by side (3% apart on the log axis)
            seen[params] = seen.get(params, -1) + 1
            ax.scatter(params * 1.03 ** seen[params], average, color=OKABE_ITO[i % len(OKABE_ITO)], s=18,
                       label=series_label(series), zorder=3, marker="o" if series.source == "measured" else "s",
                       edgecolors="white", linewidths=0.4)
        base = board.average(board.baseline, common)
        if base is not None:
            ax.axhline(base, color="#444444", linestyle="--", linewidth=1.0,
                       label=f"{name}{_mark(board, board.baseline)} ({base:.1f})")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(_count))
        sizes = [params for *_, params in points]
        lead = "2357" if max(sizes) / min(sizes) < 20 else "25"  # within about a decade, more minor labels
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: _count(v) if f"{v:.0e}"[0] in lead else ""))
        ax.set_xlabel("parameters" + (" (equal sizes side by side)" if max(seen.values()) else ""))
        ax.set_ylabel("average (%)" if len(common) > 1 else "score (%)")
        title = (f"Size vs average over the {len(common)} benchmarks with a {name} score" if len(common) > 1
                 else f"Size vs score on the one benchmark with a {name} score ({labels[common[0]]})")
        ax.set_title(title.replace(" with", "\nwith") if len(title) > 60 else title, fontsize=8)
        legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
        if left_out:
            ax.annotate("Not shown: " + "; ".join(left_out) + ".", xy=(0.5, 0), xycoords=legend, xytext=(0, -4),
                        textcoords="offset points", ha="center", va="top", fontsize=6, wrap=True)
        return _save(fig, out_dir, "size")


def draw_all(board: Leaderboard, out_dir: Path) -> dict[str, list[Path]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "leaderboard": leaderboard_chart(board, out_dir),
        "gap": gap_chart(board, out_dir),
        "radar": radar_chart(board, out_dir),
        "size": size_chart(board, out_dir),
    }


def arena_chart(result, out_dir: Path) -> list[Path]:
    """Fitted Arena ratings with their 95% bootstrap whiskers and, in a group of their own, the published
    Chatbot Arena ratings (another snapshot and another population of voters: not on the same scale)."""
    from harness.published import load_published

    published = sorted((s for s in load_published() if s.benchmark == "chatbot_arena"), key=lambda s: s.value)
    fitted = list(reversed(result.ratings))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 0.6 + 0.17 * (len(fitted) + len(published) + 1)))
        y_fit = np.arange(len(fitted))
        ax.errorbar([r.rating for r in fitted], y_fit,
                    xerr=[[r.rating - r.lower for r in fitted], [r.upper - r.rating for r in fitted]],
                    fmt="o", color=OKABE_ITO[0], ms=3.5, capsize=2, lw=0.9,
                    label="rated here (95% bootstrap interval)")
        y_pub = np.arange(len(published)) + len(fitted) + 1
        ax.scatter([s.value for s in published], y_pub, marker="D", s=12, color=OKABE_ITO[1],
                   label="Chatbot Arena, published 2023-12-06 (other voters)")
        if published:
            ax.axhline(len(fitted), color="#999999", lw=0.5, ls=":")
        ax.set_yticks([*y_fit, *y_pub],
                      [*(f"{display_name(r.model)} ({r.battles})" for r in fitted),
                       *(display_name(s.model) for s in published)])
        anchor = f", anchored at {display_name(result.anchor[0])} = {result.anchor[1]:g}" if result.anchor else ""
        ax.set_xlabel(f"Elo-scale rating\n(Bradley-Terry, base 10, scale 400{anchor})")
        ax.set_title(f"Arena ratings: {len(fitted)} models rated here (battles in brackets)")
        ax.grid(axis="x", color="#EEEEEE", lw=0.5)
        ax.legend(loc="upper center", bbox_to_anchor=(0.4, -0.2), frameon=False)
        return _save(fig, out_dir, "arena")


def _judged_label(score) -> str:
    """A judged model's axis label: its name, then (here, judge, questions) on a second line."""
    subset = f", {score.questions}/{score.of} questions" if score.of and score.questions < score.of else ""
    judge = "GPT-4 judge" if score.comparable else f"judge {score.judge.split(' at ')[0]}"
    return f"{display_name(score.model)}\n(here; {judge}{subset})"


def judged_chart(bench, judged, published, out_dir: Path) -> list[Path]:
    """A judged benchmark's scores (``bench`` is a ChatBench) on their own 1-10 axis: those judged here (95%
    bootstrap whiskers; hatched when the judge is not the published figures' GPT-4) above the published ones
    (GPT-4 as judge), GPT-4's own published score as a line."""
    rows = [(s, "judged") for s in judged] + [(s, "published") for s in published]
    gpt4 = next((s.value for s in published if s.model == "openai/gpt-4"), None)
    with plt.rc_context(STYLE):
        axes_height = 0.3 + 0.2 * len(rows)  # inches
        fig, ax = plt.subplots(figsize=(3.4, axes_height + 0.9))
        y = np.arange(len(rows))[::-1]
        for (score, kind), position in zip(rows, y):
            here = kind == "judged"
            ax.barh(position, score.value - 1, left=1, height=0.7, color=OKABE_ITO[0] if here else OKABE_ITO[1],
                    hatch="" if not here or score.comparable else "///", edgecolor="white", linewidth=0.4)
            if here and score.lower is not None:
                ax.errorbar(score.value, position, xerr=[[score.value - score.lower], [score.upper - score.value]],
                            color="#222222", capsize=2, lw=0.8)
            end = score.upper if here and score.upper is not None else score.value  # right of the whisker
            ax.text(min(end, 9.2) + 0.08, position, f"{score.value:.2f}", va="center", fontsize=6)
        if gpt4 is not None:
            ax.axvline(gpt4, color="#444444", ls="--", lw=0.9)
        if judged and published:
            ax.axhline(y[len(judged) - 1] - 0.5, color="#999999", lw=0.5, ls=":")
        ax.set_yticks(y, [_judged_label(s) if kind == "judged" else display_name(s.model) for s, kind in rows])
        ax.set_xlim(1, 10)
        ax.set_xticks(range(1, 11))
        turns = " over both turns" if bench.name == "mt_bench" else ""
        ax.set_xlabel(f"{bench.label} score (1-10, mean rating{turns})")
        ax.set_title(f"{bench.label}: judged here" + (" and published" if published else ""))
        handles = [Patch(color=OKABE_ITO[1], label="published (LMSYS; GPT-4 as judge)")] if published else []
        if any(s.comparable for s in judged):
            handles.insert(0, Patch(color=OKABE_ITO[0], label="judged here by GPT-4 (95% bootstrap CI)"))
        if not all(s.comparable for s in judged):
            handles.insert(0, Patch(facecolor=OKABE_ITO[0], hatch="///", edgecolor="white",
                                    label="judged here, different judge: not comparable (95% CI)"))
        if gpt4 is not None:
            handles.append(Line2D([], [], color="#444444", ls="--", lw=0.9, label=f"GPT-4, published ({gpt4:.2f})"))
        below_axis = 0.5 / (0.77 * (axes_height + 0.9))  # ticks and axis label: ~0.5 in of the axes' height
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.3, -below_axis), frameon=False)
        return _save(fig, out_dir, bench.name)


def judged_radar(bench, judged, out_dir: Path) -> list[Path]:
    """Per-category scores of the models judged here (FastChat's radar; no per-category published figures are
    in the reference data, so none are drawn)."""
    categories = sorted({c for s in judged for c in s.categories})
    angles = np.linspace(0, 2 * np.pi, len(categories), endpoint=False).tolist()
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 3.4), subplot_kw={"polar": True})
        if len(categories) < 3:
            return _nothing_to_draw(fig, ax, out_dir, f"{bench.name}_radar", "A radar needs 3 or more categories; the "
                                    f"judged answers cover {len(categories)}.")
        for i, score in enumerate(judged):
            values = [score.categories.get(c, np.nan) for c in categories]
            ax.plot([*angles, angles[0]], [*values, values[0]], color=OKABE_ITO[i % len(OKABE_ITO)], lw=1.0,
                    marker="o", ms=2.5, label=_judged_label(score))
            ax.fill([*angles, angles[0]], [*values, values[0]], color=OKABE_ITO[i % len(OKABE_ITO)], alpha=0.08)
        ax.set_theta_offset(np.pi / 2)
        ax.set_theta_direction(-1)
        ax.set_xticks(angles, categories)
        ax.tick_params(axis="x", pad=6)
        ax.set_ylim(0, 10)
        ax.set_yticks([2, 4, 6, 8, 10], ["2", "4", "6", "8", "10"], fontsize=6, color="#555555")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
        ax.set_title(f"{bench.label} per category (1-10), judged here", pad=14)
        return _save(fig, out_dir, f"{bench.name}_radar")
