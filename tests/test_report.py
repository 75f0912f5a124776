"""`python -m harness.report`: tables, figures, hardware separation, broken and incomplete
folders, and the parquet cache, on synthetic run folders in the real format and on real runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from harness import results
from harness.report import cli as report
from harness.report import figures, grouping, load, scoring
from tests.helpers import ROOT, SMOKE, run_in_process
from tests.synthetic_results import GRID_TIMES, write_run, write_study_grid

FAST = ["--resamples", "50", "--no-figures"]
TIMES = GRID_TIMES


def make_report(folder: Path, *options: str, capsys=None) -> tuple[int, str]:
    code = report.main([str(folder), *options])
    err = capsys.readouterr().err if capsys else ""
    return code, err


@pytest.fixture
def grid(tmp_path) -> Path:
    write_study_grid(tmp_path / "results", TIMES)
    return tmp_path / "results"


def test_tables_name_hardware_and_n_and_hold_the_scores(grid, capsys):
    code, err = make_report(grid, *FAST, capsys=capsys)
    assert code == 0, err
    out = grid / "report"
    board = pd.read_csv(out / "leaderboard.csv").set_index("submission")
    # By hand: medians digits 11 / 9 / inf, friedman 21 / 40 / 25.
    adamw = ((4 - 11 / 9) / 3 + 1) / 2
    lion = (1 + (4 - 40 / 21) / 3) / 2
    sgd = (0 + (4 - 25 / 21) / 3) / 2
    assert board["score"].to_dict() == pytest.approx(
        {"adamw": adamw, "lion": lion, "sgd_nesterov": sgd}
    )
    assert board.loc["lion", "speedup"] == pytest.approx(np.sqrt(11 / 9 * 21 / 40))
    assert board.loc["sgd_nesterov", "speedup_workloads"] == 1
    assert list(board["rank"]) == [1, 2, 3] and not board["incomplete"].any()

    times = pd.read_csv(out / "time_to_target.csv")
    lion_digits = times[(times["submission"] == "lion") & (times["workload"] == "digits")].iloc[0]
    assert lion_digits["time_to_target"] == 9.0 and lion_digits["studies_reached"] == 2
    assert np.isinf(lion_digits["ci_high"])  # resamples where both misses are drawn
    assert len(pd.read_csv(out / "best_trials.csv")) == 18

    markdown = (out / "leaderboard.md").read_text()
    latex = (out / "leaderboard.tex").read_text()
    for text in (markdown, latex):
        assert "Synthetic CPU x4 threads" in text
        assert "n = 3 studies per submission and workload, 5 trials per study, 90 runs" in text
    assert "sgd\\_nesterov" in latex and "\\toprule" in latex and "$\\infty$" in latex


def _pdflatex() -> str:
    engine = shutil.which("pdflatex")
    if engine is None:
        missing = "no LaTeX engine here (Debian: texlive-latex-base texlive-latex-recommended)"
        assert not os.environ.get("CI"), f"{missing}; .ci/run installs them"
        pytest.skip(missing)
    return engine


OVERFULL_TOLERANCE_PT = 0.5  # LaTeX reports boxes too wide by a hair; a real overflow is points


def compile_paper(engine: str, folder: Path, tables: list[Path], twocolumn: bool) -> str:
    """pdflatex a paper that \\input-s `tables` between paragraphs; returns the log."""
    filler = "Text of a paper about optimizers, long enough to fill a column. " * 40
    inputs = "\n".join(f"\\input{{{path.as_posix()}}}" for path in tables)
    document = folder / "paper.tex"
    options = "[twocolumn]" if twocolumn else ""
    document.write_text(
        f"\\documentclass{options}{{article}}\n\\usepackage{{booktabs}}\n\\begin{{document}}\n"
        f"{filler}\n\n{inputs}\n\n{filler}\n\n{filler}\n\\end{{document}}\n"
    )
    done = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", document.name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (folder / "paper.pdf").stat().st_size > 1000
    return (folder / "paper.log").read_text(errors="replace")


def overfull_boxes(log: str) -> list[float]:
    """How many points each overfull box of the log sticks out."""
    return [float(p) for p in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]


def test_latex_table_compiles_and_fits_one_column_of_a_two_column_paper(grid, tmp_path, capsys):
    """The tables \\input into a two-column paper as one-column floats that fit the column (an
    overflowing tabular is an overfull box in the log); --wide gives table* for the full width."""
    engine = _pdflatex()
    make_report(grid, *FAST, capsys=capsys)
    out = grid / "report"
    tables = [out / "leaderboard.tex", out / "best_hyperparameters.tex"]
    for path in tables:
        text = path.read_text()
        assert "\\begin{table}[t]" in text and "table*" not in text.replace("--wide: table*", "")
    caption = re.search(r"\\caption\{(.*)\}", tables[0].read_text()).group(1)
    assert caption.count(". ") == 0 and caption.endswith(".") and "trial" not in caption
    for twocolumn in (False, True):
        log = compile_paper(engine, tmp_path, tables, twocolumn)
        assert [p for p in overfull_boxes(log) if p > OVERFULL_TOLERANCE_PT] == [], twocolumn
    make_report(grid, *FAST, "--wide", capsys=capsys)
    assert "\\begin{table*}[t]" in tables[0].read_text()
    assert "\\begin{table*}[t]" in tables[1].read_text()
    compile_paper(engine, tmp_path, tables, twocolumn=True)


def test_intervals_only_from_three_studies(tmp_path, capsys):
    """With two studies a bootstrap interval is only the two values: none is shown, the note
    says so; with three a cell shows one."""
    times = {("adamw", "digits"): [10.0, 12.0, 11.0], ("lion", "digits"): [8.0, 9.0]}
    write_study_grid(tmp_path, times, ruleset="self")
    code, err = make_report(tmp_path, *FAST, capsys=capsys)
    assert code == 0, err
    latex = (tmp_path / "report" / "leaderboard.tex").read_text()
    markdown = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "n = 2: no interval." in latex and "n = 2: no interval." in markdown
    lion = next(line for line in markdown.splitlines() if line.startswith("| 1 | lion"))
    adamw = next(line for line in markdown.splitlines() if line.startswith("| 2 | adamw"))
    assert "[" not in lion and "| 11.0 [10.0, 12.0] |" in adamw  # no score CI: a cell has n = 2
    assert "{\\scriptsize [8.00" not in latex and "{\\scriptsize [10.0, 12.0]}" in latex


@pytest.mark.slow
def test_figures_are_written_non_empty_and_without_overlapping_labels(tmp_path, capsys):
    times = {  # five workloads (two rows of panels), four submissions, one with a long name
        (s, w): [base * f, base * f * 1.1, None if s == "sgd" else base * f * 0.95]
        for base, w in (
            (10.0, "digits"),
            (20.0, "friedman"),
            (5.0, "w3"),
            (8.0, "w4"),
            (50.0, "shakespeare"),
        )
        for f, s in ((1.0, "adamw"), (1.3, "lion"), (0.8, "sgd"), (2.0, "schedule_free_adamw"))
    }
    write_study_grid(tmp_path, times, ruleset="self")
    code, err = make_report(tmp_path, "--resamples", "50", capsys=capsys)
    assert code == 0 and "figure layout" not in err, err
    for name in ("performance_profile", "curves_time", "curves_steps", "time_to_target"):
        assert (tmp_path / "report" / f"{name}.pdf").stat().st_size > 5000
        image = matplotlib.image.imread(tmp_path / "report" / f"{name}.png")
        assert image.shape[1] >= 600 and image[..., :3].std() > 0.05  # drawn, not blank


@pytest.mark.slow
def test_figures_stay_readable_with_every_shipped_submission(tmp_path, capsys):
    """The first comparison has 22 submissions: the legends must not squash the plots."""
    names = sorted(path.stem for path in (ROOT / "conf" / "submission").glob("*.yaml"))
    assert len(names) >= 20
    times = {
        (name, workload): [base * (1 + k / 10), None if k % 4 == 0 else base * (2 + k / 10)]
        for k, name in enumerate(names)
        for base, workload in ((10.0, "digits"), (20.0, "friedman"), (50.0, "shakespeare"))
    }
    write_study_grid(tmp_path, times, ruleset="fixed")
    code, err = make_report(tmp_path, "--resamples", "20", capsys=capsys)
    assert code == 0 and "figure layout" not in err, err
    image = matplotlib.image.imread(tmp_path / "report" / "performance_profile.png")
    assert image.shape[0] > image.shape[1]  # grown taller for its legend, not shrunk


def test_one_look_per_submission_in_every_figure(grid):
    loaded = load.load(grid, use_cache=False)
    (group,) = grouping.build_groups(loaded.runs, scoring.Settings(n_resamples=20))
    looks = figures.submission_looks(["sgd_nesterov", "lion", "adamw", "lion"])
    assert looks == figures.submission_looks(["adamw", "lion", "sgd_nesterov"])
    data = figures.FigureData(
        group.board, loaded.evaluations, group.context.targets, looks, figures.Caption("hw", "n")
    )
    for figure, draw in figures.FIGURES.items():  # a new figure is checked without an edit
        fig = draw(data)
        for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]:
            for text, line in zip(legend.get_texts(), legend.get_lines(), strict=False):
                name = text.get_text().split(" ")[0]
                if name in looks:
                    assert line.get_color() == looks[name].color, (figure, name)
        assert figures.layout_problems(fig) == [], figure


def test_hardware_is_never_mixed_unless_asked(tmp_path, capsys):
    write_study_grid(
        tmp_path, {("adamw", "digits"): [10.0], ("lion", "digits"): [20.0]}, ruleset="fixed"
    )
    write_study_grid(
        tmp_path,
        {("adamw", "digits"): [5.0], ("lion", "digits"): [4.0]},
        ruleset="fixed",
        experiment="other_gpu",
        hardware="cuda:NVIDIA H100",
    )
    for run in (tmp_path / "other_gpu").rglob(results.RECORD_FILE):  # same experiment name
        record = json.loads(run.read_text())
        run.write_text(json.dumps({**record, "experiment_name": "synthetic"}))

    code, err = make_report(tmp_path, *FAST, capsys=capsys)
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    assert code == 0 and "2 separate leaderboards" in err
    assert sorted(board["hardware"].unique()) == [
        "cpu:Synthetic CPU x4 threads",
        "cuda:NVIDIA H100",
    ]
    assert (board.groupby("leaderboard")["score"].max() == 1.0).all()

    code, err = make_report(tmp_path, *FAST, "--mix-hardware", capsys=capsys)
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    assert code == 0 and board["leaderboard"].nunique() == 1
    markdown = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "runs from different hardware are mixed" in markdown
    assert "cuda:NVIDIA H100 (2 runs)" in markdown
    assert "2 trial(s) were run more than once" in markdown


def test_broken_run_folders_are_skipped_with_a_warning_naming_them(grid, capsys):
    base = grid / "synthetic" / "external"
    broken = {
        "lion/digits/study_0/trial_1": lambda d: (d / results.RECORD_FILE).write_text("{oops"),
        "lion/digits/study_0/trial_2": lambda d: (d / results.RECORD_FILE).write_text("[1, 2]"),
        "lion/digits/study_0/trial_3": lambda d: (d / results.EVAL_FILE).write_text(
            "global_step,accumulated_submission_time\n10,abc\n"
        ),
        "lion/digits/study_0/trial_4": lambda d: (d / results.RECORD_FILE).unlink(),
        "adamw/digits/study_0/trial_3": lambda d: (d / results.EVAL_FILE).unlink(),
        "adamw/digits/study_0/trial_4": lambda d: (d / results.EVAL_FILE).write_text(
            "global_step,accumulated_submission_time\n10,1.0,7\n"
        ),
    }
    for name, damage in broken.items():
        damage(base / name)
    code, err = make_report(grid, *FAST, capsys=capsys)
    assert code == 0
    for name in broken:
        assert f"skipping {base / name}:" in err
    markdown = (grid / "report" / "leaderboard.md").read_text()
    assert "lion on digits, study 0: 1 of 5 trials finished" in markdown  # and so reported


def test_empty_or_missing_folder_is_a_clear_error(tmp_path, capsys):
    code, err = make_report(tmp_path, capsys=capsys)
    assert code == 1 and "no runs under" in err and "record.json" in err
    code, err = make_report(tmp_path / "absent", capsys=capsys)
    assert code == 2 and "is not a folder" in err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / results.RECORD_FILE).write_text("garbage")
    code, err = make_report(tmp_path, capsys=capsys)
    assert code == 1 and "none of the 1 run folder(s)" in err


def test_incomplete_studies_are_reported_not_silently_scored(grid, capsys):
    base = grid / "synthetic" / "external"
    shutil.rmtree(base / "adamw/friedman/study_2/trial_3")  # 4 of 5 trials
    write_run(grid, "lion", "digits", 1, 0, None, status="running")  # replaces a finished run
    write_run(grid, "sgd_nesterov", "shakespeare", 0, 0, 12.0)  # nobody else ran it
    code, err = make_report(grid, *FAST, capsys=capsys)
    assert code == 0
    markdown = (grid / "report" / "leaderboard.md").read_text()
    for expected in (
        "adamw on friedman, study 2: 4 of 5 trials finished",
        "1 run(s) still running, left out of the scores: "
        "synthetic/external/lion/digits/study_1/trial_0",
        "adamw has no runs on shakespeare; counted as not reached",
        "sgd_nesterov on shakespeare: 1 of 3 studies",
    ):
        assert expected in markdown and expected in err
    assert "21.0†" in markdown  # adamw on friedman is marked in the table
    board = pd.read_csv(grid / "report" / "leaderboard.csv").set_index("submission")
    assert board["incomplete"].all()
    code, _ = make_report(grid, *FAST, "--strict", capsys=capsys)
    assert code == 1


def test_cache_is_reused_and_follows_changes(grid, monkeypatch):
    parsed: list[int] = []
    real_parse = load.parse_runs

    def counting_parse(root, run_dirs):
        run_dirs = list(run_dirs)
        parsed.append(len(run_dirs))
        return real_parse(root, run_dirs)

    monkeypatch.setattr(load, "parse_runs", counting_parse)
    first = load.load(grid)
    second = load.load(grid)
    assert parsed == [90]  # the second load read the cache only
    pd.testing.assert_frame_equal(first.runs, second.runs)
    pd.testing.assert_frame_equal(
        first.table().astype({"run_id": str}), second.table().astype({"run_id": str})
    )

    write_run(grid, "adamw", "digits", 0, 0, 3.0)  # rewritten: a new time
    shutil.rmtree(grid / "synthetic/external/lion/friedman/study_2")  # removed
    write_run(grid, "adamw", "shakespeare", 0, 0, 7.0)  # added
    third = load.load(grid)
    assert parsed[1] == 2  # the rewritten and the added run
    runs = third.runs.set_index("run_id")
    assert runs.loc["synthetic/external/adamw/digits/study_0/trial_0", "time_to_target"] == 3.0
    assert len(runs) == 90 - 5 + 1
    assert set(third.evaluations["run_id"].astype(str)) == set(runs.index)
    fresh = load.load(grid, use_cache=False)
    pd.testing.assert_frame_equal(third.runs, fresh.runs)


def test_record_and_evaluations_disagreeing_is_a_warning(grid):
    run_dir = write_run(grid, "adamw", "digits", 0, 0, 10.0)
    record = json.loads((run_dir / results.RECORD_FILE).read_text())
    (run_dir / results.RECORD_FILE).write_text(json.dumps({**record, "time_to_target": 4.0}))
    (warning,) = load.load(grid, use_cache=False).warnings
    assert "study_0/trial_0" in warning and "say 10 s" in warning


def test_report_on_real_runs(tmp_path):
    """Tiny real runs with a target the first evaluation meets, then the command line."""
    results_dir = tmp_path / "results"
    for submission in ("adamw", "lion"):
        run_in_process(
            [f"submission={submission}", "workload=friedman", "workload.target=100", *SMOKE],
            results_dir,
        )
    done = subprocess.run(
        [sys.executable, "-m", "harness.report", str(results_dir), *FAST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    times = pd.read_csv(results_dir / "report" / "time_to_target.csv")
    assert np.isfinite(times["time_to_target"]).all() and (times["steps_to_target"] == 3).all()
    assert "| 1 |" in done.stdout and "Hardware: cpu:" in done.stdout


def test_layout_check_finds_overlapping_and_clipped_labels():
    fig = figures.new_figure(2.0, 1.5)
    ax = fig.add_subplot()
    ax.set_xlabel("a label long enough to be wider than the figure itself, surely")
    ax.text(0.5, 0.5, "here")
    ax.text(0.5, 0.5, "here too")
    problems = figures.layout_problems(fig)
    assert any("overlaps" in p and "here too" in p for p in problems)
    assert any("sticks out" in p for p in problems)


def _figure_data(grid: Path) -> tuple[figures.FigureData, load.Results]:
    loaded = load.load(grid, use_cache=False)
    (group,) = grouping.build_groups(loaded.runs, scoring.Settings(n_resamples=20))
    looks = figures.submission_looks(group.board.submissions)
    caption = figures.Caption("hw", "n")
    return figures.FigureData(
        group.board, loaded.evaluations, group.context.targets, looks, caption
    ), loaded


def test_curves_draw_every_evaluation_of_each_study_best_trial(grid):
    """The curves take each study's best trial's evaluations, in their order, without the rows
    that lack the metric, however the runs' rows are interleaved in the table."""
    data, loaded = _figure_data(grid)
    evaluations = loaded.evaluations.sample(frac=1.0, random_state=0)  # runs interleaved...
    evaluations = evaluations.sort_values("global_step", kind="stable")  # ...each in order
    best = data.board.studies
    holey = best["run_id"].iloc[0]  # a run with evaluations that lack the metric
    metric = data.targets[best["workload"].iloc[0]][0]
    rows = evaluations.index[evaluations["run_id"] == holey][::2]
    evaluations.loc[rows, metric] = np.nan
    by_run = figures._run_rows(evaluations, best["run_id"])
    drawn = 0
    for workload in data.board.workloads:
        metric = data.targets[workload][0]
        curves = figures._study_curves(
            data.board, evaluations, by_run, workload, metric, "global_step"
        )
        for submission, runs in curves.items():
            cells = best[(best["workload"] == workload) & (best["submission"] == submission)]
            assert len(runs) == len(cells) == 3
            for (x, y), run_id in zip(runs, cells["run_id"], strict=True):
                run = evaluations[evaluations["run_id"] == run_id].dropna(subset=[metric])
                assert len(run) > 0 and (len(run) < 8) == (run_id == holey)
                np.testing.assert_array_equal(x, run["global_step"].to_numpy(float))
                np.testing.assert_array_equal(y, run[metric].to_numpy(float))
                drawn += 1
    assert drawn == len(best) == 18


def test_the_saved_png_is_the_checked_drawing_unless_the_figure_changed(grid, tmp_path):
    """layout_problems draws the PNG that save writes; an edit in between is drawn anew."""
    data, _ = _figure_data(grid)
    images = {}
    for name in ("checked", "unchecked", "changed"):
        fig = figures.time_to_target_figure(data)
        if name != "unchecked":
            assert figures.layout_problems(fig) == []
        if name == "changed":
            fig.axes[0].set_title("a title set after the check")
        pdf, png = figures.save(fig, tmp_path, name)
        assert pdf.stat().st_size > 5000
        images[name] = matplotlib.image.imread(png)
    assert np.array_equal(images["checked"], images["unchecked"])  # the check changes nothing
    assert not np.array_equal(images["checked"], images["changed"])


def test_the_report_reads_results_without_importing_torch():
    """Importing torch costs seconds: the report (tables, scoring, figures) must not need it."""
    code = "import sys, harness.report; print('torch' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "False"


@pytest.mark.parametrize("ruleset", ["external", "fixed"])
def test_records_of_format_1_score_exactly_as_the_current_format(tmp_path, ruleset, capsys):
    """Runs written before record_format existed (the ruleset's settings only in config.yaml)
    give the same tables as the same runs written today. Two studies of the three the external
    ruleset asks for, and a study short of a trial: what the audit says depends on the
    ruleset's settings, which format 1 kept only in config.yaml."""
    times = {cell: studies[:2] for cell, studies in TIMES.items()}
    for legacy in (False, True):
        folder = tmp_path / ("legacy" if legacy else "current")
        write_study_grid(folder, times, ruleset=ruleset, legacy=legacy)
        write_run(
            folder, "adamw", "digits", 2, 0, None, ruleset=ruleset, status="diverged", legacy=legacy
        )
        if ruleset == "external":
            shutil.rmtree(folder / "synthetic/external/lion/digits/study_0/trial_4")
        code, err = make_report(folder, *FAST, capsys=capsys)
        assert code == 0, err
    for name in ("leaderboard.csv", "time_to_target.csv", "best_trials.csv", "leaderboard.md"):
        current = (tmp_path / "current" / "report" / name).read_text()
        assert current == (tmp_path / "legacy" / "report" / name).read_text(), name
    markdown = (tmp_path / "current" / "report" / "leaderboard.md").read_text()
    if ruleset == "external":
        assert "lion on digits, study 0: 4 of 5 trials finished" in markdown
        assert "lion on friedman: 2 of 3 studies" in markdown
    else:  # no fixed number of studies: only the cell with fewer than the others is short
        assert "lion on friedman: 2 of 3 studies" in markdown and " of 1000000 " not in markdown
    legacy = json.loads(next((tmp_path / "legacy").rglob(results.RECORD_FILE)).read_text())
    assert "record_format" not in legacy and isinstance(legacy["ruleset"], str)


def test_a_record_without_a_target_is_skipped_with_its_reason_not_scored(grid, capsys):
    run_dir = write_run(grid, "adamw", "digits", 0, 0, 10.0)
    record = json.loads((run_dir / results.RECORD_FILE).read_text())
    del record["target"]
    (run_dir / results.RECORD_FILE).write_text(json.dumps(record))
    code, err = make_report(grid, *FAST, capsys=capsys)
    assert code == 0
    assert f"skipping {run_dir}: record.json has no target" in err
    board = pd.read_csv(grid / "report" / "time_to_target.csv")
    assert set(board["workload"]) == {w for _, w in TIMES}, "no workload under a made-up name"


def test_a_record_that_disagrees_with_its_evaluations_is_named(tmp_path):
    agrees = write_run(tmp_path, "adamw", "digits", 0, 0, 120.0)
    disagrees = write_run(tmp_path, "adamw", "digits", 0, 1, 120.0)
    record = results.load_record(disagrees)
    results.write_record(disagrees, record.replace(time_to_target=99.0))
    loaded = load.load(tmp_path, use_cache=False)
    named = [m for m in loaded.warnings if "disagree" in m or "record.json says" in m]
    assert len(named) == 1 and disagrees.relative_to(tmp_path).as_posix() in named[0]
    assert "time_to_target 99 s" in named[0] and "say 120 s" in named[0]
    assert agrees.relative_to(tmp_path).as_posix() not in " ".join(loaded.warnings)
