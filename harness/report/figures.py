"""Figures for papers from a scored leaderboard: performance profiles, validation curves over
time and over steps with a band over studies, and time-to-target with confidence intervals.

A figure holds data only: what the runs were, where they ran and how many there are goes into
its caption file (`<name>.caption.txt`, written by the report) and the HTML page. Sized for a
two-column paper (`paper`: 3.25 in columns, 6.75 in full width, 7-8 pt text) or for slides;
one look per submission name across every figure and every report. Panels are placed by hand
from measured text sizes (figure_layout.py). A figure is a function of FigureData listed in
FIGURES; its docstring opens its caption. Never computes a score (scoring.py does) and never
reads a run's files (the report hands it the loaded tables).
"""

from __future__ import annotations

import contextlib
import io
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import transforms
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from harness import results
from harness.report.figure_data import (  # noqa: F401 (the names figures are made of)
    FONTS,
    LINESTYLES,
    MARKERS,
    PALETTE,
    Caption,
    Drawn,
    FigureData,
    Job,
    Look,
    Style,
    UnknownFont,
    check_font,
    submission_looks,
)
from harness.report.figure_layout import (
    PAD,
    RC,
    Panel,
    bottom_legend,
    fit_title,
    grid_lines,
    legend_height,
    linear_ticks,
    log_ticks,
    measure,
    new_figure,
    panel_columns,
    place_panels,
    set_ticks,
    tick_text,
)
from harness.report.scoring import UNITS, Leaderboard, performance_profile, performance_ratios

PNG_DPI = 200  # the PNG is for a quick look and the HTML page; the PDF, vector, is for the paper
TARGET_STYLE = {"color": "0.3", "linestyle": (0, (4, 2)), "linewidth": 0.9}
BUDGET_STYLE = {"color": "0.45", "linestyle": "-", "linewidth": 0.8}
PAST_BUDGET = {"color": "0.92", "linewidth": 0, "zorder": 0}  # shading: not counted


# -- performance profile -------------------------------------------------------------------------
DODGE = 1.5  # points: the most a profile line is drawn up or down, so that equal lines show


def profile_figure(data: FigureData) -> Figure:
    """Performance profiles: for each submission, the fraction of workloads it reached within a
    factor tau of the fastest submission (higher and further left is better; AlgoPerf's
    benchmark score is the area under the curve, normalised)."""
    board, looks, style = data.board, data.looks, data.style
    tau_max = board.settings.tau_max
    scored = board.scored_times  # the times the score uses (held-out rule, declared workloads)
    ratios = performance_ratios(scored)
    breaks = ratios[np.isfinite(ratios) & (ratios <= tau_max)]
    taus = np.unique(np.concatenate([[1.0, tau_max], breaks]))
    rho = performance_profile(scored, taus)
    labels = [
        f"{data.name(s)} ({score:.3f})"
        for s, score in zip(board.submissions, board.scores, strict=True)
    ]
    n = len(board.submissions)
    dodge = np.linspace(-DODGE, DODGE, n) if n > 1 else np.zeros(1)
    width = style.column_width
    # Whole factors from 1 (the fastest) up to tau_max, as AlgoPerf's profiles show them.
    whole = [float(t) for t in range(1, math.floor(tau_max) + 1)]
    x_ticks = whole if 3 <= len(whole) <= 8 else linear_ticks(1.0, tau_max, 4)
    panel = Panel(
        ylabel=r"fraction of workloads, $\rho(\tau)$",
        ytick_labels=["0", "0.5", "1"],
        xtick_labels=[tick_text(t) for t in x_ticks],
        xlabel=r"$\tau$ (time-to-target / fastest)",
    )
    legend = legend_height(labels, width, style)
    height = (2.2 if style.name == "paper" else 4.0) + legend
    with plt.rc_context(style.rc()):
        fig = new_figure(width, height, style)
        ax = fig.add_axes((0, 0, 1, 1))
        handles = []
        for k, submission in enumerate(board.submissions):
            look = looks[submission]
            # Markers at staggered taus: lines that coincide still show every marker.
            marks = [1.0 + (tau_max - 1.0) * (m + (k + 0.5) / n) / 4 for m in range(4)]
            at = np.searchsorted(taus, marks, side="right") - 1
            # Drawn a point or so up or down (the data stay the profile's).
            shifted = transforms.offset_copy(ax.transData, fig, y=dodge[k], units="points")
            ax.step(
                taus,
                rho[k],
                where="post",
                color=look.color,
                linestyle=look.linestyle,
                label=labels[k],
                transform=shifted,
            )
            ax.plot(
                marks,
                rho[k][at],
                linestyle="none",
                marker=look.marker,
                color=look.color,
                markersize=style.rc()["lines.markersize"] * 0.8,
                transform=shifted,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    color=look.color,
                    linestyle=look.linestyle,
                    marker=look.marker,
                    markersize=3,
                    label=labels[k],
                )
            )
        ax.set_xlim(1.0, tau_max)
        ax.set_ylim(-0.04, 1.04)
        set_ticks(ax.xaxis, x_ticks)
        set_ticks(ax.yaxis, [0.0, 0.5, 1.0], panel.ytick_labels)
        grid_lines(ax, x_ticks, [0.0, 0.5, 1.0])
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        place_panels(fig, [ax], [panel], 1, style, bottom_extra=legend)
        bottom_legend(fig, handles, style)
    return fig


# -- validation curves ---------------------------------------------------------------------------
METRIC_WORDS = {
    "mse": "MSE",
    "wer": "WER",
    "ssim": "SSIM",
    "bleu": "BLEU",
    "ctc_loss": "CTC loss",
    "mean_average_precision": "mAP",
    "error_rate": "error rate",
    "loss": "loss",
}
# Bounded metrics (accuracies, rates, scores in [0, 1] or [0, 100]) on a linear axis; every
# other lower-is-better metric (losses, MSE, perplexity) on a log axis: the rule is the
# metric's, so a workload has the same y scale in every report.
BOUNDED = ("accuracy", "error", "rate", "wer", "ssim", "precision", "bleu", "auc", "f1")


def metric_label(metric: str) -> str:
    name = metric.removeprefix("validation/").removeprefix("test/")
    return "validation " + METRIC_WORDS.get(name, name.replace("_", " "))


def y_scale(metric: str, lower_is_better: bool) -> str:
    name = metric.removeprefix("validation/")
    return "log" if lower_is_better and not any(b in name for b in BOUNDED) else "linear"


def _band(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray):
    """Median and min-max over runs on a shared x grid. Outside its own evaluations a run holds
    its nearest value: its first evaluation before it (so a run evaluated later than the others
    cannot make the median jump) and its last after it stopped at the target or the budget."""
    ys = np.array([np.interp(grid, x, y) for x, y in curves])  # np.interp holds the end values
    return np.median(ys, axis=0), ys.min(axis=0), ys.max(axis=0)


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


def _limits(values: np.ndarray, target: float, scale: str) -> tuple[float, float]:
    """y limits around the data and the target, with the target at least 8 % inside."""
    values = values[np.isfinite(values)]
    if scale == "log":
        values = values[values > 0]
    values = np.append(values, target)
    if scale == "log":
        low, high = math.log10(values.min()), math.log10(values.max())
    else:
        low, high = float(values.min()), float(values.max())
    pad = 0.08 * (high - low) or (0.1 if scale == "log" else abs(high) * 0.1 or 1.0)
    low, high = low - pad, high + pad
    return (10.0**low, 10.0**high) if scale == "log" else (low, high)


@dataclass
class _CurvePanel:
    workload: str
    panel: Panel
    draw: Callable | None  # draws the data once the axes exist
    shows_budget: bool = False


def _curve_panel(
    data: FigureData, workload: str, x_axis: str, by_run, title_width: float
) -> _CurvePanel:
    board = data.board
    if workload not in data.targets:  # a declared workload nobody ran
        return _CurvePanel(
            workload, Panel(title=fit_title(workload, title_width, data.style)), None
        )
    metric, target, lower_is_better = data.targets[workload]
    x_column = {"time": "accumulated_submission_time", "steps": "global_step"}[x_axis]
    curves = _study_curves(board, data.evaluations, by_run, workload, metric, x_column)
    every = [c for runs in curves.values() for c in runs]
    budget = data.budgets.get(workload, math.inf) if x_axis == "time" else math.inf
    x_max = max((float(x.max()) for x, _ in every), default=1.0) or 1.0
    show_budget = math.isfinite(budget) and budget <= 2 * x_max
    x_right = max(x_max, budget if show_budget else 0.0) * 1.03
    grid = np.linspace(0.0, x_right, 240)
    bands = {s: _band(c, grid) for s, c in curves.items()}
    values = np.concatenate([np.concatenate(b) for b in bands.values()]) if bands else np.array([])
    scale = y_scale(metric, lower_is_better)
    if scale == "log" and (values[np.isfinite(values)] <= 0).any():
        scale = "linear"  # a log axis cannot show zero or less
    y_low, y_high = _limits(values, target, scale)
    y_ticks = log_ticks(y_low, y_high) if scale == "log" else linear_ticks(y_low, y_high)
    x_ticks = linear_ticks(0.0, x_right, 3)
    panel = Panel(
        title=fit_title(workload, title_width, data.style),
        ylabel=metric_label(metric),
        ytick_labels=[tick_text(t) for t in y_ticks],
        xtick_labels=[tick_text(t) for t in x_ticks],
    )
    # The median time-to-target of the table, on the target line: where the table's number is.
    j = board.workloads.index(workload)

    def draw(ax) -> None:
        # One collection of bands and one of lines per panel: a few artists instead of two per
        # submission (a 16-panel grid of 17 submissions draws much faster).
        shown = [s for s in board.submissions if s in bands]
        looks = [data.looks[s] for s in shown]
        band_alpha = min(0.18, 0.6 / max(1, len(shown)))  # fainter the more bands overlap
        spread = [k for k, s in enumerate(shown) if len(curves[s]) > 1]
        ax.add_collection(
            PolyCollection(
                [
                    np.column_stack(
                        [
                            np.r_[grid, grid[::-1]],
                            np.r_[bands[shown[k]][1], bands[shown[k]][2][::-1]],
                        ]
                    )
                    for k in spread
                ],
                facecolors=[looks[k].color for k in spread],
                alpha=band_alpha,
                linewidths=0,
                zorder=1,
            ),
            autolim=False,
        )
        ax.add_collection(
            LineCollection(
                [np.column_stack([grid, bands[s][0]]) for s in shown],
                colors=[look.color for look in looks],
                linestyles=[look.linestyle for look in looks],
                linewidths=matplotlib.rcParams["lines.linewidth"],
                zorder=3,
            ),
            autolim=False,
        )
        if x_axis == "time" and board.settings.unit == "seconds":
            for submission, look in zip(shown, looks, strict=True):
                median = board.times[board.index(submission), j]
                if np.isfinite(median):
                    ax.plot(
                        [median],
                        [target],
                        marker=look.marker,
                        color=look.color,
                        markersize=3.5,
                        zorder=4,
                        linestyle="none",
                        clip_on=False,
                    )
        ax.axhline(target, **TARGET_STYLE, zorder=2)
        if show_budget:
            ax.axvline(budget, **BUDGET_STYLE, zorder=2)
            if x_right > budget:
                ax.axvspan(budget, x_right, **PAST_BUDGET)
        ax.set_yscale(scale)
        ax.set_xlim(0.0, x_right)
        ax.set_ylim(y_low, y_high)
        set_ticks(ax.yaxis, y_ticks, panel.ytick_labels)
        set_ticks(ax.xaxis, x_ticks, panel.xtick_labels)
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        grid_lines(ax, x_ticks, y_ticks)

    return _CurvePanel(workload, panel, draw, show_budget)


def _curves_figure(data: FigureData, x_axis: str) -> Figure:
    board, style = data.board, data.style
    width = style.full_width
    columns = panel_columns(len(board.workloads), width, style)
    rows = math.ceil(len(board.workloads) / columns)
    by_run = _run_rows(data.evaluations, board.studies["run_id"].dropna().astype(str).unique())
    title_width = width / columns - 0.6  # less the y labels' room, about
    panels = [_curve_panel(data, w, x_axis, by_run, title_width) for w in board.workloads]
    handles = [
        Line2D(
            [], [], color=data.looks[s].color, linestyle=data.looks[s].linestyle, label=data.name(s)
        )
        for s in board.submissions
    ]
    handles.append(Line2D([], [], **TARGET_STYLE, label="target"))
    if x_axis == "time":
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                color="0.3",
                linestyle="none",
                markersize=3,
                label="median time-to-target",
            )
        )
        if any(c.shows_budget for c in panels):
            handles.append(Line2D([], [], **BUDGET_STYLE, label="budget"))
    legend = legend_height([h.get_label() for h in handles], width, style)
    xlabel = "submission time (s)" if x_axis == "time" else "step"
    label_height = measure([xlabel], style.text_size, style)[1] + PAD
    height = rows * (style.panel_height + 0.45) + legend + label_height
    with plt.rc_context(style.rc()):
        fig = new_figure(width, height, style)
        axes = [fig.add_axes((0, 0, 1, 1)) for _ in panels]
        for ax, curve in zip(axes, panels, strict=True):
            ax.set_title(curve.panel.title)
            if curve.draw is None:
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            curve.draw(ax)
            ax.set_ylabel(curve.panel.ylabel)
        place_panels(
            fig, axes, [c.panel for c in panels], columns, style, bottom_extra=legend + label_height
        )
        fig.text(0.5, legend / height, xlabel, ha="center", va="bottom")
        bottom_legend(fig, handles, style)
    return fig


def curves_time_figure(data: FigureData) -> Figure:
    """Validation metric of each study's best trial against submission time: the median over
    studies as a line, their range as a band; the dashed line is the target, the marker on it
    the median time-to-target of the table, the shading the time past the budget (evaluations
    there do not count)."""
    return _curves_figure(data, "time")


def curves_steps_figure(data: FigureData) -> Figure:
    """Validation metric of each study's best trial against training steps: the median over
    studies as a line, their range as a band; the dashed line is the target."""
    return _curves_figure(data, "steps")


# -- time-to-target with intervals ---------------------------------------------------------------
NEVER = 0.22  # the "not reached" region's width, as a fraction of the finite range


def time_to_target_figure(data: FigureData) -> Figure:
    """Time-to-target per workload: each study's best trial (small hollow marks), the median
    over studies (filled) and its bootstrap interval (bar); the vertical line is the budget,
    the shaded region on the right holds studies that never reached the target."""
    board, style = data.board, data.style
    width = style.full_width
    columns = panel_columns(len(board.workloads), width, style)
    rows = math.ceil(len(board.workloads) / columns)
    names = [data.name(s) for s in board.submissions]
    unit = board.settings.unit
    xlabel = "steps-to-target" if unit == "steps" else f"time-to-target ({UNITS[unit][0]})"
    panels, limits = [], []
    title_width = (width - measure(names, style.tick_size, style)[0]) / columns - 0.3
    for j, workload in enumerate(board.workloads):
        studies = board.studies[board.studies["workload"] == workload]
        shown = [*board.times_ci[:, :, j].ravel(), *board.times[:, j], *studies["time_to_target"]]
        finite = max((t for t in shown if np.isfinite(t)), default=0.0)
        budget = data.budgets.get(workload, math.inf) if unit == "seconds" else math.inf
        top = budget if math.isfinite(budget) else (finite * 1.1 or 1.0)
        ticks = linear_ticks(0.0, top, 3)
        limits.append((top, budget, ticks))
        panels.append(
            Panel(
                title=fit_title(workload, title_width, style),
                ytick_labels=names if j % columns == 0 else (),
                xtick_labels=[tick_text(t) for t in ticks] + ["∞"],
            )
        )
    per_panel = 0.3 + (0.17 if style.name == "paper" else 0.3) * len(board.submissions)
    handles = [
        Line2D(
            [],
            [],
            color="0.3",
            marker="o",
            markersize=4,
            label=f"median, {board.settings.confidence:.0%} bootstrap CI",
        ),
        Line2D(
            [],
            [],
            color="0.3",
            marker="o",
            markersize=3,
            linestyle="none",
            markerfacecolor="none",
            label="one study's best trial",
        ),
        Patch(color=PAST_BUDGET["color"], label="∞: target not reached"),
    ]
    if any(math.isfinite(budget) for _, budget, _ in limits):
        handles.insert(2, Line2D([], [], **BUDGET_STYLE, label="budget"))
    legend = legend_height([h.get_label() for h in handles], width, style)
    label_height = measure([xlabel], style.text_size, style)[1] + PAD
    height = rows * (per_panel + 0.45) + legend + label_height
    with plt.rc_context(style.rc()):
        fig = new_figure(width, height, style)
        axes = [fig.add_axes((0, 0, 1, 1)) for _ in panels]
        for j, ax in enumerate(axes):
            _time_panel(ax, data, j, limits[j], show_names=j % columns == 0)
            ax.set_title(panels[j].title)
        place_panels(fig, axes, panels, columns, style, bottom_extra=legend + label_height)
        fig.text(0.5, legend / height, xlabel, ha="center", va="bottom")
        bottom_legend(fig, handles, style)
    return fig


def _time_panel(ax, data: FigureData, j: int, limit, show_names: bool) -> None:
    board, looks = data.board, data.looks
    top, budget, ticks = limit
    never = top * (1 + NEVER / 2)  # where inf is drawn: the middle of the shaded region
    workload = board.workloads[j]
    studies = board.studies[board.studies["workload"] == workload]
    by_submission = {
        s: group["time_to_target"].to_numpy(float) for s, group in studies.groupby("submission")
    }
    n = len(board.submissions)
    # Three collections per panel (study marks, intervals, medians), not artists per
    # submission: the rows are named, so one marker shape serves every submission here.
    marks_x, marks_y, marks_c, bars, colors, medians = [], [], [], [], [], []
    for i, submission in enumerate(board.submissions):
        color, y = looks[submission].color, n - 1 - i
        per_study = by_submission.get(submission, np.array([]))
        # Studies spread over a band above their median, so that equal times stay visible.
        lift = 0.16 + 0.2 * np.linspace(0, 1, len(per_study)) if len(per_study) > 1 else 0.26
        marks_x += np.where(np.isfinite(per_study), per_study, never).tolist()
        marks_y += (y + np.broadcast_to(lift, per_study.shape)).tolist()
        marks_c += [color] * len(per_study)
        if board.n_studies[i, j] == 0:
            continue
        low, high = (float(np.where(np.isfinite(v), v, never)) for v in board.times_ci[:, i, j])
        bars.append([(low, y), (high, y)])
        colors.append(color)
        medians.append((board.times[i, j] if np.isfinite(board.times[i, j]) else never, y))
    size = matplotlib.rcParams["lines.markersize"]
    if marks_x:
        ax.scatter(
            marks_x,
            marks_y,
            s=(0.65 * size) ** 2,
            facecolors="none",
            edgecolors=marks_c,
            linewidths=0.6,
            alpha=0.8,
            zorder=2,
        )
    if bars:
        ax.add_collection(
            LineCollection(bars, colors=colors, linewidths=1.0, zorder=2), autolim=False
        )
        caps = [point for bar in bars for point in bar]
        ax.scatter(
            *zip(*caps, strict=True),
            marker="|",
            s=9,
            linewidths=0.8,
            zorder=2,
            c=[c for c in colors for _ in range(2)],
        )
        ax.scatter(*zip(*medians, strict=True), s=size**2, c=colors, zorder=3, linewidths=0)
    ax.axvspan(top, top * (1 + NEVER), **PAST_BUDGET)
    if math.isfinite(budget):
        ax.axvline(budget, **BUDGET_STYLE)
    set_ticks(ax.xaxis, [*ticks, never], [*(tick_text(t) for t in ticks), "∞"])
    ax.set_xlim(0, top * (1 + NEVER))
    ax.set_ylim(-0.6, n - 0.3)
    if show_names:  # the other panels of a row share these rows: no ticks at all (cheaper)
        set_ticks(ax.yaxis, list(range(n - 1, -1, -1)), [data.name(s) for s in board.submissions])
    else:
        ax.set_yticks([])
    grid_lines(ax, ticks)
    ax.tick_params(axis="y", length=0)


# -- the report's figures: name -> function; the report saves each as <name>.pdf and .png -------
FIGURES: dict[str, Callable[[FigureData], Figure]] = {
    "performance_profile": profile_figure,
    "curves_time": curves_time_figure,
    "curves_steps": curves_steps_figure,
    "time_to_target": time_to_target_figure,
}


def caption(name: str, data: FigureData) -> str:
    """The caption of FIGURES[name]: what it shows (its docstring), then where and how many."""
    what = " ".join((FIGURES[name].__doc__ or "").split())
    return data.caption.text(what)


# -- checks and saving ---------------------------------------------------------------------------
# The PNG that layout_problems drew, by figure, until save writes it (or the figure is gone).
_DRAWN: weakref.WeakKeyDictionary[Figure, bytes] = weakref.WeakKeyDictionary()


def _visible_texts(fig: Figure) -> list[Text]:
    """Every piece of text that is drawn: titles, axis labels, tick labels in view, legends."""
    texts: list[Text] = [*fig.texts]
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

    Draws the figure once, as its PNG, measuring the texts in that very drawing; save() writes
    that PNG unless the figure changed in between: what was checked is what is saved."""
    measured: list[list[str]] = []
    connection = fig.canvas.mpl_connect(
        "draw_event", lambda event: measured.append(_problems(fig, event.renderer))
    )
    png = io.BytesIO()
    try:
        with plt.rc_context(RC.get(fig, {})), _no_layout_engine(fig):
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
def _no_layout_engine(fig: Figure):
    """A figure built elsewhere with a layout engine is laid out once, then drawn as it is:
    with an engine set, savefig lays the figure out again before every file."""
    engine = fig.get_layout_engine()
    if engine is None:
        yield
        return
    engine.execute(fig)
    fig.set_layout_engine(None)
    try:
        yield
    finally:
        fig.set_layout_engine(engine)


def save(fig: Figure, folder: Path, name: str) -> list[Path]:
    """PDF (vector, for the paper) and PNG (for a quick look), in one layout; closes the
    figure. The PNG is layout_problems's drawing when the figure has not changed since."""
    paths = [folder / f"{name}.pdf", folder / f"{name}.png"]
    png = _DRAWN.pop(fig, None)
    with plt.rc_context(RC.get(fig, Style().rc())), _no_layout_engine(fig):
        if png is not None and not fig.stale:
            paths[1].write_bytes(png)
        else:
            fig.savefig(paths[1], dpi=PNG_DPI)
        fig.savefig(paths[0])
    plt.close(fig)
    return paths


# -- drawing -------------------------------------------------------------------------------------
def render(name: str, filename: str, data: FigureData, folder: Path) -> Drawn:
    """Draw FIGURES[name], check its layout, save it and its caption file: (paths, layout
    problems)."""
    fig = FIGURES[name](data)
    problems = layout_problems(fig)
    paths = save(fig, folder, filename)
    paths.append(folder / f"{filename}.caption.txt")
    results.write_text(paths[-1], caption(name, data) + "\n")
    return paths, problems
