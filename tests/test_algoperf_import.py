"""AlgoPerf interoperability, scoring side: `python -m harness.algoperf import` on logs in
AlgoPerf's real layout, the report's AlgoPerf rules (held-out workloads, best trial, declared
workload set) against hand-computed answers, and the published v0.5 scores from the real logs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import algoperf, results
from harness.report import cli as report_cli
from harness.report import grouping, scoring
from tests.algoperf_logs import TARGETS, write_targets, write_trial

INF = math.inf
NAN = math.nan
EXPERIMENT = "algoperf_v9.9"


def import_logs(logs: Path, out: Path, *extra: str) -> int:
    return algoperf.main(["import", str(logs), str(out), *extra])


# -- the importer ---------------------------------------------------------------------------------
@pytest.fixture
def toy_logs(tmp_path: Path) -> tuple[Path, Path]:
    """Three submissions on the toy benchmark (tests/algoperf_logs.py), one study of two trials.

    Times to target (s), AlgoPerf's best trial first, then the fastest where they differ:
      alpha       fast 30 (fastest: 20)   slow 45   third 10
      alpha_wide  fast 10                 slow 10   third ∞     (held out: tied to alpha)
      beta        fast 15 (fastest: 10)   slow 10   third ∞ (one trial diverged)
      alpha_deep  fast 10                                        (a variant not held out)
      gamma       nobody ran it                                   (declared base workload)
    """
    logs = tmp_path / "logs"
    trials = {
        ("fast", "alpha"): [([0.9], 30), ([0.5, 0.85], 10)],
        ("slow", "alpha"): [([0.5, 0.6, 0.81], 15), ([0.1], 10)],
        ("third", "alpha"): [([0.95], 10), ([0.1], 10)],
        ("fast", "alpha_wide"): [([0.8], 10), ([0.1], 10)],
        ("slow", "alpha_wide"): [([0.8], 10), ([0.1], 10)],
        ("third", "alpha_wide"): [([0.1], 10), ([0.2], 10)],
        ("fast", "beta"): [([0.6, 0.4], 5), ([0.45], 15)],
        ("slow", "beta"): [([0.45], 10), ([0.9], 10)],
        ("third", "beta"): [([0.9], 10), ([NAN], 10)],
        ("fast", "alpha_deep"): [([0.9], 10), ([0.9], 10)],
    }
    for (submission, workload), runs in trials.items():
        for trial, (values, seconds) in enumerate(runs, start=1):
            framework = "pytorch" if submission == "slow" else "jax"
            write_trial(
                logs, submission, 0, workload, trial, values,
                framework=framework, seconds_per_eval=seconds,
            )  # fmt: skip
    return logs, write_targets(tmp_path / "targets.json")


def record_of(out: Path, submission: str, workload: str, trial: int, study: int = 0):
    return results.load_record(
        results.run_dir(out, EXPERIMENT, "external", submission, workload, study, trial)
    )


def test_import_writes_one_run_per_trial_by_algoperfs_rules(toy_logs, tmp_path, capsys):
    logs, targets = toy_logs
    out = tmp_path / "out"
    assert import_logs(logs, out, "--targets", str(targets)) == 0
    assert len(results.find_run_dirs(out)) == 20
    assert "imported 20 trial(s)" in capsys.readouterr().out

    record = record_of(out, "fast", "beta", 1)  # loss 0.6 then 0.4, every 5 s / 100 steps
    assert (record.status, record.time_to_target, record.steps_to_target) == ("reached", 10, 200)
    assert record.target == results.Target("validation/loss", 0.5, True)
    assert record.workload == "beta"  # "_jax" dropped
    assert record.ruleset.name == "external" and record.ruleset.num_trials == 2
    assert record.final_validation_metric == 0.4 and record.n_evaluations == 2
    assert record.workload_settings["framework"] == "jax"
    assert record.workload_settings["benchmark_workloads"] == ["alpha", "beta", "gamma"]
    assert "base_workload" not in record.workload_settings
    source = logs / "external_tuning/fast/study_0/beta_jax/trial_1/eval_measurements.csv"
    run = results.run_dir(out, EXPERIMENT, "external", "fast", "beta", 0, 1)
    assert (run / results.EVAL_FILE).read_bytes() == source.read_bytes()
    assert (
        record.source["path"]
        == "external_tuning/fast/study_0/beta_jax/trial_1/eval_measurements.csv"
    )

    assert record_of(out, "slow", "alpha", 1).time_to_target == 45  # third evaluation
    assert record_of(out, "slow", "alpha", 1).workload_settings["framework"] == "pytorch"
    assert record_of(out, "slow", "alpha", 2).status == "not_reached"
    assert record_of(out, "third", "beta", 2).status == "diverged"  # its metric is NaN
    wide = record_of(out, "fast", "alpha_wide", 1)
    assert wide.workload_settings["base_workload"] == "alpha"
    assert wide.target.value == 0.75  # the variant's own target
    deep = record_of(out, "fast", "alpha_deep", 1)
    assert "base_workload" not in deep.workload_settings  # not held out: not tied


def test_import_lists_what_it_cannot_read_and_imports_the_rest(toy_logs, tmp_path, capsys):
    logs, targets = toy_logs
    stray = logs / "external_tuning/fast/study_0/trial_1/eval_measurements.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("global_step\n1\n")
    unknown = write_trial(logs, "fast", 0, "delta", 1, [0.9])
    no_metric = write_trial(logs, "slow", 1, "beta", 1, [0.4], framework="pytorch")
    no_metric.write_text(no_metric.read_text().replace("validation/loss", "validation/other"))
    cut = write_trial(logs, "slow", 1, "beta", 2, [0.4], framework="pytorch")
    cut.write_text(cut.read_text().rstrip("\n"))

    assert import_logs(logs, tmp_path / "out", "--targets", str(targets)) == 0
    captured = capsys.readouterr()
    assert "imported 20 trial(s)" in captured.out and "4 unreadable" in captured.out
    listed = {
        "fast/study_0/trial_1/eval_measurements.csv": "not in AlgoPerf's layout",
        "delta_jax/trial_1/eval_measurements.csv": "no workload 'delta'",
        "beta_pytorch/trial_1/eval_measurements.csv": "lacks the column(s) validation/loss",
        "beta_pytorch/trial_2/eval_measurements.csv": "incomplete row",
    }
    for path, reason in listed.items():
        line = next(x for x in captured.err.splitlines() if path in x)
        assert reason in line
    assert unknown.exists()  # the logs are never touched


def test_import_again_changes_nothing_and_never_overwrites_a_run(toy_logs, tmp_path, capsys):
    logs, targets = toy_logs
    out = tmp_path / "out"
    assert import_logs(logs, out, "--targets", str(targets)) == 0
    ours = results.run_dir(out, EXPERIMENT, "external", "fast", "beta", 0, 1)
    record = results.load_record(ours).replace(source=None, hardware="cpu:ours")
    results.write_record(ours, record)  # now a run of ours sits where trial 1 would go
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()

    assert import_logs(logs, out, "--targets", str(targets)) == 0
    captured = capsys.readouterr()
    assert "imported 0 trial(s)" in captured.out and "19 already there" in captured.out
    assert "fast/beta/study_0/trial_1: holds a run of ours; left as it is" in captured.err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert results.load_record(ours).hardware == "cpu:ours"


def test_ruleset_from_the_folder_or_the_option(tmp_path, capsys):
    logs = tmp_path / "logs"
    write_trial(logs, "solo", 0, "beta", 1, [0.4], ruleset_folder=None)
    targets = write_targets(tmp_path / "targets.json")
    assert import_logs(logs, tmp_path / "out", "--targets", str(targets)) == 1
    assert "say which with --ruleset" in capsys.readouterr().err
    assert import_logs(logs, tmp_path / "out", "--targets", str(targets), "--ruleset", "self") == 0
    run = results.run_dir(tmp_path / "out", EXPERIMENT, "self", "solo", "beta", 0, 1)
    assert results.load_record(run).ruleset.tune is False


F1 = {"target_metric_name": "f1", "validation_target_value": 0.5}
UNDIRECTED = {**TARGETS, "workloads": {**TARGETS["workloads"], "beta": F1}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"workloads": {}}), "is not an AlgoPerf targets file"),
        (json.dumps(UNDIRECTED), "does not say whether 'f1' is minimized"),
        (json.dumps({**TARGETS, "held_out_workloads": ["omega"]}), "not so for omega"),
    ],
)
def test_a_bad_targets_file_is_one_paragraph_and_exit_2(tmp_path, capsys, content, message):
    (tmp_path / "logs").mkdir()
    (tmp_path / "targets.json").write_text(content)
    code = import_logs(
        tmp_path / "logs", tmp_path / "out", "--targets", str(tmp_path / "targets.json")
    )
    error = capsys.readouterr().err
    assert code == 2 and message in error
    assert error.startswith("error: ") and error.count("\n") == 1 and "Traceback" not in error


def test_the_held_out_file_replaces_the_targets_list(toy_logs, tmp_path):
    logs, targets = toy_logs
    held_out = tmp_path / "held_out.json"
    held_out.write_text(json.dumps(["alpha_deep"]))
    out = tmp_path / "out"
    assert import_logs(logs, out, "--targets", str(targets), "--held-out", str(held_out)) == 0
    assert record_of(out, "fast", "alpha_deep", 1).workload_settings["base_workload"] == "alpha"
    assert "base_workload" not in record_of(out, "fast", "alpha_wide", 1).workload_settings


# -- the report's AlgoPerf rules ------------------------------------------------------------------
def report_scores(results_dir: Path, out: Path, *options: str) -> pd.DataFrame:
    code = report_cli.main([str(results_dir), "--out", str(out), "--no-figures", *options])
    assert code == 0
    return pd.read_csv(out / "leaderboard.csv").set_index("submission")


def test_report_applies_algoperfs_rules_to_imported_runs(toy_logs, tmp_path, capsys):
    """Hand-computed, from the times in toy_logs. With AlgoPerf's rules: third is fastest on
    alpha (10) but misses alpha_wide, so its alpha is ∞; slow's alpha (45) was over 4 x that
    best (40) before third's was removed, so it is ∞ too (the order of AlgoPerf's scorer); fast
    keeps 30, ratio 1. beta: fast 15 / slow 10, ratio 1.5. gamma: nobody, ∞ for all; the score
    divides by the 3 declared workloads. fast: (1 + 2.5/3 + 0) / 3, slow: (0 + 1 + 0) / 3."""
    logs, targets = toy_logs
    out = tmp_path / "out"
    assert import_logs(logs, out, "--targets", str(targets)) == 0
    capsys.readouterr()
    scores = report_scores(
        out / EXPERIMENT, tmp_path / "report", "--algoperf", "--baseline", "none"
    )
    assert scores.loc["fast", "score_algoperf"] == pytest.approx(5.5 / 9, abs=1e-12)
    assert scores.loc["fast", "score_exact"] == pytest.approx(5.5 / 9, abs=1e-12)
    assert scores.loc["slow", "score_algoperf"] == pytest.approx(1 / 3, abs=1e-12)
    assert scores.loc["third", "score_algoperf"] == 0
    assert set(scores["workloads"]) == {3} and scores.loc["fast", "workloads_reached"] == 2
    captured = capsys.readouterr()
    assert "no runs on gamma: counted as not reached for every submission" in captured.err
    assert "outside the scored set" in captured.err and "alpha_deep" in captured.err
    assert "Held-out rule (AlgoPerf)" in captured.out and "alpha_wide → alpha" in captured.out
    assert "| 1 | fast | 0.6111 |" in captured.out  # four decimals, as AlgoPerf publishes

    # Our best trial (the fastest): fast's beta is 10 (its first trial), tied with slow.
    fastest = report_scores(out / EXPERIMENT, tmp_path / "report2", "--baseline", "none")
    assert fastest.loc["fast", "score_exact"] == pytest.approx(2 / 3, abs=1e-12)
    assert fastest.loc["slow", "score_exact"] == pytest.approx(1 / 3, abs=1e-12)

    # A declared set given on the command line replaces the records' own.
    only_beta = report_scores(
        out / EXPERIMENT,
        tmp_path / "report3",
        "--benchmark-workloads",
        "beta",
        "--baseline",
        "none",
    )
    assert set(only_beta["workloads"]) == {1}
    assert only_beta.loc["fast", "score_exact"] == pytest.approx(1.0)  # fast's beta is 10 here


def test_held_out_rule_by_hand():
    """Submissions A, B, C; base w with held-out variant v, and base u. A misses v; C is over
    4 x the best on w (45 > 4 x 10) and on v: both ∞ before A's w is removed."""
    times = np.array(
        [
            [10.0, INF, 5.0],  # A: w, v, u
            [30.0, 20.0, 5.0],  # B
            [45.0, 100.0, 5.0],  # C
        ]
    )
    kept = scoring.held_out_times(times, ["w", "v", "u"], ["u", "w"], {"v": "w"})
    assert kept.tolist() == [[5.0, INF], [5.0, 30.0], [5.0, INF]]
    assert scoring.exact_scores(kept).tolist() == pytest.approx([0.5, 1.0, 0.5])
    # Step 1: a variant counts as missed where its base was, so A's fast variant (1 s) does not
    # make B's (5 s, over 4 x 1) a miss that would remove B's base.
    variant_first = np.array([[INF, 1.0], [2.0, 5.0]])
    kept_base = scoring.held_out_times(variant_first, ["w", "v"], ["w"], {"v": "w"})
    assert kept_base.tolist() == [[INF], [2.0]]
    # Bootstrap replicates: the same rule on every leading index.
    stacked = scoring.held_out_times(
        np.stack([times, times]), ["w", "v", "u"], ["u", "w"], {"v": "w"}
    )
    assert stacked.shape == (2, 3, 2) and (stacked[1] == kept).all()


def test_best_trial_rules_and_their_tie_break():
    """Study 0: trial 1 met the target at its 4th evaluation (100 s), trial 2 at its 3rd
    (120 s): fastest takes trial 1, AlgoPerf's rule trial 2. Study 1: trials 1 and 2 both at
    the 3rd evaluation (130 s, 125 s): the faster, trial 2; trial 3 never reached."""
    runs = pd.DataFrame(
        {
            "run_id": [f"r{k}" for k in range(5)],
            "submission": "s",
            "workload": "w",
            "study": [0, 0, 1, 1, 1],
            "trial": [1, 2, 1, 2, 3],
            "time_to_target": [100.0, 120.0, 130.0, 125.0, INF],
            "steps_to_target": [4.0, 3.0, 3.0, 3.0, NAN],
            "evaluations_to_target": [3.0, 2.0, 2.0, 2.0, NAN],
            "final_validation_metric": 0.9,
            "target_value": 0.8,
            "lower_is_better": False,
        }
    )
    fastest = scoring.best_trials(runs, "fastest").set_index("study")["trial"]
    algoperf_rule = scoring.best_trials(runs, "algoperf").set_index("study")["trial"]
    assert fastest.to_dict() == {0: 1, 1: 2}
    assert algoperf_rule.to_dict() == {0: 2, 1: 2}
    with pytest.raises(ValueError, match="unknown best-trial rule"):
        scoring.best_trials(runs, "slowest")


def test_evaluations_to_target_is_counted_from_the_evaluations(toy_logs, tmp_path):
    logs, targets = toy_logs
    out = tmp_path / "out"
    assert import_logs(logs, out, "--targets", str(targets)) == 0
    from harness.report import load

    runs = load.load(out, use_cache=False).runs.set_index("run_id")
    prefix = f"{EXPERIMENT}/external"
    assert runs.loc[f"{prefix}/slow/alpha/study_0/trial_1", "evaluations_to_target"] == 2
    assert runs.loc[f"{prefix}/fast/alpha/study_0/trial_1", "evaluations_to_target"] == 0
    assert np.isnan(runs.loc[f"{prefix}/slow/alpha/study_0/trial_2", "evaluations_to_target"])


# -- the published v0.5 leaderboard, from the real logs -------------------------------------------
SHARED = Path(
    os.environ.get("ALGOPERF_DATA", Path(__file__).resolve().parents[2] / "shared/data/algoperf")
)
PUBLISHED = SHARED / "published_scores_v05.csv"


@pytest.fixture(scope="module")
def imported_v05(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SHARED / "algoperf_v05_logs.tar.xz").exists():
        pytest.skip(
            f"AlgoPerf v0.5 logs not found in {SHARED} (set ALGOPERF_DATA to the folder holding "
            "algoperf_v05_logs.tar.xz, workload_targets_v05.json, "
            "held_out_workloads_algoperf_v05.json and published_scores_v05.csv)"
        )
    folder = tmp_path_factory.mktemp("algoperf_v05")
    with tarfile.open(SHARED / "algoperf_v05_logs.tar.xz") as archive:
        archive.extractall(folder, filter="data")
    out = folder / "results"
    code = algoperf.main(
        [
            "import",
            str(folder / "logs"),
            str(out),
            "--targets",
            str(SHARED / "workload_targets_v05.json"),
            "--held-out",
            str(SHARED / "held_out_workloads_algoperf_v05.json"),
        ]
    )
    assert code == 0
    return out / "algoperf_v0.5"


@pytest.mark.slow
def test_published_v05_scores_are_reproduced_to_4_decimals(imported_v05, tmp_path):
    scores = report_scores(imported_v05, tmp_path / "report", "--algoperf", "--resamples", "10")
    scores = scores.reset_index().set_index(["ruleset", "submission"])["score"]
    published = pd.read_csv(PUBLISHED).set_index(["ruleset", "submission"])["published_score"]
    assert len(published) == 17 and set(published.index) == set(scores.index)
    differences = (scores[published.index] - published).abs()
    assert differences.max() < 5e-5, differences.sort_values().tail()
    # Both AlgoPerf rules matter: with our best trial LAWA-EMA's score moves (0.3384 -> 0.3434).
    ours = report_scores(imported_v05, tmp_path / "ours", "--resamples", "10")
    moved = ours.reset_index().set_index(["ruleset", "submission"])["score_algoperf"]
    assert abs(moved["external", "lawa_ema"] - published["external", "lawa_ema"]) > 1e-3


def test_the_import_never_imports_torch():
    """The import and the report run on machines without torch (a laptop reading logs)."""
    code = "import sys, harness.algoperf, harness.report.cli; print('torch' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "False"


@pytest.mark.slow
def test_figures_draw_the_scored_times_and_a_workload_nobody_ran(toy_logs, tmp_path):
    """The profile is the score's: third is fastest on alpha as measured, but the held-out rule
    removes it, so its rho stays 0; gamma (declared, no runs) gets an empty panel."""
    from harness.report import figures, load

    logs, targets = toy_logs
    out = tmp_path / "out"
    assert import_logs(logs, out, "--targets", str(targets)) == 0
    assert report_cli.main([str(out / EXPERIMENT), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "performance_profile.pdf").exists()
    assert (tmp_path / "report" / "curves_time.png").exists()

    loaded = load.load(out / EXPERIMENT, use_cache=False)
    settings = scoring.Settings(method="algoperf", best_trial="algoperf", n_resamples=10)
    (group,) = grouping.build_groups(loaded.runs, settings)
    looks = figures.submission_looks(group.board.submissions)
    data = figures.FigureData(
        group.board, loaded.evaluations, group.context.targets, looks, figures.Caption("h", "d")
    )
    profile = figures.profile_figure(data)
    lines = {line.get_label().split(" ")[0]: line for line in profile.axes[0].get_lines()}
    assert lines["third"].get_ydata().max() == 0
    assert lines["fast"].get_ydata()[-1] == pytest.approx(2 / 3)  # alpha and beta of 3
