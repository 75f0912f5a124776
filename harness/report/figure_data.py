"""What the report's figures are made of, without matplotlib: the style of a medium, each
submission's look, the data and caption of a figure, and the jobs of a report. The report's own
process needs only this when worker processes draw (harness/report/figures.py draws); never
imports matplotlib at import time.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import os
import sys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report.scoring import Leaderboard

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
FONTS = {  # --font: a family name, or one of these (bundled with matplotlib, so always there)
    "sans-serif": ("DejaVu Sans", "dejavusans"),
    "serif": ("DejaVu Serif", "dejavuserif"),
    "times": ("STIXGeneral", "stix"),  # Times-like, as most journals and ACL/NeurIPS/ICML use
}


@dataclass(frozen=True)
class Style:
    """Sizes of one medium. `width` (inches) overrides both figure widths."""

    name: str = "paper"
    width: float | None = None
    font: str = "sans-serif"

    @property
    def _slides(self) -> bool:
        return self.name == "slides"

    @property
    def text_size(self) -> float:
        return 14.0 if self._slides else 8.0

    @property
    def tick_size(self) -> float:
        return 12.0 if self._slides else 7.0

    @property
    def column_width(self) -> float:  # the performance profile
        return self.width or (6.0 if self._slides else 3.25)

    @property
    def full_width(self) -> float:  # the grids of workload panels
        return self.width or (12.0 if self._slides else 6.75)

    @property
    def panel_height(self) -> float:
        return 2.6 if self._slides else 1.45

    @property
    def panel_min_width(self) -> float:  # panels per row: as many as are at least this wide
        return 3.6 if self._slides else 2.0

    def rc(self) -> dict:
        family, mathtext = FONTS.get(self.font, (self.font, "dejavusans"))
        return {
            "font.family": family,
            "mathtext.fontset": mathtext,
            "font.size": self.text_size,
            "axes.titlesize": self.text_size,
            "axes.labelsize": self.text_size,
            "xtick.labelsize": self.tick_size,
            "ytick.labelsize": self.tick_size,
            "legend.fontsize": self.tick_size,
            "lines.linewidth": 2.2 if self._slides else 1.3,
            "lines.markersize": 6 if self._slides else 4,
            "axes.linewidth": 0.8,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": False,  # _grid_lines draws it
            "xtick.major.size": 2.5,
            "ytick.major.size": 2.5,
            "xtick.minor.visible": False,
            "ytick.minor.visible": False,
            "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF, as journals ask
            "ps.fonttype": 42,
            "savefig.dpi": 300,
        }


class UnknownFont(ValueError):
    pass


def check_font(font: str) -> None:
    """UnknownFont, with what to do, when `font` is neither an alias nor an installed family."""
    if font in FONTS:
        return
    from matplotlib import font_manager  # only for a family of the user's

    try:
        font_manager.findfont(font_manager.FontProperties(family=font), fallback_to_default=False)
    except ValueError:
        installed = sorted({f.name for f in font_manager.fontManager.ttflist})
        raise UnknownFont(
            f"no font family {font!r} on this machine: use {', '.join(FONTS)} (bundled with "
            f"matplotlib; 'times' is Times-like), install the font and clear matplotlib's font "
            f"cache, or pick an installed family: {', '.join(installed[:12])}"
            + (" ..." if len(installed) > 12 else "")
        ) from None


@dataclass(frozen=True)
class Look:
    color: str
    linestyle: object
    marker: str


def submission_looks(
    submissions: Sequence[str], pinned: Mapping[str, str] | None = None
) -> dict[str, Look]:
    """A look per submission that depends on its name, not on the others in the report: the
    colour a hash of the name picks, so a submission keeps it from one report to the next. Two
    names wanting one colour: the later alphabetically takes the next free one. `pinned` fixes
    colours (name -> colour)."""
    names = sorted(set(submissions))
    pinned = dict(pinned or {})
    taken = {PALETTE.index(c) for c in pinned.values() if c in PALETTE}
    looks = {}
    for name in names:
        want = zlib.crc32(name.encode()) % len(PALETTE)
        if name in pinned:
            color = pinned[name]
        else:
            free = [k for k in range(len(PALETTE)) if k not in taken]
            # the first free colour at or after the wanted one; all taken: reuse the wanted one
            k = min(free, key=lambda c: (c - want) % len(PALETTE)) if free else want
            taken.add(k)
            color = PALETTE[k]
        style = zlib.crc32(name.encode(), 1) % len(LINESTYLES)
        looks[name] = Look(color, LINESTYLES[style], MARKERS[style % len(MARKERS)])
    # Same colour twice (more submissions than colours): make their line styles differ.
    by_color: dict[str, list[str]] = {}
    for name in names:
        by_color.setdefault(looks[name].color, []).append(name)
    for sharing in by_color.values():
        for k, name in enumerate(sharing[1:], start=1):
            style = (LINESTYLES.index(looks[sharing[0]].linestyle) + k) % len(LINESTYLES)
            looks[name] = Look(looks[name].color, LINESTYLES[style], MARKERS[style])
    return looks


@dataclass
class Caption:
    """What a figure's caption says besides what the figure shows: where the runs ran and how
    many there are (never drawn in the figure)."""

    hardware: str
    detail: str  # e.g. "experiment demo, ruleset external, n = 3 studies x 5 trials"

    def text(self, what: str) -> str:
        return f"{what} Hardware: {self.hardware}. {self.detail}."


@dataclass(frozen=True)
class FigureData:
    """Everything a figure may draw: one scored leaderboard, its runs' evaluations (load.py's
    table), each workload's (metric column, target value, lower is better) and budget in
    seconds, the looks, display names and the style."""

    board: Leaderboard
    evaluations: pd.DataFrame
    targets: dict[str, tuple[str, float, bool]]
    looks: dict[str, Look]
    caption: Caption
    budgets: dict[str, float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # submission -> display name
    style: Style = field(default_factory=Style)

    def name(self, submission: str) -> str:
        return self.names.get(submission, submission)


# The report's figures, as figures.FIGURES names them (a test checks that they agree): the
# report's own process plans the jobs without importing matplotlib.
FIGURE_NAMES = ("performance_profile", "curves_time", "curves_steps", "time_to_target")
# (figure name, file name without extension, its data)
Job = tuple[str, str, FigureData]
MAX_WORKERS = 4


def job_size(jobs: Sequence[Job]) -> int:
    """Roughly what drawing `jobs` costs: panels times submissions."""
    return sum(len(d.board.workloads) * len(d.board.submissions) for _, _, d in jobs)


class Workers(concurrent.futures.ProcessPoolExecutor):
    """A process pool that says how many processes it has."""

    def __init__(self, count: int) -> None:
        super().__init__(count, mp_context=multiprocessing.get_context("spawn"))
        self.count = count


def start_workers(jobs: int | None = None) -> Workers | None:
    """Processes that draw figures, started now so that they import matplotlib while this
    process scores and writes the tables (spawned, not forked: the parent has BLAS and Arrow
    threads). None on one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(MAX_WORKERS, cores or 1, jobs or MAX_WORKERS)
    if workers < 2:
        return None
    pool = Workers(workers)
    for _ in range(workers):
        pool.submit(importlib.import_module, "harness.report.figures")
    return pool


Drawn = tuple[list[Path], list[str]]  # the files of a figure, its layout problems


def _render(name: str, filename: str, data: FigureData, folder: Path) -> Drawn:
    from harness.report import figures  # in a worker, imported by start_workers already

    return figures.render(name, filename, data, folder)


def submit(jobs: Sequence[Job], folder: Path, pool: Workers) -> list[concurrent.futures.Future]:
    """Every job to `pool`, biggest first (so that no worker is left with a large figure at the
    end); the futures in the jobs' order."""
    print(f"drawing {len(jobs)} figures in {pool.count} processes", file=sys.stderr, flush=True)
    order = sorted(range(len(jobs)), key=lambda k: -job_size([jobs[k]]))
    futures = {k: pool.submit(_render, *jobs[k], folder) for k in order}
    return [futures[k] for k in range(len(jobs))]
