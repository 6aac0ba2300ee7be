"""`harness report`: charts, tables (Markdown, CSV, LaTeX) and one self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

from harness import arena, charts
from harness.comparison import load_runs, measured_scores
from harness.errors import HarnessError
from harness.chat_bench import BENCHES, load_questions
from harness.judged import JudgedScore, is_judged, judged_scores, published_judged
from harness.leaderboard import (DEFAULT_BASELINE, DEFAULT_PUBLISHED, DEFAULT_SUITE, MIN_DOCS, Leaderboard, Series,
                                 build, docs, suite_benchmarks, too_few_docs)
from harness.published import PUBLISHED_CSV, load_published

CSV_COLUMNS = ("series", "model", "source", "benchmark", "n_shot", "metric", "protocol", "score", "stderr", "n",
               "gap_vs_baseline", "comparability", "source_title", "locator", "caveats")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table_rows(board: Leaderboard) -> list[dict[str, str]]:
    """One row per (series, benchmark), references included: the long form behind every chart."""
    rows = []
    for series in [*board.series, *board.references]:
        for benchmark in (b.key for b in board.benchmarks):
            score = series.scores.get(benchmark)
            if score is None:
                continue
            rows.append({
                "series": series.label, "model": series.model, "source": series.source, "benchmark": benchmark,
                "n_shot": "" if score.n_shot is None else str(score.n_shot), "metric": score.metric,
                "protocol": score.protocol, "score": _fmt(score.value, 2), "stderr": _fmt(score.stderr, 2),
                "n": "" if docs(score) is None else str(docs(score)),
                "gap_vs_baseline": _fmt(board.gap(series, benchmark), 2),
                "comparability": board.verdict(score).value, "source_title": score.source_title,
                "locator": score.locator, "caveats": score.caveats,
            })
    return rows


def _wide(board: Leaderboard) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows (one per series, marks on cells) and the footnotes for the Markdown/LaTeX/HTML tables."""
    header = ["model", "source", *[b.label for b in board.benchmarks], "average"]
    body = []
    for series in [*board.series, *board.references]:
        cells = []
        for benchmark in board.benchmarks:
            score = series.scores.get(benchmark.key)
            if score is None:
                cells.append("—")
                continue
            subset = "‡" if score.subset else ""
            n = f" (n={docs(score)})" if docs(score) is not None and (score.subset or too_few_docs(score)) else ""
            cells.append(f"{score.value:.1f}{board.verdict(score).mark}{subset}{n}")
        average = board.average(series)
        body.append([series.model, series.source_label, *cells, "—" if average is None else _fmt(average)])
    notes = [
        "Scores in %. Unmarked: measured the way this harness measures (same n-shot, metric and protocol).",
        "*: loosely comparable — only the scoring protocol differs (e.g. letter choice vs log-likelihood ranking).",
        "†: not comparable — n-shot or metric differ. ‡: measured on a subset of the docs (--limit); "
        "(n=N): the number of docs it was scored on.",
        f"Average: over all the suite's benchmarks, only when all are present and no measured score of the row "
        f"has fewer than {MIN_DOCS} docs; — otherwise.",
        *([f"n < {MIN_DOCS}: too few docs to read; such a score is left out of every average (its row's "
           "average is —)."] if board.any_too_few else []),
        *board.notes(),
    ]
    return header, body, notes


def write_tables(board: Leaderboard, out_dir: Path) -> list[Path]:
    rows = table_rows(board)
    csv_path = out_dir / "leaderboard.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    header, body, notes = _wide(board)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in body]
    sources = sorted({f"- {r['series']}: {r['source_title']} ({r['locator']})"
                      for r in rows if r["source"] != "measured"})
    md += ["", *notes, *(["", "Sources:", *sources] if sources else [])]
    md_path = out_dir / "leaderboard.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")

    def tex(text: str) -> str:
        for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                              ("†", r"$^\dagger$"), ("‡", r"$^\ddagger$"), ("*", r"$^*$"), ("—", "--")):
            text = text.replace(char, escaped)
        return text

    lines = [r"\begin{tabular}{ll" + "r" * (len(header) - 2) + "}", r"\toprule",
             " & ".join(tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(tex(cell) for cell in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}", *[f"% {note}" for note in notes]]
    tex_path = out_dir / "leaderboard.tex"
    tex_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md_path, tex_path]


JUDGED_COLUMNS = ("model", "source", "judge", "score", "lower", "upper", "questions", "comparability", "source_title",
                  "locator")


def write_judged_table(bench, judged: list[JudgedScore], published, out_dir: Path) -> Path:
    """``<bench>.csv`` (``mt_bench.csv``): the scores judged here and the published figures (on all of the
    benchmark's questions), each with its judge."""
    path = out_dir / f"{bench.name}.csv"
    every = len(load_questions(bench)) if published else 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(JUDGED_COLUMNS)
        writer.writerows((s.model, "measured", s.judge, _fmt(s.value, 2), _fmt(s.lower, 2), _fmt(s.upper, 2),
                          f"{s.questions}" + (f" of {s.of}" if s.of else ""), s.comparability, "judged here", "")
                         for s in judged)
        writer.writerows((s.model, "published", "gpt-4 (LMSYS)", _fmt(s.value, 2), "", "", every, "published",
                          s.source_title, s.locator) for s in published)
    return path


_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var ascending = th.getAttribute('data-order') !== 'asc';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-order'); });
    th.setAttribute('data-order', ascending ? 'asc' : 'desc');
    var key = function (row) {
      var text = row.cells[column].textContent.replace(/[*\\u2020\\u2021\\u2014]/g, '').trim();
      var number = parseFloat(text);
      return isNaN(number) ? text.toLowerCase() : number;
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def write_html(board: Leaderboard, out_dir: Path, chart_files: dict[str, list[Path]]) -> Path:
    header, body, notes = _wide(board)
    sources = sorted({(s.source_title, s.locator) for series in [*board.series, *board.references]
                      for s in series.scores.values() if not s.measured})
    source_index = {source: i + 1 for i, source in enumerate(sources)}

    def cite(series: Series) -> str:
        refs = sorted({source_index[(s.source_title, s.locator)] for s in series.scores.values() if not s.measured})
        return "".join(f'<sup><a href="#src{r}">[{r}]</a></sup>' for r in refs)

    rows_html = []
    for series, row in zip([*board.series, *board.references], body):
        cells = [f"<td>{html.escape(row[0])}{cite(series)}</td>", f"<td>{html.escape(row[1])}</td>"]
        cells += [f'<td class="num">{html.escape(cell)}</td>' for cell in row[2:]]
        rows_html.append("<tr>" + "".join(cells) + "</tr>")
    images = []
    for name, paths in chart_files.items():
        png = next(p for p in paths if p.suffix == ".png")
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        images.append(f'<figure><img alt="{name} chart" src="data:image/png;base64,{data}">'
                      f"<figcaption>{name}</figcaption></figure>")
    page = io.StringIO()
    page.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>open-llm-harness leaderboard</title><style>"
               "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
               "table{border-collapse:collapse;font-size:14px}th,td{padding:4px 8px;border-bottom:1px solid #ddd}"
               "th{cursor:pointer;background:#f4f4f4;text-align:left}th[data-order=asc]::after{content:' ▲'}"
               "th[data-order=desc]::after{content:' ▼'}td.num{text-align:right}"
               "figure{display:inline-block;margin:1em}img{max-width:100%}"
               "</style></head><body>\n<h1>Leaderboard</h1>\n")
    page.write('<table class="sortable" id="leaderboard"><thead><tr>'
               + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>\n")
    page.write("\n".join(rows_html) + "\n</tbody></table>\n")
    page.write("".join(f"<p><small>{html.escape(n)}</small></p>" for n in notes))
    page.write("<h2>Charts</h2>\n" + "\n".join(images) + "\n")
    if source_index:
        items = (f'<li id="src{i}">{html.escape(title)} — {html.escape(locator)}</li>'
                 for (title, locator), i in source_index.items())
        page.write("<h2>Sources</h2>\n<ol>\n" + "\n".join(items) + "\n</ol>\n")
    page.write("<script>" + _SORT_SCRIPT + "</script>\n</body></html>\n")
    path = out_dir / "index.html"
    path.write_text(page.getvalue(), encoding="utf-8")
    return path


def write_report(
    out_dir: Path,
    runs_dir: Path | None = None,
    models: tuple[str, ...] = DEFAULT_PUBLISHED,
    suite: str = DEFAULT_SUITE,
    baseline: str = DEFAULT_BASELINE,
    published_csv: Path = PUBLISHED_CSV,
    include_paths: tuple[Path, ...] = (),
    arena_dir: Path | None = None,
) -> list[Path]:
    """Every report file for the runs under ``runs_dir`` (none: published data alone) on ``suite`` (a suite,
    a task, or a comma-separated list of those; see :func:`harness.leaderboard.suite_benchmarks`); judged
    results there (``harness judge``) get their benchmark's chart and radar, and ``arena_dir`` (``harness arena
    --out``) the Arena chart."""
    out_dir = Path(out_dir)
    runs = load_runs(runs_dir) if runs_dir is not None and Path(runs_dir).is_dir() else []
    if runs_dir is not None and not runs:
        raise HarnessError(f"no run result in {runs_dir}", "pass the folder `harness run` wrote, or leave out --runs "
                                                          "for a report of published scores only")
    ratings = arena.read(arena_dir) if arena_dir is not None else None
    judged = judged_scores(runs)
    runs = [run for run in runs if not is_judged(run)]
    benchmarks = suite_benchmarks(suite, runs, include_paths)
    published = load_published(published_csv)
    named = {score.model for score in published}
    unknown = [model for model in models if model not in named]
    if unknown:
        raise HarnessError(f"--models names {', '.join(unknown)}, which have no published scores",
                           "use models of the published scores (harness/published_scores.csv)")
    if baseline not in named | {run.model for run in runs}:
        raise HarnessError(f"--baseline {baseline} has no published scores and no run here",
                           f"use a published model (the default is {DEFAULT_BASELINE}) or a model of --runs")
    out_dir.mkdir(parents=True, exist_ok=True)
    board = build(measured_scores(runs, benchmarks), published, benchmarks, models, baseline)
    chart_files = charts.draw_all(board, out_dir)
    extra = []
    for bench in (b for b in BENCHES.values() if any(s.bench == b.name for s in judged)):
        scores, published_rows = [s for s in judged if s.bench == bench.name], published_judged(bench.name)
        chart_files[bench.label] = charts.judged_chart(bench, scores, published_rows, out_dir)
        chart_files[f"{bench.label} per category"] = charts.judged_radar(bench, scores, out_dir)
        extra.append(write_judged_table(bench, scores, published_rows, out_dir))
    if ratings is not None:
        chart_files["Arena ratings"] = charts.arena_chart(ratings, out_dir)
    files = [path for paths in chart_files.values() for path in paths]
    files += write_tables(board, out_dir) + extra
    files.append(write_html(board, out_dir, chart_files))
    return files
