"""Figures for papers from a scored leaderboard: performance profiles, validation curves over
time and over steps with a band over studies, and time-to-target with confidence intervals.

Sized for a two-column paper (one column 3.25 in, full width 6.75 in, 7-8 pt text); one colour
and line style per submission across every figure. A figure is a function of FigureData listed
in FIGURES: the report draws, checks and saves every entry. Never computes a score (scoring.py
does) and never reads files.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import textwrap
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from harness.report.scoring import UNITS, Leaderboard, performance_profile, performance_ratios

COLUMN_WIDTH = 3.25  # inches: one column of a two-column paper
FULL_WIDTH = 6.75
MAX_COLUMNS = 3  # workload panels per row at full width
# Okabe & Ito's colour-blind-safe palette, then colours far from all of them; yellow last (it
# is faint on white). Beyond these, colours repeat with another line style and marker.
PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#8C564B",  # brown
    "#7B3294",  # purple
    "#7F7F7F",  # grey
    "#9A9A00",  # olive
    "#C51B7D",  # magenta
    "#F0E442",  # yellow
)
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 7,
    "lines.linewidth": 1.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF, as journals ask
    "ps.fonttype": 42,
    "savefig.dpi": 300,
}
PNG_DPI = 200  # the PNG is for a quick look; the PDF, vector, is for the paper
TARGET_STYLE = {"color": "0.35", "linestyle": (0, (4, 2)), "linewidth": 0.9}


@dataclass(frozen=True)
class Look:
    color: str
    linestyle: object
    marker: str


def submission_looks(submissions: Sequence[str]) -> dict[str, Look]:
    """A fixed look per submission name, in sorted order, shared by every figure of a report."""
    return {
        name: Look(
            PALETTE[k % len(PALETTE)],
            LINESTYLES[k % len(LINESTYLES)],
            MARKERS[k % len(MARKERS)],
        )
        for k, name in enumerate(sorted(set(submissions)))
    }


@dataclass
class Caption:
    """What every figure states: where the runs ran and how many there are."""

    hardware: str
    detail: str  # e.g. "ruleset external, n = 3 studies x 5 trials"

    def text(self, width_inches: float) -> str:
        characters = max(40, int(width_inches * 17))  # ~17 characters per inch at 7 pt
        return textwrap.fill(f"{self.hardware} · {self.detail}", characters)


@dataclass(frozen=True)
class FigureData:
    """Everything a figure may draw: one scored leaderboard, its runs' evaluations (load.py's
    table), each workload's (metric column, target value, lower is better), and the looks."""

    board: Leaderboard
    evaluations: pd.DataFrame
    targets: dict[str, tuple[str, float, bool]]
    looks: dict[str, Look]
    caption: Caption


def _new_figure(width: float, height: float, caption: Caption) -> Figure:
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(width, height), layout="constrained")
        fig.suptitle(caption.text(width), fontsize=STYLE["figure.titlesize"], color="0.25")
    return fig


def _bottom_legend(fig: Figure, handles: list, width: float) -> None:
    columns = _legend_columns([h.get_label() for h in handles], width)
    fig.legend(
        handles=_row_major(handles, columns),
        loc="outside lower center",
        ncol=max(1, columns),
        frameon=False,
        handlelength=2.6,
        columnspacing=1.2,
    )


def _legend_height(labels: Sequence[str], width: float) -> float:
    """Inches that a bottom legend of `labels` takes: ~0.16 in per row at 7 pt."""
    return 0.16 * math.ceil(len(labels) / _legend_columns(labels, width))


def _legend_columns(labels: Sequence[str], width: float) -> int:
    """The most columns whose estimated width fits in `width`: ~18 characters per inch at 7 pt,
    plus about 8 characters of line sample and spacing per entry."""
    for columns in range(len(labels), 1, -1):
        rows = math.ceil(len(labels) / columns)
        # The widest label of each column, with labels laid out row by row (see _row_major).
        widths = [max(len(label) for label in labels[c::columns]) + 8 for c in range(columns)]
        if rows * columns >= len(labels) and sum(widths) <= width * 18:
            return columns
    return 1


def _row_major(handles: list, columns: int) -> list:
    """matplotlib fills legend columns top to bottom; reorder so the legend reads by rows."""
    rows = math.ceil(len(handles) / columns)
    grid = [handles[r * columns : (r + 1) * columns] for r in range(rows)]
    return [row[c] for c in range(columns) for row in grid if c < len(row)]


# -- performance profile -------------------------------------------------------------------------
def profile_figure(data: FigureData) -> Figure:
    board, looks, caption = data.board, data.looks, data.caption
    tau_max = board.settings.tau_max
    scored = board.scored_times  # the times the score uses (held-out rule, declared workloads)
    ratios = performance_ratios(scored)
    breaks = ratios[np.isfinite(ratios) & (ratios <= tau_max)]
    taus = np.unique(np.concatenate([[1.0, tau_max], breaks]))
    rho = performance_profile(scored, taus)
    labels = [
        f"{s} ({score:.3f})" for s, score in zip(board.submissions, board.scores, strict=True)
    ]
    with plt.rc_context(STYLE):
        # The plot keeps its height however many submissions the legend below it lists.
        fig = _new_figure(COLUMN_WIDTH, 2.4 + _legend_height(labels, COLUMN_WIDTH), caption)
        ax = fig.add_subplot()
        handles = []
        for k, submission in enumerate(board.submissions):
            look = looks[submission]
            (line,) = ax.step(
                taus,
                rho[k],
                where="post",
                color=look.color,
                linestyle=look.linestyle,
                label=labels[k],
            )
            handles.append(line)
        ax.set_xlim(1.0, tau_max)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(r"$\tau$ (time-to-target / fastest)")
        ax.set_ylabel(r"fraction of workloads, $\rho(\tau)$")
        _bottom_legend(fig, handles, COLUMN_WIDTH)
    return fig


# -- validation curves ---------------------------------------------------------------------------
def _grid(board: Leaderboard) -> tuple[int, int]:
    columns = min(len(board.workloads), MAX_COLUMNS)
    return math.ceil(len(board.workloads) / columns), columns


def _band(curves: list[tuple[np.ndarray, np.ndarray]], log_x: bool, points: int = 200):
    """Median and min-max over runs on a shared x grid. Outside its own evaluations a run holds
    its nearest value: its first evaluation before it (so a run evaluated later than the others
    cannot make the median jump) and its last after it stopped at the target or the budget."""
    x_min = min(float(x.min()) for x, _ in curves)
    x_max = max(float(x.max()) for x, _ in curves)
    grid = np.geomspace(x_min, x_max, points) if log_x else np.linspace(x_min, x_max, points)
    ys = np.array([np.interp(grid, x, y) for x, y in curves])  # np.interp holds the end values
    return grid, np.median(ys, axis=0), ys.min(axis=0), ys.max(axis=0)


def _wants_log_x(curves: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Log x when runs end over more than a decade (fast reachers beside runs to the budget)."""
    ends = [float(x.max()) for x, _ in curves]
    starts = [float(x.min()) for x, _ in curves]
    return min(starts) > 0 and max(ends) / min(ends) > 10


def _run_rows(evaluations: pd.DataFrame, run_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Per run of `run_ids` that has evaluations: the positions of its rows in `evaluations`, in
    the table's order. One pass over the table; a curve is then two numpy slices rather than a
    pandas group (a figure draws hundreds of runs out of thousands)."""
    column = evaluations["run_id"]
    positions = np.flatnonzero(column.isin(list(run_ids)).to_numpy())
    codes, names = pd.factorize(column.iloc[positions].to_numpy())
    order = np.argsort(codes, kind="stable")  # stable: a run's rows keep their order
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {str(name): positions[order[bounds[k] : bounds[k + 1]]] for k, name in enumerate(names)}


def _study_curves(
    board: Leaderboard,
    evaluations: pd.DataFrame,
    by_run: dict[str, np.ndarray],
    workload: str,
    metric: str,
    x_column: str,
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per submission, (x, metric) of each study's best trial on `workload` (the evaluations
    where the metric is recorded; none for a run that never recorded it)."""
    cells = board.studies[board.studies["workload"] == workload]
    curves: dict[str, list] = {}
    if metric not in evaluations.columns:
        return curves
    x_all = evaluations[x_column].to_numpy(float)
    y_all = evaluations[metric].to_numpy(float)
    # Lists: iterating a pandas string column goes through pyarrow one scalar at a time.
    pairs = zip(cells["submission"].tolist(), cells["run_id"].tolist(), strict=True)
    for submission, run_id in pairs:
        rows = by_run.get(run_id)
        if rows is None:
            continue
        rows = rows[~np.isnan(y_all[rows])]
        if len(rows):
            curves.setdefault(submission, []).append((x_all[rows], y_all[rows]))
    return curves


def curves_figure(data: FigureData, x_axis: str) -> Figure:
    """Validation metric of each study's best trial against submission time or steps: the
    median over studies as a line, their range as a band."""
    board, evaluations, targets, looks, caption = (
        data.board,
        data.evaluations,
        data.targets,
        data.looks,
        data.caption,
    )
    x_column = {"time": "accumulated_submission_time", "steps": "global_step"}[x_axis]
    caption = replace(caption, detail=f"{caption.detail} · line: median, band: range over studies")
    rows, columns = _grid(board)
    by_run = _run_rows(evaluations, board.studies["run_id"].dropna().astype(str).unique())
    with plt.rc_context(STYLE):
        legend = _legend_height([*board.submissions, "target"], FULL_WIDTH)
        fig = _new_figure(FULL_WIDTH, 0.75 + 1.75 * rows + legend, caption)
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        for ax in axes[len(board.workloads) :]:
            ax.set_visible(False)
        for ax, workload in zip(axes, board.workloads, strict=False):
            if workload not in targets:  # a declared workload nobody ran
                ax.set_title(workload)
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
                continue
            metric, target, lower_is_better = targets[workload]
            curves = _study_curves(board, evaluations, by_run, workload, metric, x_column)
            every = [c for runs in curves.values() for c in runs]
            log_x = bool(every) and _wants_log_x(every)
            # Bands stack: fainter the more there are, and always under every line.
            band_alpha = min(0.18, 0.6 / max(1, len(curves)))
            for submission in board.submissions:
                if submission not in curves:
                    continue
                look = looks[submission]
                grid, middle, low, high = _band(curves[submission], log_x)
                ax.plot(grid, middle, color=look.color, linestyle=look.linestyle, zorder=3)
                if len(curves[submission]) > 1:
                    ax.fill_between(
                        grid, low, high, color=look.color, alpha=band_alpha, linewidth=0, zorder=1
                    )
            ax.axhline(target, **TARGET_STYLE)
            ax.set_title(workload)
            ax.set_ylabel(metric.removeprefix("validation/"))
            ax.set_xlabel("submission time (s)" if x_axis == "time" else "step")
            if log_x:
                ax.set_xscale("log")
            else:
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            values = np.concatenate([y for _, y in every]) if every else np.array([])
            if lower_is_better and _wants_log(values, target):
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
        handles = [
            Line2D([], [], color=looks[s].color, linestyle=looks[s].linestyle, label=s)
            for s in board.submissions
        ]
        handles.append(Line2D([], [], **TARGET_STYLE, label="target"))
        _bottom_legend(fig, handles, FULL_WIDTH)
    return fig


def _wants_log(values: np.ndarray, target: float) -> bool:
    values = values[np.isfinite(values)]
    return bool(len(values)) and values.min() > 0 and target > 0 and values.max() / target > 5


# -- time-to-target with intervals ---------------------------------------------------------------
def time_to_target_figure(data: FigureData) -> Figure:
    """Per workload: each study's time (small hollow marks), the median (filled) and its
    bootstrap interval (bar). Never-reached values sit at the right, past a gap, at the ∞ tick."""
    board, looks, caption = data.board, data.looks, data.caption
    rows, columns = _grid(board)
    height = 0.9 + rows * (0.45 + 0.2 * len(board.submissions))
    with plt.rc_context(STYLE):
        fig = _new_figure(FULL_WIDTH, height, caption)
        axes = fig.subplots(rows, columns, squeeze=False, sharey=True).ravel()
        for ax in axes[len(board.workloads) :]:
            ax.set_visible(False)
        for j, ax in enumerate(axes[: len(board.workloads)]):
            _time_panel(ax, board, j, looks)
        axes[0].set_yticks(np.arange(len(board.submissions))[::-1], board.submissions)
        median = Line2D([], [], color="0.3", marker="o", markersize=4)
        median.set_label(f"median, {board.settings.confidence:.0%} bootstrap CI")
        study = Line2D([], [], color="0.3", marker="o", markersize=3, linestyle="none")
        study.set(markerfacecolor="none", label="one study's best trial")
        _bottom_legend(fig, [median, study], FULL_WIDTH)
    return fig


def _time_panel(ax, board: Leaderboard, j: int, looks: dict[str, Look]) -> None:
    workload = board.workloads[j]
    studies = board.studies[board.studies["workload"] == workload]
    shown = [*board.times_ci[:, :, j].ravel(), *board.times[:, j], *studies["time_to_target"]]
    top = max((t for t in shown if np.isfinite(t)), default=1.0)
    never = 1.3 * top  # where inf is drawn
    for i, submission in enumerate(board.submissions):
        look, y = looks[submission], len(board.submissions) - 1 - i
        per_study = studies.loc[studies["submission"] == submission, "time_to_target"]
        ax.plot(
            np.where(np.isfinite(per_study), per_study, never),
            np.full(len(per_study), y + 0.22),
            linestyle="none",
            marker=look.marker,
            markersize=3,
            markerfacecolor="none",
            color=look.color,
            alpha=0.8,
        )
        if board.n_studies[i, j] == 0:
            continue
        low, high = (np.where(np.isfinite(v), v, never) for v in board.times_ci[:, i, j])
        middle = board.times[i, j] if np.isfinite(board.times[i, j]) else never
        ax.errorbar(
            middle,
            y,
            xerr=[[middle - low], [high - middle]],
            color=look.color,
            marker=look.marker,
            markersize=4.5,
            capsize=2,
            linewidth=1.1,
        )
    ticks = [t for t in MaxNLocator(nbins=3).tick_values(0, top) if 0 <= t <= top * 1.05]
    ax.set_xticks([*ticks, never], [*(f"{t:g}" for t in ticks), "∞"])
    ax.axvline(1.15 * top, color="0.75", linewidth=0.6, linestyle=":")  # finite | never
    ax.set_xlim(0, 1.42 * top)
    ax.set_ylim(-0.6, len(board.submissions) - 0.2)
    ax.set_title(workload)
    unit = board.settings.unit
    ax.set_xlabel("steps-to-target" if unit == "steps" else f"time-to-target ({UNITS[unit][0]})")
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)


# -- the report's figures: name -> function; the report saves each as <name>.pdf and .png -------
FIGURES: dict[str, Callable[[FigureData], Figure]] = {
    "performance_profile": profile_figure,
    "curves_time": functools.partial(curves_figure, x_axis="time"),
    "curves_steps": functools.partial(curves_figure, x_axis="steps"),
    "time_to_target": time_to_target_figure,
}


# -- checks and saving ---------------------------------------------------------------------------
# The PNG that layout_problems drew, by figure, until save writes it (or the figure is gone).
_DRAWN: weakref.WeakKeyDictionary[Figure, bytes] = weakref.WeakKeyDictionary()


def _visible_texts(fig: Figure) -> list[Text]:
    """Every piece of text that is drawn: titles, axis labels, tick labels in view, legends."""
    texts: list[Text] = [*fig.texts]  # includes the suptitle
    for legend in fig.legends:
        texts += legend.get_texts()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        texts += ax.texts
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(limits)
            span = (high - low) * 1e-9
            for tick in axis.get_major_ticks():
                if low - span <= tick.get_loc() <= high + span and tick.label1.get_visible():
                    texts.append(tick.label1)
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def layout_problems(fig: Figure) -> list[str]:
    """Texts that overlap each other or stick out of the figure (empty list: none).

    Lays the figure out and draws it once, as its PNG, measuring the texts in that very drawing;
    save() writes that PNG, and the PDF in the same layout, unless the figure changed in
    between: what was checked is what is saved, and a figure is laid out once and drawn twice
    (savefig alone lays out and draws twice per file)."""
    measured: list[list[str]] = []
    connection = fig.canvas.mpl_connect(
        "draw_event", lambda event: measured.append(_problems(fig, event.renderer))
    )
    png = io.BytesIO()
    try:
        with plt.rc_context(STYLE), _laid_out(fig, PNG_DPI):
            fig.savefig(png, format="png", dpi=PNG_DPI)
    finally:
        fig.canvas.mpl_disconnect(connection)
    if not measured:  # no draw_event (another backend's canvas?): measure on a draw of its own
        fig.draw_without_rendering()
        return _problems(fig, fig.canvas.get_renderer())
    fig.stale = False  # savefig's restoring the dpi marks it stale; any edit from now on does too
    _DRAWN[fig] = png.getvalue()
    return measured[-1]


def _problems(fig: Figure, renderer) -> list[str]:
    """layout_problems at the end of a draw, where every text is placed for this renderer."""
    texts = _visible_texts(fig)
    boxes = [t.get_window_extent(renderer).expanded(0.98, 0.9) for t in texts]
    page = fig.bbox
    slack = fig.dpi / 100  # one pixel at 100 dpi
    problems = [
        f"{t.get_text()!r} sticks out of the figure"
        for t, box in zip(texts, boxes, strict=True)
        if box.x0 < page.x0 - slack
        or box.x1 > page.x1 + slack
        or box.y0 < page.y0 - slack
        or box.y1 > page.y1 + slack
    ]
    for a, b in _overlapping_pairs(boxes):
        problems.append(f"{texts[a].get_text()!r} overlaps {texts[b].get_text()!r}")
    return problems


def _overlapping_pairs(boxes: list) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, of boxes that overlap, in order: Bbox.overlaps on every pair, at
    once (a figure of 16 panels has hundreds of tick labels)."""
    if len(boxes) < 2:
        return []
    extents = np.array([box.extents for box in boxes])  # x0, y0, x1, y1
    x0, x1 = np.minimum(extents[:, 0], extents[:, 2]), np.maximum(extents[:, 0], extents[:, 2])
    y0, y1 = np.minimum(extents[:, 1], extents[:, 3]), np.maximum(extents[:, 1], extents[:, 3])
    overlap = (x0[:, None] <= x1[None, :]) & (x0[None, :] <= x1[:, None])
    overlap &= (y0[:, None] <= y1[None, :]) & (y0[None, :] <= y1[:, None])
    first, second = np.nonzero(np.triu(overlap, k=1))
    return list(zip(first.tolist(), second.tolist(), strict=True))


@contextlib.contextmanager
def _laid_out(fig: Figure, dpi: float | None):
    """The figure in the layout its engine makes at `dpi` (None: as last laid out), with the
    engine set aside meanwhile. With an engine set, savefig lays the figure out and draws it,
    without painting, before each file's own draw, which lays it out again (matplotlib's
    print_figure): four layouts and four draws for a PDF and a PNG."""
    engine = fig.get_layout_engine()
    if engine is None:
        yield
        return
    if dpi is not None:
        shown = fig.dpi
        fig.dpi = dpi  # text sizes in pixels, so the layout, may differ by a pixel with the dpi
        try:
            engine.execute(fig)
        finally:
            fig.dpi = shown
    with plt.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # None, not "none": a placeholder engine still predraws
    try:
        yield
    finally:
        fig.set_layout_engine(engine)


def save(fig: Figure, folder: Path, name: str) -> list[Path]:
    """PDF (vector, for the paper) and PNG (for a quick look), in one layout; closes the
    figure. The PNG is layout_problems's drawing when the figure has not changed since."""
    paths = [folder / f"{name}.pdf", folder / f"{name}.png"]
    png = _DRAWN.pop(fig, None)
    fresh = png is not None and not fig.stale
    with plt.rc_context(STYLE), _laid_out(fig, None if fresh else PNG_DPI):
        if fresh:
            paths[1].write_bytes(png)
        else:
            fig.savefig(paths[1], dpi=PNG_DPI)
        fig.savefig(paths[0])
    plt.close(fig)
    return paths
