"""The clock (docs/design.md): evaluation off; data selection, update_params, prepare_for_eval on.

The runner's clock is replaced by a simulated one that advances only when a wrapped function
"takes" time, so every expected value is exact and independent of the machine's load.
"""

from __future__ import annotations

import pytest

from tests.helpers import make_runner

# A fixed budget: scaling it by the machine's speed index (tests/test_measurement.py) is not
# what these tests are about.
FAST = [
    "workload=friedman",
    "submission=adamw",
    "workload.eval_every_steps=2",
    "workload.scale_budget=false",
]
STEPS, EVALS = 8, 4
# Simulated seconds each part of the loop takes.
DATA, UPDATE, PREPARE, EVAL = 0.5, 1.0, 2.0, 10.0


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def read(self) -> float:
        return self.now


def taking(clock: SimulatedClock, seconds: float, method):
    def wrapper(*args, **kwargs):
        clock.now += seconds
        return method(*args, **kwargs)

    return wrapper


def simulated_runner(run_dir, prepare_seconds: float = PREPARE, **settings):
    runner = make_runner(FAST, run_dir, **settings)
    clock = runner.clock = SimulatedClock()
    submission, workload = runner.submission, runner.workload
    submission.data_selection = taking(clock, DATA, submission.data_selection)
    submission.update_params = taking(clock, UPDATE, submission.update_params)
    submission.prepare_for_eval = taking(clock, prepare_seconds, submission.prepare_for_eval)
    workload.eval_model = taking(clock, EVAL, workload.eval_model)
    return runner


def test_submission_time_counts_exactly_the_submission_functions(tmp_path):
    record = simulated_runner(tmp_path / "run", max_steps=STEPS).run()
    assert record.accumulated_submission_time == pytest.approx(
        STEPS * (DATA + UPDATE) + EVALS * PREPARE
    )
    assert record.accumulated_eval_time == pytest.approx(EVALS * EVAL)
    assert record.accumulated_logging_time == pytest.approx(0.0)


def test_slower_evaluation_does_not_change_submission_time(tmp_path):
    fast = simulated_runner(tmp_path / "fast", max_steps=STEPS)
    slow = simulated_runner(tmp_path / "slow", max_steps=STEPS)
    slow.workload.eval_model = taking(slow.clock, 100.0, slow.workload.eval_model)
    fast_record, slow_record = fast.run(), slow.run()
    assert slow_record.accumulated_submission_time == fast_record.accumulated_submission_time
    assert slow_record.accumulated_eval_time > fast_record.accumulated_eval_time


def test_each_row_records_the_clock_at_its_evaluation(tmp_path):
    runner = simulated_runner(tmp_path / "run", max_steps=STEPS)
    runner.run()
    rows = runner.state.eval_measurements
    assert [row["global_step"] for row in rows] == [2, 4, 6, 8]
    for index, row in enumerate(rows, start=1):
        steps = 2 * index
        assert row["accumulated_submission_time"] == pytest.approx(
            steps * (DATA + UPDATE) + index * PREPARE
        )
        assert row["accumulated_eval_time"] == pytest.approx(index * EVAL)


@pytest.mark.parametrize("stop_at_target", [True, False])
def test_time_to_target_is_submission_time_at_first_reaching_eval(tmp_path, stop_at_target):
    runner = simulated_runner(tmp_path / "run", max_steps=STEPS, stop_at_target=stop_at_target)
    runner.workload.validation_target_value = 1000.0  # any MSE reaches it at the first eval
    record = runner.run()
    assert record.status == "reached"
    assert record.steps_to_target == 2
    assert record.time_to_target == pytest.approx(2 * (DATA + UPDATE) + PREPARE)
    assert record.global_step == (2 if stop_at_target else STEPS)


def test_budget_stops_the_run_and_misses_are_infinite(tmp_path):
    runner = simulated_runner(tmp_path / "run", budget_sec=6.0)
    runner.workload.validation_target_value = 0.0  # MSE 0 is unreachable (noise sigma 1)
    record = runner.run()
    assert record.status == "not_reached"
    assert record.time_to_target is None and record.steps_to_target is None
    # Step 2 and its evaluation end at 2 * 1.5 + 2 = 5 s; step 3 crosses the 6 s budget.
    assert record.global_step == 3


def test_a_target_met_only_after_the_budget_does_not_count(tmp_path):
    # The budget runs out during step 3; the final evaluation there meets the target but is
    # over budget, so the run has not reached it.
    runner = simulated_runner(tmp_path / "run", prepare_seconds=0.0, budget_sec=4.0)
    runner.workload.eval_every_steps = 100
    runner.workload.validation_target_value = 1000.0
    record = runner.run()
    assert record.global_step == 3
    assert record.status == "not_reached"
