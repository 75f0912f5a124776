"""The command line as a user types it: help, overrides, clear errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import default_run_dir, group_choices, run_cli


@pytest.mark.slow
def test_help_lists_config_groups_and_choices(tmp_path):
    result = run_cli(["--help"], tmp_path)
    assert result.returncode == 0
    for group in ("workload", "submission", "ruleset", "submission/schedule"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"{group}:"))
        for choice in group_choices(group):
            assert choice in line


def test_unknown_workload_lists_the_choices(tmp_path):
    result = run_cli(["workload=no_such_workload"], tmp_path)
    assert result.returncode != 0
    assert "Could not find 'workload/no_such_workload'" in result.stderr
    for choice in group_choices("workload"):
        assert choice in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_hyperparameter_is_one_clear_paragraph(tmp_path):
    result = run_cli(["+submission.hyperparameters.learing_rate=1e-3"], tmp_path)
    assert result.returncode == 2
    assert "unknown hyperparameter 'learing_rate'" in result.stderr
    assert "learning_rate" in result.stderr and "Traceback" not in result.stderr
    leftovers = list((tmp_path / "results").rglob("*"))
    assert not leftovers, f"a rejected run must not leave files: {leftovers}"


def test_ill_typed_hyperparameter_is_rejected(tmp_path):
    result = run_cli(["submission.hyperparameters.learning_rate=fast"], tmp_path)
    assert result.returncode == 2
    assert "learning_rate must be a number" in result.stderr


@pytest.mark.slow
def test_run_with_overrides_prints_summary_and_writes_folder(tmp_path):
    result = run_cli(
        [
            "submission=lion",
            "workload=friedman",
            "seed=1",
            "workload.target=30",
            "submission.hyperparameters.learning_rate=3e-4",
            "max_steps=20",
            "workload.eval_every_steps=10",
            "progress=none",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    run_dir = default_run_dir(Path("results"), "lion")
    assert summary.startswith("reached") and summary.endswith(str(run_dir))
    assert "time_to_target" in summary and "steps_to_target 10" in summary
    record = json.loads((tmp_path / run_dir / "record.json").read_text())
    assert record["seed"] == 1
    assert record["hyperparameters"]["learning_rate"] == 3e-4
    assert record["target"]["value"] == 30


@pytest.mark.slow
def test_diverging_run_exits_zero_with_record(tmp_path):
    result = run_cli(
        [
            "workload=digits",
            "submission.hyperparameters.learning_rate=1e3",
            "max_steps=200",
            "progress=none",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("diverged")


@pytest.mark.slow
def test_cfg_job_prints_the_composed_config(tmp_path):
    result = run_cli(["--cfg", "job", "submission=sgd_nesterov"], tmp_path)
    assert result.returncode == 0
    assert "name: sgd_nesterov" in result.stdout and "nesterov: true" in result.stdout
