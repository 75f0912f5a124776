"""The clock (DESIGN §5): evaluation off, prepare_for_eval and data selection on."""

from __future__ import annotations

import time

import pytest

from tests.helpers import make_runner

FAST = ["workload=friedman", "submission=adamw", "workload.eval_every_steps=2"]
STEPS, EVALS = 8, 4
SLEEP = 0.25


def slow(method, seconds):
    def wrapper(*args, **kwargs):
        time.sleep(seconds)
        return method(*args, **kwargs)

    return wrapper


def test_evaluation_is_off_the_clock(tmp_path):
    fast = make_runner(FAST, tmp_path / "fast", max_steps=STEPS)
    fast_record = fast.run()
    slow_runner = make_runner(FAST, tmp_path / "slow", max_steps=STEPS)
    slow_runner.workload.eval_model = slow(slow_runner.workload.eval_model, SLEEP)
    slow_record = slow_runner.run()

    assert slow_record["accumulated_eval_time"] >= EVALS * SLEEP
    growth = slow_record["accumulated_submission_time"] - fast_record["accumulated_submission_time"]
    assert growth < 0.5 * EVALS * SLEEP, f"submission time grew by {growth:.3f}s with slow eval"


def test_prepare_for_eval_is_on_the_clock(tmp_path):
    runner = make_runner(FAST, tmp_path / "run", max_steps=STEPS)
    runner.submission.prepare_for_eval = slow(runner.submission.prepare_for_eval, SLEEP)
    record = runner.run()
    assert record["accumulated_submission_time"] >= EVALS * SLEEP
    assert record["accumulated_eval_time"] < EVALS * SLEEP


def test_data_selection_is_on_the_clock(tmp_path):
    runner = make_runner(FAST, tmp_path / "run", max_steps=STEPS)
    runner.submission.data_selection = slow(runner.submission.data_selection, 0.05)
    record = runner.run()
    assert record["accumulated_submission_time"] >= STEPS * 0.05


@pytest.mark.parametrize("stop_at_target", [True, False])
def test_time_to_target_is_submission_time_at_first_reaching_eval(tmp_path, stop_at_target):
    overrides = [*FAST, "workload.target=1000.0"]  # any MSE reaches it at the first evaluation
    runner = make_runner(
        overrides, tmp_path / "run", max_steps=STEPS, stop_at_target=stop_at_target
    )
    record = runner.run()
    first = runner.state.eval_measurements[0]
    assert record["status"] == "reached"
    assert record["steps_to_target"] == 2
    assert record["time_to_target"] == first["accumulated_submission_time"]
    assert record["global_step"] == (2 if stop_at_target else STEPS)


def test_budget_stops_the_run_and_misses_are_infinite(tmp_path):
    overrides = [*FAST, "workload.target=0.0"]  # MSE 0 is unreachable (noise sigma 1)
    record = make_runner(overrides, tmp_path / "run", budget_sec=0.3).run()
    assert record["status"] == "not_reached"
    assert record["time_to_target"] is None and record["steps_to_target"] is None
    assert record["accumulated_submission_time"] >= 0.3
