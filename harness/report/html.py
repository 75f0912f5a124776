"""report.html: the report as one self-contained page: provenance, sortable leaderboards, the
figures with their captions, the warnings, and every run with its status and rerun command.

Formats what grouping.py scored (through tables.py's formatting); never scores, never writes into a
run folder, and needs no network to view: CSS and JavaScript inline, figures as data: URIs.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness import results
from harness.report import load, tables

if TYPE_CHECKING:
    from harness.report.grouping import Group

PAGE = "report.html"
RUNS_PER_PAGE = 100  # rows of the per-run table drawn at once; the rest are a click away
LIST_LIMIT = 8  # values named in one provenance line; the rest are counted
IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
CAPTION_SUFFIXES = (".caption.txt", ".txt")  # a caption file beside a figure wins over ours
PNG_DPI = 200  # of the report's PNGs (figures.PNG_DPI)
SCREEN_DPI = 144  # CSS pixels per inch of a figure on the page: 1.5 times its size on paper
FIGURE_TEXT = {  # what each of figures.FIGURES shows; the leaderboard's details follow
    "performance_profile": "Performance profile: for each submission, the fraction ρ(τ) of "
    "workloads it reached within τ times the fastest submission's time.",
    "curves_time": "Validation metric against submission time, per workload: median over "
    "studies of each study's best trial, with a band over the studies; the target dashed.",
    "curves_steps": "Validation metric against steps, per workload: median over studies of each "
    "study's best trial, with a band over the studies; the target dashed.",
    "time_to_target": "Time-to-target per workload: each study's best trial, the median over "
    "studies and its bootstrap interval; ∞: not reached.",
}


@dataclass(frozen=True)
class Column:
    key: str  # the name a URL fragment sorts by (#sort=runs:status)
    label: str
    kind: str  # how the page's script shows a value: text, num, time, flag, code, run
    below: bool = False  # shown on a line of its own under the run's row


TABLE_COLUMNS = (
    Column("run", "run", "run"),
    Column("leaderboard", "board", "num"),
    Column("submission", "submission", "text"),
    Column("workload", "workload", "text"),
    Column("study", "study", "num"),
    Column("trial", "trial", "num"),
    Column("status", "status", "text"),
    Column("time", "time-to-target (s)", "time"),
    Column("steps", "steps-to-target", "num"),
    Column("metric", "final metric", "num"),
    Column("target", "target", "text"),
    Column("best", "best trial", "flag"),
    Column("disturbed", "disturbed", "flag"),
    Column("notes", "warnings", "text", below=True),
    Column("command", "rerun", "code", below=True),
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# -- the page ------------------------------------------------------------------------------------
def write(
    out: Path,
    groups: Sequence[Group],
    loaded: load.Results,
    figure_paths: Iterable[Path] = (),
    warnings: Sequence[str] = (),
    argv: Sequence[str] = (),
) -> Path:
    """Write out/report.html for the runs in `loaded` (scored or not) and their leaderboards;
    `figure_paths`: what the report wrote (its images are embedded); `warnings`: what it
    printed; `argv`: its command-line arguments."""
    path = out / PAGE
    text = page(
        groups,
        loaded.runs,
        figure_paths=list(figure_paths),
        warnings=warnings,
        record_warnings=loaded.warnings,
        command=shlex.join(["python", "-m", "harness.report", *argv]),
        results_dirs=[loaded.root],
        out=out,
    )
    results.write_text(path, text)
    return path


def page(
    groups: Sequence[Group],
    runs: pd.DataFrame,
    *,
    figure_paths: Sequence[Path] = (),
    warnings: Sequence[str] = (),
    record_warnings: Sequence[str] = (),
    command: str = "",
    results_dirs: Sequence[Path] = (),
    out: Path | None = None,
) -> str:
    figures = figures_by_leaderboard(figure_paths, groups)
    methods = {tables.method_text(g.board.settings) for g in groups}
    shared_method = methods.pop() if len(methods) == 1 else ""
    title = "Report: " + ", ".join(str(d) for d in results_dirs) if results_dirs else "Report"
    body = [
        f"<header id=top><h1>{esc(title)}</h1>",
        provenance(groups, runs, command, results_dirs),
        f"<p class=rules><b>Scoring.</b> {esc(shared_method)}</p>" if shared_method else "",
        _contents(groups, figures, warnings),
        "</header><main>",
    ]
    for group in groups:
        body.append(
            leaderboard_section(group, figures.get(group.context.number, []), shared_method)
        )
    if figures.get(None):
        body.append("<section id=figures><h2>Figures</h2>")
        body += [_figure(f, None) for f in figures[None]]
        body.append("</section>")
    body.append(warnings_section(warnings))
    body.append(runs_section(groups, runs, record_warnings, _run_base(results_dirs, out)))
    body.append("</main>")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(p for p in body if p)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _contents(groups: Sequence[Group], figures: dict, warnings: Sequence[str]) -> str:
    links = [(f"leaderboard-{g.context.number}", g.context.title()) for g in groups]
    if figures.get(None):
        links.append(("figures", "Figures"))
    links += [("warnings", f"Warnings ({len(warnings)})"), ("runs", "Runs")]
    items = "".join(f"<li><a href='#{esc(a)}'>{esc(t)}</a></li>" for a, t in links)
    return f"<nav><ul>{items}</ul></nav>"


# -- provenance ----------------------------------------------------------------------------------
def _counted(values: pd.Series, what: str = "runs") -> str:
    """'a (3 runs); b (1 runs)', the most frequent first, at most LIST_LIMIT named."""
    counts = values[values.astype(str) != ""].astype(str).value_counts()
    if counts.empty:
        return "not recorded"
    shown = [f"{name} ({count} {what})" for name, count in counts.iloc[:LIST_LIMIT].items()]
    more = len(counts) - LIST_LIMIT
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def package_versions(packages: pd.Series) -> str:
    """Each package the records name, with its versions and how many runs used each."""
    versions: dict[str, Counter] = {}
    for text, count in packages.value_counts().items():  # few distinct texts, however many runs
        for name, version in sorted(json.loads(text or "{}").items()):
            versions.setdefault(name, Counter())[str(version)] += int(count)
    if not versions:
        return "not recorded in the runs' records"
    parts = []
    for name, counter in sorted(versions.items()):
        if len(counter) == 1:
            parts.append(f"{name} {next(iter(counter))}")
        else:
            parts.append(f"{name} " + " / ".join(f"{v} ({n} runs)" for v, n in counter.items()))
    return ", ".join(parts)


def provenance(
    groups: Sequence[Group], runs: pd.DataFrame, command: str, results_dirs: Sequence[Path]
) -> str:
    scored = sum(len(g.runs) for g in groups)
    started = runs["started_at"][runs["started_at"] != ""]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    items = [
        ("generated", f"{now} by {command}" if command else now),
        ("results", ", ".join(str(d) for d in results_dirs) or "—"),
        ("runs", f"{len(runs)} read, {scored} in {len(groups)} leaderboard(s)"),
        ("experiments", _counted(runs["experiment_name"])),
        ("rulesets", _counted(runs["ruleset"])),
        ("hardware", _counted(runs["hardware"])),
        ("runs started", f"{started.min()} to {started.max()}" if len(started) else "not recorded"),
        ("code (git commit)", _counted(runs["git_commit"])),
        ("packages", package_versions(runs["packages"])),
    ]
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f"<dl id=provenance class=provenance>{rows}</dl>"


# -- leaderboards --------------------------------------------------------------------------------
def _v(value: float | int | str) -> str:
    """A sort key for data-v: numbers as numbers, ∞ as Infinity, missing as ''."""
    if isinstance(value, str):
        return esc(value)
    value = float(value)
    if np.isnan(value):
        return ""
    return "Infinity" if np.isinf(value) else repr(value)


def _cell(value: str, sort_key: float | str, detail: str = "") -> str:
    small = f" <span class=ci>{esc(detail)}</span>" if detail else ""
    return f"<td data-v='{_v(sort_key)}'>{esc(value)}{small}</td>"


def leaderboard_table(group: Group) -> str:
    board, context = group.board, group.context
    speedup = board.speedup is not None
    header = [("rank", "rank"), ("submission", "submission"), ("score", "score")]
    header.append(("reached", f"reached (of {len(board.scored_workloads)})"))
    if speedup:
        header.append(("speedup", f"speedup vs {board.settings.baseline}"))
    header += [(f"time:{w}", w) for w in board.workloads]
    heads = "".join(
        f"<th data-key='{esc(k)}' scope=col><button type=button>{esc(label)}</button></th>"
        for k, label in header
    )
    rows = []
    for i, submission in enumerate(board.submissions):
        cells = [
            _cell(str(i + 1), i + 1),
            f"<td class=name>{esc(submission)}</td>",
            _cell(
                tables.format_score(board.scores[i], board.settings.method),
                board.scores[i],
                tables.score_interval(board, i),
            ),
            _cell(str(board.reached(i)), board.reached(i)),
        ]
        if speedup:
            text = tables.speedup_text(board, i)
            value, _, rest = text.partition(" ")
            cells.append(_cell(value, board.speedup[i], rest))
        for j in range(len(board.workloads)):
            value, spread, mark = tables.time_cell(board, i, j, context)
            key = board.times[i, j] if board.n_studies[i, j] else np.nan
            cells.append(_cell(value + mark, key, spread))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table_id = f"leaderboard-{context.number}-table"
    return (
        f"<table id='{table_id}' class=sortable><thead><tr>{heads}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def leaderboard_section(group: Group, figures: Sequence[Figure], shared_method: str) -> str:
    board, context = group.board, group.context
    parts = [
        f"<section id='leaderboard-{context.number}'><h2>{esc(context.title())}</h2>",
        f"<p>Hardware: {esc(context.hardware_text())}. {esc(context.studies_text(board))}.</p>",
    ]
    method = tables.method_text(board.settings)
    if method != shared_method:
        parts.append(f"<p class=rules><b>Scoring.</b> {esc(method)}</p>")
    parts.append(leaderboard_table(group))
    targets = "; ".join(f"{w} {context.target_text(w)}" for w in board.workloads)
    parts.append(f"<p class=note>Targets: {esc(targets)}. Click a column to sort it.</p>")
    if board.speedup is not None:
        parts.append(
            f"<p class=note>Speedup: geometric mean over workloads of the time of "
            f"{esc(board.settings.baseline)} divided by the submission's time, over the "
            "workloads both reached (count shown when fewer than all).</p>"
        )
    if context.problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in context.problems)
        parts.append(
            f"<details open><summary>Incomplete or unusual ({len(context.problems)})</summary>"
            f"<ul>{items}</ul></details>"
        )
    parts += [_figure(f, group) for f in figures]
    parts.append("</section>")
    return "\n".join(parts)


# -- figures -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    name: str  # the entry of figures.FIGURES it was drawn by ("time_to_target")
    image: Path
    caption_file: Path | None


def _caption_file(image: Path, written: set[Path]) -> Path | None:
    stem = image.with_suffix("")
    for suffix in CAPTION_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate in written or candidate.is_file():
            return candidate
    return None


def figures_by_leaderboard(
    paths: Sequence[Path], groups: Sequence[Group]
) -> dict[int | None, list[Figure]]:
    """The figures the report wrote (PNG, else SVG), keyed by the leaderboard they belong to:
    the only one, or the leaderboard's name the file name ends in (`_self`); None when
    neither says."""
    paths = [Path(p) for p in paths]
    written = set(paths)
    images: dict[Path, Path] = {}
    for path in paths:
        if path.suffix in IMAGE_TYPES:
            stem = path.with_suffix("")
            if stem not in images or path.suffix == ".png":
                images[stem] = path
    numbers = {g.context.number for g in groups}
    suffixes = {f"_{g.context.name}": g.context.number for g in groups if g.context.name}
    found: dict[int | None, list[Figure]] = {}
    for stem, image in images.items():
        name, number = stem.name, None
        if len(numbers) == 1:
            number = next(iter(numbers))
        else:
            for suffix, group_number in suffixes.items():
                if stem.name.endswith(suffix):
                    name, number = stem.name.removesuffix(suffix), group_number
                    break
        found.setdefault(number, []).append(Figure(name, image, _caption_file(image, written)))
    return found


def _png_width(data: bytes) -> int | None:
    """The width in pixels from a PNG's header, None when it is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big")


def figure_caption(figure: Figure, group: Group | None) -> str:
    if figure.caption_file is not None:
        return figure.caption_file.read_text(encoding="utf-8").strip()
    text = FIGURE_TEXT.get(figure.name, figure.name.replace("_", " ").capitalize() + ".")
    if group is None:
        return text
    context = group.context
    return (
        f"{text} {context.title()}; hardware {context.hardware_text()}; "
        f"{context.studies_text(group.board)}."
    )


def _figure(figure: Figure, group: Group | None) -> str:
    data = figure.image.read_bytes()
    mime = IMAGE_TYPES[figure.image.suffix]
    pixels = _png_width(data)
    width = f" width={round(pixels * SCREEN_DPI / PNG_DPI)}" if pixels else ""
    source = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    caption = figure_caption(figure, group)
    return (
        f"<figure data-name='{esc(figure.name)}'><img src='{source}'{width} "
        f"alt='{esc(caption)}'><figcaption>{esc(caption)} "
        f"<span class=file>({esc(figure.image.with_suffix('.pdf').name)} for the paper)</span>"
        "</figcaption></figure>"
    )


# -- warnings and runs ---------------------------------------------------------------------------
def warnings_section(warnings: Sequence[str]) -> str:
    if not warnings:
        return "<section id=warnings><h2>Warnings</h2><p>None.</p></section>"
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    return (
        f"<section id=warnings><h2>Warnings ({len(warnings)})</h2>"
        f"<p class=note>As printed by the report.</p><ul>{items}</ul></section>"
    )


def _run_base(results_dirs: Sequence[Path], out: Path | None) -> str:
    """The results folder relative to the page, for links to each run's record.json."""
    if len(results_dirs) != 1 or out is None:
        return ""
    return Path(os.path.relpath(Path(results_dirs[0]).resolve(), Path(out).resolve())).as_posix()


def run_notes(runs: pd.DataFrame, record_warnings: Sequence[str]) -> list[str]:
    """Per run: the last line of its error, why it is disturbed, and what the loader said.
    Plain lists: pandas' string methods on 10,000 runs take longer than the whole page."""
    said: dict[str, list[str]] = {}
    for message in record_warnings:
        run_id, _, text = message.partition(": ")
        said.setdefault(run_id, []).append(text)
    notes = []
    for run_id, error, reason in zip(
        runs["run_id"].tolist(),
        runs["error"].tolist(),
        runs["disturbed_reason"].tolist(),
        strict=True,
    ):
        parts = [error.strip().rpartition("\n")[2]] if error else []
        parts += [f"disturbed: {reason}"] if reason else []
        parts += said.get(run_id, [])
        notes.append("; ".join(parts))
    return notes


def _targets(runs: pd.DataFrame) -> list[str]:
    """Each run's target as 'accuracy ≥ 0.98', formatted once per distinct target."""
    columns = [runs[c].tolist() for c in ("target_metric", "target_value", "lower_is_better")]
    text = {
        (metric, value, lower): f"{metric.removeprefix('validation/')} {'≤' if lower else '≥'} "
        f"{value:g}"
        for metric, value, lower in set(zip(*columns, strict=True))
    }
    return [text[key] for key in zip(*columns, strict=True)]


def runs_data(groups: Sequence[Group], runs: pd.DataFrame, record_warnings: Sequence[str]) -> str:
    """The per-run table as a JavaScript literal: {columns: TABLE_COLUMNS, values: one list per
    column, a value per run}."""
    board_of: dict[str, int] = {}
    best: set[str] = set()
    for group in groups:
        board_of.update(dict.fromkeys(group.runs["run_id"].tolist(), group.context.number))
        best.update(group.board.studies["run_id"].tolist())
    run_ids = runs["run_id"].astype(str).tolist()
    running = (runs["status"] == "running").to_numpy()
    commands = runs["command"].tolist() if "command" in runs else [""] * len(runs)
    columns = [
        run_ids,
        [board_of.get(r) for r in run_ids],
        runs["submission"].tolist(),
        runs["workload"].tolist(),
        runs["study"].astype(int).tolist(),
        runs["trial"].astype(int).tolist(),
        runs["status"].tolist(),
        np.where(running, np.nan, runs["time_to_target"].to_numpy(float)).tolist(),
        runs["steps_to_target"].to_numpy(float).tolist(),
        runs["final_validation_metric"].to_numpy(float).tolist(),
        _targets(runs),
        ["yes" if r in best else "" for r in run_ids],
        ["yes" if d else "" for d in runs["disturbed"].tolist()],
        run_notes(runs, record_warnings),
        commands,
    ]
    # By column: ten thousand rows as lists would cost a garbage collection or two.
    data = {"columns": [vars(c) for c in TABLE_COLUMNS], "values": columns}
    # Infinity and NaN are JavaScript; "<" inside strings only, so \u003c keeps </script> out.
    text = json.dumps(data, allow_nan=True, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def runs_section(
    groups: Sequence[Group], runs: pd.DataFrame, record_warnings: Sequence[str], base: str
) -> str:
    heads = "".join(
        f"<th data-key='{esc(c.key)}' scope=col><button type=button>{esc(c.label)}</button></th>"
        for c in TABLE_COLUMNS
        if not c.below
    )
    statuses = "".join(
        f"<option value='{esc(s)}'>{esc(s)}</option>" for s in sorted(runs["status"].unique())
    )
    return (
        "<section id=runs><h2>Runs</h2>"
        f"<p class=note>Every run read ({len(runs)}), scored or not; 'best trial': the run a "
        "study's time comes from; run ids link to each run's record.json. "
        "Type to filter (any column), click a column to sort.</p>"
        "<div class=controls><input id=runs-filter type=search placeholder='filter runs' "
        "aria-label='filter runs'> <select id=runs-status aria-label='status'>"
        f"<option value=''>any status</option>{statuses}</select> "
        "<button type=button id=runs-prev>previous</button> <span id=runs-count></span> "
        "<button type=button id=runs-next>next</button></div>"
        f"<div class=scroll><table id=runs-table><thead><tr>{heads}</tr></thead>"
        "<tbody></tbody></table></div>"
        "<noscript><p>The run table needs JavaScript; every run is also in "
        "best_trials.csv and the run folders.</p></noscript>"
        f"<script>const RUNS = {runs_data(groups, runs, record_warnings)};"
        f"const RUN_BASE = {json.dumps(base)}; const RUNS_PER_PAGE = {RUNS_PER_PAGE};</script>"
        "</section>"
    )


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1200px;padding:0 1.2em 3em;color:#222}
h1{font-size:1.5em;margin:.8em 0 .3em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd}
dl.provenance{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.5em 0}
dt{font-weight:600;color:#555}dd{margin:0;overflow-wrap:anywhere}
nav ul{padding:0;display:flex;flex-wrap:wrap;gap:.3em 1.2em;list-style:none}
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{padding:.25em .6em;border-bottom:1px solid #e4e4e4;text-align:right;vertical-align:top}
td.name,#runs-table td,#runs-table th{text-align:left}th{background:#f6f6f6;position:sticky;top:0}
th button{all:unset;cursor:pointer;font-weight:600}
th[aria-sort=ascending] button::after{content:" ▲"}
th[aria-sort=descending] button::after{content:" ▼"}
.ci{display:block;font-size:.8em;color:#666}.note{color:#555;font-size:.92em}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.92em;color:#333;max-width:60em}.file{color:#777}
.controls{display:flex;gap:.5em;align-items:center;flex-wrap:wrap}
.scroll{overflow-x:auto}#runs-table{font-size:.88em}#runs-table td{white-space:nowrap}
#runs-table tr.run td{border-bottom:0}#runs-table tr.below td{white-space:normal;color:#555;
padding-top:0}#runs-table tr.below span{display:block}
#runs-table code{font-size:.95em;white-space:pre-wrap;overflow-wrap:anywhere;color:#222}
#runs-table tr.below .notes{color:#b00020}
td.st-failed,td.st-diverged{color:#b00020}td.st-running{color:#8a6d00}
"""

SCRIPT = r"""
"use strict";
(function () {
  // Sort keys: numbers numerically, ∞ after every number and blanks after ∞, in either
  // direction; text in natural order (study_2 before study_10).
  function rank(v) {
    if (v === null || v === undefined || v === "" || (typeof v === "number" && isNaN(v))) return 2;
    return v === Infinity ? 1 : 0;
  }
  function compare(a, b, desc) {
    const ra = rank(a), rb = rank(b);
    if (ra !== rb || ra !== 0) return ra - rb;
    const c = typeof a === "number" && typeof b === "number" ? a - b
      : String(a).localeCompare(String(b), undefined, {numeric: true});
    return desc ? -c : c;
  }
  function cellKey(td) {
    const v = td.dataset.v;
    if (v === undefined) return td.textContent.trim();
    if (v === "") return null;
    return v === "Infinity" ? Infinity : Number(v);
  }
  function mark(table, key, desc) {
    for (const th of table.tHead.rows[0].cells) {
      if (th.dataset.key === key) th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
  }
  function columnOf(table, key) {
    return Array.from(table.tHead.rows[0].cells).findIndex(th => th.dataset.key === key);
  }
  function sortStatic(table, key, desc) {
    const j = columnOf(table, key);
    if (j < 0) return;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).map(tr => [cellKey(tr.cells[j]), tr]);
    rows.sort((x, y) => compare(x[0], y[0], desc));
    for (const [, tr] of rows) body.appendChild(tr);
    mark(table, key, desc);
  }
  function nextDesc(table, key) {
    const th = table.tHead.rows[0].cells[columnOf(table, key)];
    return th.getAttribute("aria-sort") === "ascending";
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    table.tHead.addEventListener("click", e => {
      const th = e.target.closest("th");
      if (th) sortStatic(table, th.dataset.key, nextDesc(table, th.dataset.key));
    });
  }

  // The per-run table: rows from RUNS, filtered, sorted and drawn a page at a time.
  const table = document.getElementById("runs-table");
  const columns = RUNS.columns, values = RUNS.values, n = values[0].length;
  const state = {key: null, desc: false, filter: "", status: "", page: 0};
  const statusColumn = columns.findIndex(c => c.key === "status");
  let haystack = null;
  function escape(s) {
    return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
      '"': "&quot;", "'": "&#39;"})[c]);
  }
  function time(v) {
    if (v === Infinity) return "∞";
    if (v === null || isNaN(v)) return "";
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  function show(v, kind) {
    if (kind === "time") return time(v);
    if (v === null || (typeof v === "number" && isNaN(v))) return "";
    if (kind === "num") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
    return String(v);
  }
  const inRow = columns.filter(c => !c.below).length;
  function below(i) {  // warnings and the rerun command, on a line under the run's row
    const parts = [];
    columns.forEach((c, j) => {
      const v = values[j][i];
      if (!c.below || v === "" || v === null) return;
      const text = escape(show(v, c.kind));
      parts.push("<span class=\"" + c.key + "\">" + escape(c.label) + ": " +
        (c.kind === "code" ? "<code>" + text + "</code>" : text) + "</span>");
    });
    return parts.length ? "<tr class=below><td colspan=" + inRow + ">" + parts.join(" ") +
      "</td></tr>" : "";
  }
  function cell(v, c) {
    const text = escape(show(v, c.kind));
    if (c.below) return "";
    if (c.kind === "run" && RUN_BASE)
      return "<td><a href=\"" + escape(encodeURI(RUN_BASE + "/" + v + "/record.json")) + "\">" +
        text + "</a></td>";
    if (c.key === "status") return "<td class=\"st-" + text + "\">" + text + "</td>";
    return "<td>" + text + "</td>";
  }
  function visible() {
    let picked = Array.from({length: n}, (_, i) => i);
    if (state.status) picked = picked.filter(i => values[statusColumn][i] === state.status);
    if (state.filter) {
      if (haystack === null)
        haystack = Array.from({length: n}, (_, i) =>
          columns.map((c, j) => show(values[j][i], c.kind)).join("\t").toLowerCase());
      const words = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
      picked = picked.filter(i => words.every(w => haystack[i].includes(w)));
    }
    const j = columns.findIndex(c => c.key === state.key);
    if (j >= 0) picked.sort((a, b) => compare(values[j][a], values[j][b], state.desc));
    return picked;
  }
  function draw() {
    const picked = visible();
    const pages = Math.max(1, Math.ceil(picked.length / RUNS_PER_PAGE));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const first = state.page * RUNS_PER_PAGE;
    const shown = picked.slice(first, first + RUNS_PER_PAGE);
    table.tBodies[0].innerHTML = shown.map(i => "<tr class=run>" +
      columns.map((c, j) => cell(values[j][i], c)).join("") + "</tr>" + below(i)).join("");
    const of = picked.length === n ? "" : " (filtered from " + n + ")";
    document.getElementById("runs-count").textContent = picked.length === 0 ? "no runs" + of :
      "runs " + (first + 1) + "–" + (first + shown.length) + " of " + picked.length + of;
    document.getElementById("runs-prev").disabled = state.page === 0;
    document.getElementById("runs-next").disabled = state.page >= pages - 1;
    if (state.key) mark(table, state.key, state.desc);
  }
  table.tHead.addEventListener("click", e => {
    const th = e.target.closest("th");
    if (!th) return;
    state.desc = state.key === th.dataset.key && !state.desc;
    state.key = th.dataset.key;
    draw();
  });
  const filter = document.getElementById("runs-filter");
  const status = document.getElementById("runs-status");
  filter.addEventListener("input", () => { state.filter = filter.value; state.page = 0; draw(); });
  status.addEventListener("change", () => { state.status = status.value; state.page = 0; draw(); });
  document.getElementById("runs-prev").addEventListener("click", () => { state.page--; draw(); });
  document.getElementById("runs-next").addEventListener("click", () => { state.page++; draw(); });

  // A link may say how to show the tables: #sort=TABLE:COLUMN[:desc]&filter=TEXT&status=S&page=N
  // (TABLE: runs, or leaderboard-N), e.g. report.html#sort=runs:time&status=failed.
  function applyHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const spec of params.getAll("sort")) {
      const desc = spec.endsWith(":desc");
      const [name, ...rest] = spec.replace(/:(desc|asc)$/, "").split(":");
      const key = rest.join(":");
      if (name === "runs") { state.key = key; state.desc = desc; continue; }
      const target = document.getElementById(name + "-table");
      if (target) sortStatic(target, key, desc);
    }
    state.filter = filter.value = params.get("filter") || "";
    state.status = status.value = params.get("status") || "";
    state.page = Number(params.get("page") || 0);
    draw();
  }
  window.addEventListener("hashchange", applyHash);
  applyHash();
  // What a browser decoded, for a check without a screen: each figure's width in pixels.
  window.addEventListener("load", () => {
    for (const img of document.images) img.dataset.naturalWidth = img.naturalWidth;
    document.body.dataset.loaded = "yes";
    document.body.dataset.loadedAfterMs = Math.round(performance.now());
  });
})();
"""
