"""Placing a figure's panels by hand: text measured with matplotlib's own renderer, margins
from the labels each panel declares, bottom legends, ticks and grid lines as few artists. A
layout engine measures every artist of a drawn figure; at 16 panels that costs more than the
drawing, so figures.py says what each panel will show and this module makes room for it. Never
draws data.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness.report.figure_data import Style

# The rc settings each figure was made with: drawing reads some of them (the fonts of formulas,
# PDF font embedding) at draw time, so checks and saving draw under them again.
RC: weakref.WeakKeyDictionary[Figure, dict] = weakref.WeakKeyDictionary()


# -- placing panels by hand ----------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def text_inches(text: str, size: float, family: str) -> tuple[float, float]:
    """Width and height (descent included) of one line of text, in inches."""
    renderer = _renderer()
    prop = font_manager.FontProperties(family=family, size=size)
    width, height, _ = renderer.get_text_width_height_descent(text, prop, ismath="$" in text)
    return width / 72.0, height / 72.0


@functools.lru_cache(maxsize=1)
def _renderer() -> RendererAgg:
    return RendererAgg(1, 1, 72)  # 72 dpi: one pixel is one point


def measure(texts: Sequence[str], size: float, style: Style) -> tuple[float, float]:
    """The widest and tallest of `texts`, in inches (0 for none)."""
    family = style.rc()["font.family"]
    sizes = [text_inches(t, size, family) for t in texts if t]
    return max((w for w, _ in sizes), default=0.0), max((h for _, h in sizes), default=0.0)


PAD = 0.05  # inches between a label and what it labels


@dataclass
class Panel:
    """What one panel puts around its axes, known before drawing: tick labels, axis labels."""

    title: str = ""
    ylabel: str = ""
    ytick_labels: Sequence[str] = ()
    xtick_labels: Sequence[str] = ()
    xlabel: str = ""

    # matplotlib's defaults at these sizes: tick 2.5 pt + pad 3.5 pt = 0.085 in between axes and
    # tick labels, 4 pt (0.056 in) between tick labels and axis label, title 6 pt (0.083 in)
    # above the axes; a label's box is 1.2 lines tall.
    def left(self, style: Style) -> float:
        ticks, _ = measure(self.ytick_labels, style.tick_size, style)
        label = measure([self.ylabel], style.text_size, style)[1] if self.ylabel else 0.0
        return 0.05 + (ticks + 0.085 if ticks else 0.04) + (0.056 + 1.25 * label if label else 0.0)

    def bottom(self, style: Style) -> float:
        _, ticks = measure(self.xtick_labels, style.tick_size, style)
        label = measure([self.xlabel], style.text_size, style)[1] if self.xlabel else 0.0
        return (
            0.02
            + (1.2 * ticks + 0.085 if ticks else 0.02)
            + (0.056 + 1.25 * label if label else 0.0)
        )

    def top(self, style: Style) -> float:
        lines = self.title.count("\n") + 1 if self.title else 0
        height = measure(["Ag"], style.text_size, style)[1]
        return 0.03 + (lines * 1.25 * height + 0.083 if lines else 0.0)


def place_panels(
    fig: Figure,
    axes: Sequence,
    panels: Sequence[Panel],
    columns: int,
    style: Style,
    bottom_extra: float,
    top_extra: float = 0.03,
) -> None:
    """Position `axes` (row by row, `columns` per row) so that each panel's labels fit beside
    it, leaving `bottom_extra` inches at the bottom (shared x label, legend)."""
    width, height = fig.get_size_inches()
    rows = math.ceil(len(panels) / columns)
    lefts = [max(p.left(style) for p in panels[c::columns]) for c in range(columns)]
    tops = [max(p.top(style) for p in panels[r * columns : (r + 1) * columns]) for r in range(rows)]
    bottoms = [
        max(p.bottom(style) for p in panels[r * columns : (r + 1) * columns]) for r in range(rows)
    ]
    right = 0.12  # the last tick label may stick out of its axes by half its width
    panel_width = (width - sum(lefts) - right * columns) / columns
    panel_height = (height - bottom_extra - top_extra - sum(tops) - sum(bottoms)) / rows
    y = height - top_extra
    for r in range(rows):
        y -= tops[r] + panel_height
        x = 0.0
        for c in range(columns):
            x += lefts[c]
            k = r * columns + c
            if k < len(axes):
                axes[k].set_position(
                    [x / width, y / height, panel_width / width, panel_height / height]
                )
            x += panel_width + right
        y -= bottoms[r]


def fit_title(title: str, width: float, style: Style) -> str:
    """`title`, broken over two lines at the separator nearest its middle when wider than
    `width` inches."""
    if measure([title], style.text_size, style)[0] <= width:
        return title
    breaks = [k + 1 for k, c in enumerate(title) if c in "_ -/("]
    if not breaks:
        return title
    k = min(breaks, key=lambda b: abs(b - len(title) / 2))
    return title[:k].rstrip() + "\n" + title[k:].lstrip()


def panel_columns(n_panels: int, width: float, style: Style) -> int:
    return max(1, min(n_panels, int(width // style.panel_min_width)))


def new_figure(width: float, height: float, style: Style | None = None) -> Figure:
    rc = (style or Style()).rc()
    with plt.rc_context(rc):
        fig = plt.figure(figsize=(width, height))
    RC[fig] = rc  # drawing reads some settings (fonts of formulas, PDF fonts) at draw time
    return fig


def legend_rows(labels: Sequence[str], width: float, style: Style) -> tuple[int, int]:
    """(columns, rows) of a legend of `labels` across `width` inches."""
    sample = 0.45 if style.name == "paper" else 0.8  # line sample, spacing and padding
    widths = [measure([label], style.tick_size, style)[0] + sample for label in labels]
    for columns in range(len(labels), 1, -1):
        rows = math.ceil(len(labels) / columns)
        widest = [max(widths[c::columns]) for c in range(columns)]
        if sum(widest) <= width - 0.2:
            return columns, rows
    return 1, len(labels)


def legend_height(labels: Sequence[str], width: float, style: Style) -> float:
    _, rows = legend_rows(labels, width, style)
    return rows * measure(["Ag"], style.tick_size, style)[1] * 1.75 + 0.08


def bottom_legend(fig: Figure, handles: list, style: Style) -> None:
    width = fig.get_size_inches()[0]
    columns, _ = legend_rows([h.get_label() for h in handles], width, style)
    fig.legend(
        handles=_row_major(handles, columns),
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=columns,
        frameon=False,
        handlelength=2.4 if style.name == "paper" else 3.0,
        columnspacing=1.0,
        borderaxespad=0.2,
    )


def _row_major(handles: list, columns: int) -> list:
    """matplotlib fills legend columns top to bottom; reorder so the legend reads by rows."""
    rows = math.ceil(len(handles) / columns)
    grid = [handles[r * columns : (r + 1) * columns] for r in range(rows)]
    return [row[c] for c in range(columns) for row in grid if c < len(row)]


def set_ticks(axis, values: Sequence[float], labels: Sequence[str] | None = None) -> list[str]:
    labels = list(labels) if labels is not None else [tick_text(v) for v in values]
    axis.set_ticks(list(values), labels)
    return labels


def grid_lines(ax, x_ticks: Sequence[float] = (), y_ticks: Sequence[float] = ()) -> None:
    """Light grid lines at the ticks, as two collections (matplotlib's grid is two lines per
    tick, each drawn on its own)."""
    style = {"colors": "0.88", "linewidths": 0.5, "zorder": 0}
    if len(x_ticks):
        ax.vlines(x_ticks, 0, 1, transform=ax.get_xaxis_transform(), **style)
    if len(y_ticks):
        ax.hlines(y_ticks, 0, 1, transform=ax.get_yaxis_transform(), **style)


def tick_text(value: float) -> str:
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.0e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{value:g}"


def linear_ticks(low: float, high: float, bins: int = 4) -> list[float]:
    return [float(t) for t in MaxNLocator(nbins=bins).tick_values(low, high) if low <= t <= high]


def log_ticks(low: float, high: float) -> list[float]:
    """Decades in [low, high]; with fewer than three, 2 and 5 times them as well; with fewer
    than two of those, round values as on a linear axis."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for subs in ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0)):
        ticks = [s * 10.0**d for d in decades for s in subs if low <= s * 10.0**d <= high]
        if len(ticks) >= 3 or subs == (1.0, 2.0, 5.0):
            break
    if len(ticks) > 6:
        ticks = ticks[:: math.ceil(len(ticks) / 5)]
    if len(ticks) < 2:  # less than a factor of ~2.5 in view: evenly spaced values say more
        ticks = [t for t in linear_ticks(low, high, 3) if t > 0]
    return ticks or [low, high]
