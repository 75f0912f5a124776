"""Determinism, divergence, failures, resume, and the exact results files of a run."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from harness import preemption, results
from tests.helpers import SMOKE, make_runner, read_csv, run_dir_of, run_in_process

TIME_COLUMNS = {
    "accumulated_submission_time",
    "accumulated_eval_time",
    "accumulated_logging_time",
    *results.MEASUREMENT_COLUMNS,  # readings of the machine, not of the training
}


def measurements_without_time(rows):
    return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in rows]


# Evaluation is most of a short run on the character model; a smaller one is the same code path.
SMALLER_EVALUATION = {"shakespeare": ["workload.eval_tokens=4096"]}


@pytest.mark.parametrize(
    "workload, target",
    [
        ("digits", 0.12),
        ("friedman", 24.0),
        pytest.param("shakespeare", 3.5, marks=pytest.mark.slow),
    ],
)
def test_same_seed_same_steps_and_metrics(tmp_path, workload, target):
    overrides = [
        f"workload={workload}",
        *SMALLER_EVALUATION.get(workload, []),
        f"workload.target={target}",
        "max_steps=24",
        "workload.eval_every_steps=4",
        "progress=none",
        "seed=7",
    ]
    first = run_in_process([*overrides, "experiment_name=a"], tmp_path)
    second = run_in_process([*overrides, "experiment_name=b"], tmp_path)
    assert first.status == second.status == "reached"
    assert first.steps_to_target == second.steps_to_target
    rows = [read_csv(run_dir_of(r, tmp_path) / results.EVAL_FILE) for r in (first, second)]
    assert measurements_without_time(rows[0]) == measurements_without_time(rows[1])
    hparams = [
        (run_dir_of(r, tmp_path) / results.HPARAMS_FILE).read_text() for r in (first, second)
    ]
    assert hparams[0] == hparams[1]

    other_seed = run_in_process([*overrides, "experiment_name=c", "seed=8"], tmp_path)
    other = read_csv(run_dir_of(other_seed, tmp_path) / results.EVAL_FILE)
    assert measurements_without_time(other) != measurements_without_time(rows[0])


def test_results_files_and_columns(results_dir):
    record = run_in_process(["workload=digits", *SMOKE, "keep_checkpoint=true"], results_dir)
    run_dir = run_dir_of(record, results_dir)
    header = (run_dir / results.EVAL_FILE).read_text().splitlines()[0].split(",")
    assert header == [
        "global_step",
        "accumulated_submission_time",
        "accumulated_eval_time",
        "accumulated_logging_time",
        "preemption_count",
        "speed_index",
        "cpu_other_share",
        "cpu_steal_share",
        "train/accuracy",
        "train/loss",
        "validation/accuracy",
        "validation/loss",
    ]
    saved = json.loads((run_dir / results.RECORD_FILE).read_text())
    for key in (
        "status",
        "reached",
        "time_to_target",
        "steps_to_target",
        "target",
        "hardware",
        "packages",
        "git_commit",
        "seed",
        "wall_time_sec",
        "error",
        "hyperparameters",
        "ruleset",
        "record_format",
    ):
        assert key in saved, key
    assert saved["record_format"] == results.RECORD_FORMAT
    assert saved["target"] == {
        "metric": "validation/accuracy",
        "value": 0.99,
        "lower_is_better": False,
    }
    assert saved["ruleset"] == {
        "name": "fixed",
        "tune": False,
        "budget_factor": 1.0,
        "num_studies": None,
        "num_trials": 1,
    }
    assert json.loads((run_dir / results.HPARAMS_FILE).read_text()) == saved["hyperparameters"]
    assert (
        "_target_: workloads.image_classification.digits.DigitsWorkload"
        in (run_dir / results.CONFIG_FILE).read_text()
    )
    checkpoint = torch.load(run_dir / results.CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["train_state"]["global_step"] == 6
    assert not list(run_dir.glob(".*.tmp")), "temporary files left behind"


def test_checkpoint_removed_after_a_finished_run_by_default(results_dir):
    record = run_in_process(["workload=friedman", *SMOKE], results_dir)
    assert not (run_dir_of(record, results_dir) / results.CHECKPOINT_FILE).exists()


def test_divergence_is_recorded(results_dir):
    overrides = [
        "workload=digits",
        "submission.hyperparameters.learning_rate=1e3",
        "max_steps=200",
        "progress=none",
    ]
    record = run_in_process(overrides, results_dir)
    assert record.status == "diverged"
    assert record.time_to_target is None and record.steps_to_target is None
    assert record.global_step < 200
    saved = results.read_record(run_dir_of(record, results_dir))
    assert saved.status == "diverged"


def test_nan_loss_is_divergence(results_dir):
    overrides = [
        "workload=friedman",
        "submission=sgd",
        "submission.hyperparameters.learning_rate=1e6",
        "divergence_factor=1e30",
        "max_steps=100",
        "progress=none",
    ]
    record = run_in_process(overrides, results_dir)
    assert record.status == "diverged"


def test_crashing_run_records_failure(results_dir):
    overrides = ["workload=digits", "submission.batch_size=100000", *SMOKE]
    record = run_in_process(overrides, results_dir)
    assert record.status == "failed"
    assert "batch size 100000 exceeds" in record.error
    assert results.load_record(run_dir_of(record, results_dir)).status == "failed"


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["digits", "shakespeare"])
def test_resumed_run_matches_uninterrupted(tmp_path, monkeypatch, workload):
    overrides = [
        f"workload={workload}",
        *SMALLER_EVALUATION.get(workload, []),
        "workload.eval_every_steps=4",
        "submission=adamw",
    ]
    reference = make_runner(overrides, tmp_path / "reference", max_steps=16)
    reference.run()

    interrupted = make_runner(overrides, tmp_path / "interrupted", max_steps=16)
    stop_at = {"step": 10}

    def fake_signal():
        return signal.SIGTERM if interrupted.state.global_step == stop_at["step"] else None

    monkeypatch.setattr(preemption, "requested", fake_signal)
    with pytest.raises(preemption.Preempted):
        interrupted.run()
    assert results.load_record(tmp_path / "interrupted").status == "running"
    monkeypatch.setattr(preemption, "requested", lambda: None)

    checkpoint = results.load_checkpoint(tmp_path / "interrupted" / results.CHECKPOINT_FILE)
    resumed = make_runner(overrides, tmp_path / "interrupted", checkpoint, max_steps=16)
    record = resumed.run()
    assert record.preemption_count == 1
    expected = measurements_without_time(reference.state.eval_measurements)
    got = measurements_without_time(resumed.state.eval_measurements)
    for row in got:
        row.pop("preemption_count")
    for row in expected:
        row.pop("preemption_count")
    assert got == expected
    for a, b in zip(
        reference.state.eval_measurements, resumed.state.eval_measurements, strict=True
    ):
        assert a["global_step"] == b["global_step"]
