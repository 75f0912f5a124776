"""The report's figures as a reviewer reads them: no metadata inside (captions say it), series
that stay apart when equal, axes that say what they show with target and budget, one y scale per
metric, a colour per submission name, the paper and slide styles, and the same files whether
drawn here or in worker processes. tests/test_report.py checks the layout and the data drawn."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import zlib
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.text import Text

from harness.report import cli as report
from harness.report import figure_data as plan
from harness.report import figures, grouping, load, scoring
from tests.helpers import ROOT
from tests.synthetic_results import write_study_grid

TIMES = {  # (submission, workload): each study's best time; None = not reached
    ("adamw", "digits"): [10.0, 12.0, 11.0],
    ("lion", "digits"): [10.0, 12.0, 11.0],  # the same as adamw everywhere
    ("sgd", "digits"): [None, None, 30.0],
    ("adamw", "friedman"): [20.0, 22.0, 21.0],
    ("lion", "friedman"): [20.0, 22.0, 21.0],
    ("sgd", "friedman"): [None, None, None],
}
MARK = "MARKER-HARDWARE"


def figure_data(
    folder: Path, budget: float = 1000.0, times=TIMES, style: figures.Style | None = None
) -> figures.FigureData:
    write_study_grid(folder, times, ruleset="self", budget=budget)
    loaded = load.load(folder, use_cache=False)
    (group,) = grouping.build_groups(loaded.runs, scoring.Settings(n_resamples=20))
    budgets = group.runs.groupby("workload")["budget_sec"].max().to_dict()
    return figures.FigureData(
        group.board,
        loaded.evaluations,
        group.context.targets,
        figures.submission_looks(group.board.submissions),
        figures.Caption(MARK, "n = 3 studies"),
        budgets=budgets,
        style=style or figures.Style(),
    )


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def test_figures_hold_data_only_and_their_captions_say_where_and_how_many(tmp_path, capsys):
    data = figure_data(tmp_path / "results")
    for name, draw in figures.FIGURES.items():
        fig = draw(data)
        shown = " ".join(texts(fig))
        assert MARK not in shown and "n = " not in shown and "studies" not in shown, name
        caption = figures.caption(name, data)
        assert MARK in caption and "n = 3 studies" in caption, name
    assert report.main([str(tmp_path / "results"), "--resamples", "20"]) == 0
    for name in figures.FIGURES:
        caption = (tmp_path / "results" / "report" / f"{name}.caption.txt").read_text()
        assert "Hardware: cpu:Synthetic CPU x4 threads" in caption and "n = 3" in caption, name


def test_equal_profiles_are_drawn_apart_and_keep_their_markers(tmp_path):
    """adamw and lion have the same times: their profiles are equal, and both must show."""
    data = figure_data(tmp_path / "results")
    fig = figures.profile_figure(data)
    ax = fig.axes[0]
    steps = {line.get_label().split(" ")[0]: line for line in ax.get_lines()}
    adamw, lion = steps["adamw"], steps["lion"]
    np.testing.assert_array_equal(adamw.get_ydata(), lion.get_ydata())  # the data are equal
    fig.canvas.draw()
    drawn = [line.get_transform().transform(line.get_xydata()) for line in (adamw, lion)]
    assert np.all(np.abs(drawn[0][:, 1] - drawn[1][:, 1]) >= 1.0)  # a pixel apart at least
    markers = [line for line in ax.get_lines() if line.get_marker() not in ("None", "", None)]
    x = {tuple(np.round(line.get_xdata(), 6)) for line in markers}
    assert len(markers) == 3 and len(x) == 3  # one marker line per submission, staggered


def test_curves_say_validation_and_keep_one_y_scale_per_metric(tmp_path):
    """The y scale comes from the metric, not from the data: a loss is on a log axis even when
    its values span little, an accuracy on a linear one; the target stays inside the axes."""
    near = {(s, w): [50.0] for s, w in (("adamw", "digits"), ("adamw", "friedman"))}
    for folder, times in (("wide", TIMES), ("near", near)):
        data = figure_data(tmp_path / folder, times=times)
        fig = figures.curves_time_figure(data)
        panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
        assert panels["digits"].get_ylabel() == "validation accuracy"
        assert panels["friedman"].get_ylabel() == "validation MSE"
        assert panels["digits"].get_yscale() == "linear", folder
        assert panels["friedman"].get_yscale() == "log", folder
        for workload, ax in panels.items():
            target = data.targets[workload][1]
            low, high = ax.get_ylim()
            if ax.get_yscale() == "log":
                low, high, target = np.log10([low, high, target])
            assert low + 0.05 * (high - low) <= target <= high - 0.05 * (high - low), workload
    assert figures.y_scale("validation/loss", True) == "log"
    assert figures.y_scale("validation/error_rate", True) == "linear"
    assert figures.y_scale("validation/accuracy", False) == "linear"


def test_budget_and_the_not_reached_region_are_drawn(tmp_path):
    """Times far below the budget: the time axis still runs to the budget, which is drawn, and
    the never-reached studies sit in a labelled region past it."""
    data = figure_data(tmp_path / "results", budget=500.0)
    fig = figures.time_to_target_figure(data)
    for ax in fig.axes:
        assert ax.get_xlim()[1] > 500.0
        budget_lines = [line for line in ax.get_lines() if list(line.get_xdata()) == [500, 500]]
        assert budget_lines, ax.get_title()
        assert "∞" in [t.get_text() for t in ax.get_xticklabels()]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "budget" in legend and "∞: target not reached" in legend
    # On the curves over time the runs go on to the budget: it is drawn there too.
    curves = figures.curves_time_figure(figure_data(tmp_path / "late", budget=40.0))
    assert any(
        list(line.get_xdata()) == [40.0, 40.0] for ax in curves.axes for line in ax.get_lines()
    )


def test_a_submission_keeps_its_colour_whatever_else_is_in_the_report():
    names = ["adamw", "lion", "sgd", "muon", "soap", "my_optimizer"]
    alone = {name: figures.submission_looks([name])[name] for name in names}
    together = figures.submission_looks(names)
    palette = figures.PALETTE
    for name in names:
        assert alone[name].color == palette[zlib.crc32(name.encode()) % len(palette)]
    wanted = {n: zlib.crc32(n.encode()) % len(palette) for n in names}
    for name in names:  # keeps its colour unless an earlier name (alphabetically) wanted it
        if not any(wanted[other] == wanted[name] for other in names if other < name):
            assert together[name].color == alone[name].color, name
    assert len({look.color for look in together.values()}) == len(names)  # all distinct


def test_style_width_and_font(tmp_path, capsys):
    folder = tmp_path / "results"
    write_study_grid(folder, TIMES, ruleset="self")
    out = tmp_path / "slides"
    options = ["--resamples", "20", "--out", str(out), "--no-html"]
    assert report.main([str(folder), *options, "--style", "slides", "--width", "9"]) == 0
    assert "figure layout" not in capsys.readouterr().err
    image = matplotlib.image.imread(out / "performance_profile.png")
    assert image.shape[1] == 9 * figures.PNG_DPI
    data = figure_data(tmp_path / "again", style=figures.Style("slides", font="times"))
    fig = figures.curves_steps_figure(data)
    title = next(ax.title for ax in fig.axes if ax.get_title())
    assert title.get_fontsize() == 14.0 and title.get_fontname() == "STIXGeneral"
    assert figures.layout_problems(fig) == []
    with pytest.raises(SystemExit) as exit_:
        report.main([str(folder), "--font", "No Such Font Family"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "no font family 'No Such Font Family'" in err
    assert "times" in err and "Traceback" not in err


@pytest.mark.slow
def test_worker_processes_draw_the_same_figures(tmp_path):
    """`python -m harness.report` draws in worker processes: the PNGs are those the report
    draws in one process."""
    times = {(f"opt{s}", f"w{w}"): [10.0 + s + w, 12.0 + s] for s in range(5) for w in range(10)}
    folder = tmp_path / "results"
    write_study_grid(folder, times, ruleset="self", n_evals=4)
    common = ["--resamples", "20", "--no-html"]
    assert report.main([str(folder), *common, "--out", str(tmp_path / "serial")]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "harness.report", str(folder), *common, "--out", "parallel"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert f"drawing {len(figures.FIGURES)} figures in 2 processes" in done.stderr
    for name in figures.FIGURES:
        serial = (tmp_path / "serial" / f"{name}.png").read_bytes()
        assert serial == (tmp_path / "parallel" / f"{name}.png").read_bytes(), name
        assert (tmp_path / "parallel" / f"{name}.pdf").stat().st_size > 5000


def test_the_report_plans_the_figures_that_figures_py_draws():
    """The report's own process names the figures without importing matplotlib."""
    assert tuple(figures.FIGURES) == plan.FIGURE_NAMES
    code = "import sys, harness.report.cli; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def readme_report_commands() -> list[str]:
    """The README's `python -m harness.report results/demo ...` commands, continuation lines
    joined, comments dropped."""
    readme = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("  #")[0].strip()
            if command.startswith(".venv/bin/python -m harness.report results/demo"):
                commands.append(command)
    return commands


def test_the_readme_report_commands_run_as_written(tmp_path):
    """Each report command of the README on a folder with the demo's submissions (adamw and
    lion), from the folder above results/ as a user types them (the bootstrap made cheaper)."""
    commands = readme_report_commands()
    assert len(commands) >= 4 and any("--style slides" in c for c in commands)
    times = {(s, w): t for (s, w), t in TIMES.items() if s != "sgd"}
    write_study_grid(tmp_path / "results" / "demo", times, ruleset="self")
    for command in commands:
        argv = [*shlex.split(command)[1:], "--resamples", "50"]
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert "figure layout" not in done.stderr, command
    assert (tmp_path / "results/demo/slides/curves_time.pdf").exists()
    assert (tmp_path / "results/demo/paper/leaderboard.tex").exists()


def test_a_new_report_removes_what_an_earlier_one_wrote_and_only_that(tmp_path, capsys):
    """Two rulesets give figures named by ruleset; a later report of one ruleset into the same
    folder must not leave the other's figures looking current. A file of the user's stays."""
    both, one = tmp_path / "both", tmp_path / "one"
    write_study_grid(both, TIMES, ruleset="self")
    write_study_grid(both, TIMES, ruleset="external")
    write_study_grid(one, TIMES, ruleset="self")
    out = tmp_path / "report"
    options = ["--resamples", "20", "--no-html", "--out", str(out)]
    assert report.main([str(both), *options]) == 0
    assert (out / "curves_time_external.png").exists()
    (out / "notes.txt").write_text("mine")
    assert report.main([str(one), *options]) == 0
    assert "removed" in capsys.readouterr().out
    assert not list(out.glob("*_external*")) and not list(out.glob("*_self*"))
    assert (out / "curves_time.png").exists() and (out / "notes.txt").read_text() == "mine"


def test_a_log_axis_always_has_two_labelled_ticks_in_view():
    from harness.report.figure_layout import log_ticks

    for low, high in ((1.7, 3.8), (0.9, 2.5), (0.1, 100.0), (1e-4, 3e-4)):
        ticks = log_ticks(low, high)
        assert len(ticks) >= 2 and all(low <= t <= high for t in ticks), (low, high, ticks)
