"""Sweeps (Hydra multirun): the external ruleset's (study, trial) -> hyperparameters mapping,
finished runs skipped on a rerun, force=true, the local submitit launcher, sweep progress."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness import results, sweep
from tests.helpers import (
    ROOT,
    assert_hyperparameters_match,
    compose_with_hydra,
    default_run_dir,
    expected_hyperparameters,
    expected_search_point,
    group_choices,
    run_cli,
)

SUBMISSIONS, STUDIES, TRIALS = ("adamw", "lion"), (0, 1), (0, 1)
SWEEP = [
    "-m",
    "ruleset=external",
    f"submission={','.join(SUBMISSIONS)}",
    "workload=friedman",
    f"study={','.join(map(str, STUDIES))}",
    f"trial={','.join(map(str, TRIALS))}",
    "max_steps=4",
    "workload.eval_every_steps=2",
    "progress=none",
]


def all_runs(root: Path) -> dict[tuple, Path]:
    return {
        (submission, study, trial): default_run_dir(
            root / "results", submission, "friedman", study, trial, ruleset="external"
        )
        for submission in SUBMISSIONS
        for study in STUDIES
        for trial in TRIALS
    }


def records(root: Path) -> dict[tuple, str]:
    return {key: (d / results.RECORD_FILE).read_text() for key, d in all_runs(root).items()}


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    result = run_cli(SWEEP, root)
    assert result.returncode == 0, result.stderr
    (root / "sweep_output.txt").write_text(result.stdout + result.stderr)
    return root


@pytest.mark.slow
def test_external_sweep_uses_the_independently_recomputed_halton_points(sweep_root):
    points = set()
    for (submission, study, trial), run_dir in all_runs(sweep_root).items():
        written = results.read_json(run_dir / results.HPARAMS_FILE)
        assert_hyperparameters_match(written, expected_hyperparameters(submission, study, trial))
        record = results.load_record(run_dir)
        assert record.hyperparameters == written  # the effective values, in both places
        _, point = expected_search_point(submission, study, trial)
        assert_hyperparameters_match(record.search_point, point)
        assert record.finished
        assert record.seed == 1000 * study + trial
        command = shlex.split(record.command)  # reruns this task alone, from any shell
        assert command[:3] == ["cd", str(sweep_root), "&&"] and "-m" not in command
        assert str(ROOT / "run.py") in command
        assert {f"submission={submission}", f"study={study}", f"trial={trial}"} <= set(command)
        points.add(tuple(sorted(written.items())))
    assert len(points) == len(all_runs(sweep_root)), "every (study, trial) must get its own point"


@pytest.mark.slow
def test_the_sweep_plans_its_runs_and_prints_a_line_per_finished_run(sweep_root):
    output = (sweep_root / "sweep_output.txt").read_text()
    total = len(all_runs(sweep_root))
    for finished in range(1, total + 1):
        assert f"sweep: [{finished}/{total}] " in output, output
    last = next(line for line in output.splitlines() if f"[{total}/{total}]" in line)
    assert "not_reached: validation/mse" in last or "reached in" in last
    assert "elapsed, done" in last and "ETA" in output
    planned = sweep.planned_run_dirs(sweep_root / "results")
    assert planned == sorted(d.resolve() for d in all_runs(sweep_root).values())


@pytest.mark.slow
def test_rerunning_the_sweep_skips_every_finished_run(sweep_root):
    before = records(sweep_root)
    result = run_cli(SWEEP, sweep_root)
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).count("skip (done") == len(before)
    assert records(sweep_root) == before, "a finished run was run again"


@pytest.mark.slow
def test_force_reruns_finished_runs(sweep_root):
    before = records(sweep_root)
    one = ["-m", "ruleset=external", "submission=adamw", "workload=friedman", "study=1", "trial=0"]
    result = run_cli([*one, *SWEEP[6:], "force=true"], sweep_root)
    assert result.returncode == 0, result.stderr
    after = records(sweep_root)
    changed = [key for key in before if before[key] != after[key]]
    assert changed == [("adamw", 1, 0)]


def sweep_status(root: Path, capsys) -> tuple[int, str, str]:
    """`python -m harness.sweep ROOT`, in this process."""
    code = sweep.main([str(root)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_local_launcher_keeps_going_after_a_crash_and_reports_progress(tmp_path, capsys):
    """Two tasks through submitit's local executor; digits crashes on purpose (a batch larger
    than its training set), friedman must still finish, and the failure is in its record."""
    overrides = [
        "-m",
        "hydra/launcher=local",
        "workload=friedman,digits",
        "submission.batch_size=2000",
        "max_steps=4",
        "workload.eval_every_steps=2",
        "progress=none",
    ]
    result = run_cli(overrides, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "sweep: 1/2 done, 0 running, 1 failed, 0 pending" in output
    assert results.load_record(default_run_dir(tmp_path / "results")).finished
    failed = results.load_record(default_run_dir(tmp_path / "results", workload="digits"))
    assert failed.status == "failed" and "batch size 2000 exceeds" in failed.error
    assert list((tmp_path / ".slurm" / "submitit").rglob("*.pkl")), "submitit's files are here"
    assert not list((tmp_path / "results").rglob("*.pkl")), "results/ must hold no pickle"

    code, out, err = sweep_status(tmp_path / "results" / "default", capsys)
    assert code == 0, err
    assert "default: 1/2 done, 0 running, 1 failed, 0 pending\n" in out  # the plan: no more
    assert "digits/study_0/trial_0" in out and "batch size 2000 exceeds" in out


def test_status_of_a_missing_folder_is_an_error(tmp_path, capsys):
    code, _, err = sweep_status(tmp_path / "nowhere", capsys)
    assert code == 2 and "is not a folder" in err


@pytest.mark.parametrize("launcher", group_choices("hydra/launcher"))
def test_launcher_configs_build_ours_and_keep_pickles_out_of_results(launcher, tmp_path):
    from hydra.plugins.launcher import Launcher
    from hydra.utils import get_class

    cfg = compose_with_hydra([f"results_dir={tmp_path / 'results'}", f"hydra/launcher={launcher}"])
    settings = cfg.hydra.launcher
    assert issubclass(get_class(settings._target_), Launcher)
    assert settings._target_.startswith("hydra_plugins.optbench_launchers.")
    if "submitit_folder" in settings:  # submitit's pickles and logs: never under results/
        folder = Path(settings.submitit_folder)
        assert folder.parts[0] == ".slurm" and "results" not in folder.parts
