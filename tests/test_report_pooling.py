"""`python -m harness.report` for a paper: several folders and experiments pooled into one
leaderboard (or refused, with the reason), display names, the choice and order of rows and
columns, separate rulesets with readable names, and the best trials' hyperparameters; on
synthetic run folders whose answers are known."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness import results
from harness.report import cli as report
from harness.report import figures
from tests.synthetic_results import write_run, write_study_grid

FAST = ["--resamples", "20", "--no-figures"]
BASELINES = {  # ruleset "self": 3 studies of one trial each
    ("adamw", "digits"): [10.0, 12.0, 11.0],
    ("adamw", "friedman"): [20.0, 22.0, 21.0],
    ("sgd_nesterov", "digits"): [None, None, 30.0],
    ("sgd_nesterov", "friedman"): [25.0, 19.0, 30.0],
}
OURS = {("lion", "digits"): [8.0, None, 9.0], ("lion", "friedman"): [40.0, 35.0, 50.0]}


def run_report(*args: str, capsys) -> tuple[int, str, str]:
    code = report.main([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def sweeps(tmp_path) -> tuple[Path, Path]:
    """Two results folders: an earlier sweep's baselines and a later sweep's new method."""
    baselines, ours = tmp_path / "baselines", tmp_path / "ours"
    write_study_grid(baselines, BASELINES, ruleset="self", experiment="sweep1")
    write_study_grid(ours, OURS, ruleset="self", experiment="sweep2")
    return baselines, ours


def scores(out: Path) -> dict[str, float]:
    return pd.read_csv(out / "leaderboard.csv").set_index("submission")["score"].to_dict()


def test_two_folders_pool_into_one_leaderboard_and_say_so(sweeps, tmp_path, capsys):
    baselines, ours = sweeps
    out = tmp_path / "report"
    code, stdout, err = run_report(baselines, ours, "--out", out, *FAST, capsys=capsys)
    assert code == 0, err
    board = pd.read_csv(out / "leaderboard.csv")
    assert board["leaderboard"].nunique() == 1 and len(board) == 3
    pooled = (
        f"Pooled from 2 sweeps: sweep1 ({baselines.as_posix()}): 12 runs; "
        f"sweep2 ({ours.as_posix()}): 6 runs."
    )
    assert pooled in stdout and pooled in (out / "leaderboard.md").read_text()
    assert "Pooled from 2 sweeps" in (out / "leaderboard.tex").read_text()
    # The same runs written as one experiment in one folder score the same.
    together = tmp_path / "together"
    write_study_grid(together, {**BASELINES, **OURS}, ruleset="self", experiment="one")
    assert run_report(together, *FAST, capsys=capsys)[0] == 0
    assert scores(out) == pytest.approx(scores(together / "report"))
    assert "Pooled" not in (together / "report" / "leaderboard.md").read_text()
    # Run ids name their folder, so the per-study table says where each best trial lives.
    best = pd.read_csv(out / "best_trials.csv")
    lion = best[best["submission"] == "lion"]["run_id"]
    assert lion.str.startswith(ours.as_posix() + "/sweep2/").all()


def test_several_folders_need_an_explicit_report_folder(sweeps, capsys):
    baselines, ours = sweeps
    with pytest.raises(SystemExit) as stop:
        report.main([str(baselines), str(ours), *FAST])
    assert stop.value.code == 2 and "--out DIR" in capsys.readouterr().err
    code, _, err = run_report(baselines, baselines, "--out", ours.parent / "r", capsys=capsys)
    assert code == 2 and "counted twice" in err


def _retarget(folder: Path, value: float) -> None:
    for path in folder.rglob(results.RECORD_FILE):
        record = results.load_record(path.parent)
        if record.workload == "digits":
            target = results.Target(record.target.metric, value, record.target.lower_is_better)
            results.write_record(path.parent, record.replace(target=target))


def test_sweeps_with_other_targets_are_refused_unless_asked(sweeps, tmp_path, capsys):
    baselines, ours = sweeps
    _retarget(ours, 0.99)
    out = tmp_path / "report"
    code, _, err = run_report(baselines, ours, "--out", out, *FAST, capsys=capsys)
    assert code == 2 and "Traceback" not in err
    assert "targets differ on workload digits" in err
    assert "validation/accuracy ≥ 0.98 in sweep sweep1" in err
    assert "validation/accuracy ≥ 0.99 in sweep sweep2" in err
    assert f"{ours.as_posix()}/sweep2/self/lion/digits/" in err  # names a run
    assert "--mix-targets" in err and not out.exists()

    code, _, err = run_report(baselines, ours, "--out", out, "--mix-targets", *FAST, capsys=capsys)
    assert code == 0, err
    columns = set(pd.read_csv(out / "time_to_target.csv")["workload"])
    assert columns == {"digits (accuracy 0.98)", "digits (accuracy 0.99)", "friedman"}


def test_sweeps_with_other_budgets_are_refused_unless_asked(tmp_path, capsys):
    baselines, ours = tmp_path / "baselines", tmp_path / "ours"
    write_study_grid(baselines, BASELINES, ruleset="self", experiment="sweep1")
    write_study_grid(ours, OURS, ruleset="self", experiment="sweep2", budget=500.0)
    out = tmp_path / "report"
    code, _, err = run_report(baselines, ours, "--out", out, *FAST, capsys=capsys)
    assert code == 2 and "budgets differ on workload digits" in err
    assert "max runtime 1000 s in sweep sweep1" in err and "max runtime 500 s" in err
    code, _, err = run_report(baselines, ours, "--out", out, "--mix-budgets", *FAST, capsys=capsys)
    assert code == 0, err
    assert len(scores(out)) == 3
    for path in ours.rglob(results.RECORD_FILE):  # runs that did not record their budget
        record = results.load_record(path.parent)
        results.write_record(path.parent, record.replace(workload_settings={"step_hint": 100}))
    code, _, err = run_report(baselines, ours, "--out", out, *FAST, capsys=capsys)
    assert code == 0, err


def test_a_copied_run_counts_once_and_a_clashing_one_is_refused(sweeps, tmp_path, capsys):
    baselines, ours = sweeps
    out = tmp_path / "report"
    code, _, _ = run_report(baselines, ours, "--out", out, *FAST, capsys=capsys)
    before = pd.read_csv(out / "time_to_target.csv")
    # The same run folder copied into the other results folder: the same run, counted once.
    study = "sweep1/self/adamw/digits/study_0"
    shutil.copytree(baselines / study, ours / study)
    code, _, err = run_report(baselines, ours, "--out", out, *FAST, capsys=capsys)
    assert code == 0, err
    assert "1 run(s) are copies of another run (the same record) and count once" in err
    assert f"{ours.as_posix()}/{study}/trial_0 (= {baselines.as_posix()}/{study}/trial_0)" in err
    pd.testing.assert_frame_equal(pd.read_csv(out / "time_to_target.csv"), before)
    assert "12 runs; sweep2" in (out / "leaderboard.md").read_text()
    # A different run in the same slot of another sweep: the study would pick the faster.
    shutil.rmtree(ours / "sweep1")
    clash = write_run(ours, "adamw", "digits", 0, 0, 3.0, ruleset="self", experiment="sweep2")
    code, _, err = run_report(baselines, ours, "--out", out, *FAST, capsys=capsys)
    assert code == 2 and "1 trial(s) were run in more than one sweep" in err
    assert "adamw on digits, study 0, trial 0:" in err
    assert clash.as_posix() in err and f"{baselines.as_posix()}/{study}/trial_0" in err


def test_rulesets_stay_apart_with_readable_names_and_one_method_paragraph(
    tmp_path, capsys, monkeypatch
):
    folder = tmp_path / "results"
    write_study_grid(folder, BASELINES, ruleset="self", experiment="e1")
    write_study_grid(folder, OURS, ruleset="self", experiment="e2")
    write_study_grid(folder, BASELINES, ruleset="fixed", experiment="e3")
    drawn: list[str] = []
    # No drawing here: the file names the report asks for are the point.
    monkeypatch.setattr(
        figures, "render", lambda name, filename, data, out: (drawn.append(filename) or [], [])
    )
    code, _, err = run_report(folder, "--resamples", "20", capsys=capsys)
    assert code == 0, err
    assert "2 separate leaderboards (fixed, self: different rulesets are different games)" in err
    board = pd.read_csv(folder / "report" / "leaderboard.csv")
    assert board.groupby("leaderboard_name")["submission"].apply(set).to_dict() == {
        "fixed": {"adamw", "sgd_nesterov"},
        "self": {"adamw", "sgd_nesterov", "lion"},
    }
    assert drawn == [f"{name}_{board}" for board in ("fixed", "self") for name in figures.FIGURES]
    markdown = (folder / "report" / "leaderboard.md").read_text()
    assert markdown.count("Score: benchmark score") == 1
    assert "## Leaderboard self: ruleset self, experiments e1, e2" in markdown
    latex = (folder / "report" / "leaderboard.tex").read_text()
    assert "\\label{tab:leaderboard-fixed}" in latex and "\\label{tab:leaderboard-self}" in latex
    code, _, err = run_report(folder, "--by-experiment", *FAST, capsys=capsys)
    names = set(pd.read_csv(folder / "report" / "leaderboard.csv")["leaderboard_name"])
    assert code == 0 and names == {"e1-self", "e2-self", "e3-fixed"}, err


def test_display_names_choice_and_order_of_rows_and_columns(sweeps, tmp_path, capsys):
    baselines, ours = sweeps
    out = tmp_path / "report"
    options = ["--out", out, "--names", "adamw=AdamW", "sgd_nesterov=SGD (ours)"]
    picked = ["--submissions", "sgd_nesterov,adamw", "--workloads", "friedman,digits"]
    code, _, err = run_report(baselines, ours, *options, *picked, *FAST, capsys=capsys)
    assert code == 0, err
    # Scored among the two shown: adamw fastest on both; sgd misses digits, 25 vs 21 on friedman.
    assert scores(out) == pytest.approx({"adamw": 1.0, "sgd_nesterov": (4 - 25 / 21) / 3 / 2})
    markdown = (out / "leaderboard.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert (
        rows[0].startswith("| rank | submission | score |") and "| friedman | digits |" in rows[0]
    )
    assert rows[1].startswith("| 2 | SGD (ours) |") and rows[2].startswith("| 1 | AdamW |")
    latex = (out / "leaderboard.tex").read_text()
    assert "\\# & Submission" in latex and "friedman & digits" in latex
    assert latex.index("SGD (ours)") < latex.index("AdamW") and "lion" not in latex
    for name in ("comparison.md", "best_hyperparameters.md", "best_hyperparameters.tex"):
        text = (out / name).read_text()
        assert "SGD (ours)" in text and "AdamW" in text and "| lion |" not in text, name
    assert "AdamW" in pd.read_csv(out / "leaderboard.csv")["display_name"].tolist()


@pytest.mark.parametrize(
    "option, message",
    [
        (["--submissions", "adamw,lon"], "--submissions: no runs of lon; the runs have"),
        (["--workloads", "digit"], "--workloads: no runs of digit; the runs have workloads"),
        (["--names", "adam=Adam"], "--names: no submission or workload is called adam"),
    ],
)
def test_a_name_no_run_has_is_an_error_not_an_empty_table(grid_self, option, message, capsys):
    code, _, err = run_report(grid_self, *option, *FAST, capsys=capsys)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.fixture
def grid_self(tmp_path) -> Path:
    write_study_grid(tmp_path / "r", BASELINES, ruleset="self")
    return tmp_path / "r"


def test_names_before_the_folder_are_caught(grid_self, capsys):
    with pytest.raises(SystemExit) as stop:
        report.main(["--names", "adamw=AdamW", str(grid_self)])
    assert stop.value.code == 2 and "NAME=DISPLAY pairs" in capsys.readouterr().err


def test_best_hyperparameters_are_the_values_each_study_best_trial_used(tmp_path, capsys):
    """Trial 1 (learning rate 0.01) is the fastest in study 1 only; trial 0 (0.1) elsewhere."""
    folder = tmp_path / "r"
    times = {0: (10.0, 20.0), 1: (30.0, 12.0), 2: (11.0, 25.0)}  # study: (trial 0, trial 1)
    for submission in ("adamw", "lion"):
        for study, (first, second) in times.items():
            trial_times = (first, first * 2) if submission == "lion" else (first, second)
            for trial, time in enumerate(trial_times):  # lion's trial 0 wins every study
                run_dir = write_run(folder, submission, "digits", study, trial, time)
                record = results.load_record(run_dir)
                used = {**record.hyperparameters, "schedule": {"warmup": 10 * (trial + 1)}}
                results.write_record(run_dir, record.replace(hyperparameters=used))
    code, _, err = run_report(folder, *FAST, capsys=capsys)
    assert code == 0, err
    out = folder / "report"
    best = pd.read_csv(out / "best_hyperparameters.csv").set_index(["submission", "study"])
    assert best.loc[("adamw", 1), "trial"] == 1 and best.loc[("adamw", 0), "trial"] == 0
    assert best.loc["adamw", "hp_learning_rate"].tolist() == [0.1, 0.01, 0.1]
    assert best.loc["adamw", "hp_schedule.warmup"].tolist() == [10, 20, 10]  # from the record
    assert not best.loc["adamw", "same_across_studies"].any()
    assert best.loc["lion", "same_across_studies"].all()
    assert best.loc["lion", "hp_learning_rate"].tolist() == [0.1, 0.1, 0.1]
    trials = pd.read_csv(out / "best_trials.csv").set_index(["submission", "study"])
    assert trials.loc[("adamw", 1), "hp_learning_rate"] == 0.01
    markdown = (out / "best_hyperparameters.md").read_text()
    assert (
        "| adamw | digits | 3/3 | none | learning_rate: 0.1 (studies 0, 2), 0.01 (study 1); "
        "schedule.warmup: 10 (studies 0, 2), 20 (study 1) |" in markdown
    )
    assert "| lion | digits | 3/3 | learning_rate = 0.1, schedule.warmup = 10 | — |" in markdown
    assert (
        "differ between studies: learning\\_rate: 0.1"
        in (out / "best_hyperparameters.tex").read_text()
    )


def test_a_table_too_wide_for_one_column_says_so(tmp_path, capsys):
    times = {("adamw", w): [10.0] for w in ("digits", "friedman", "w3", "w4")}
    write_study_grid(tmp_path, {**times, ("lion", "digits"): [9.0]}, ruleset="fixed")
    code, _, err = run_report(tmp_path, *FAST, capsys=capsys)
    assert code == 0 and "leaderboard.tex (1): 7 columns are likely wider than one column" in err
    code, _, err = run_report(tmp_path, *FAST, "--wide", capsys=capsys)
    assert code == 0 and "likely wider" not in err
