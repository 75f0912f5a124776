"""A run stopped by a signal, or killed outright, resumes to the same result when rerun.

SIGTERM (and the time-limit signals): checkpoint at the next step boundary, exit 3, resume
from there. SIGKILL cannot be caught: the rerun resumes from the last evaluation checkpoint.
Either way the rerun ends with the same steps-to-target and evaluation values as a run that was
never interrupted, and counts the interruption in preemption_count.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from harness import preemption, results
from tests.helpers import (
    PREEMPTIBLE,
    assert_same_result,
    checkpoint_step,
    checkpointed_record,
    default_run_dir,
    read_csv,
    run_cli,
    run_in_process,
    start_cli,
)

WAIT_SECONDS = 240  # the machine may be shared and slow: generous, but never endless


def wait_for_checkpoint(run_dir: Path, process: subprocess.Popen) -> results.RunRecord:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        record = checkpointed_record(run_dir)
        if record:
            return record
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted:\n{process.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"no checkpoint in {run_dir} after {WAIT_SECONDS}s")


@pytest.mark.slow
def test_sigterm_checkpoints_at_the_next_step_and_the_rerun_ends_the_same(tmp_path, uninterrupted):
    run_dir = default_run_dir(tmp_path / "results")
    process = start_cli(PREEMPTIBLE, tmp_path)
    wait_for_checkpoint(run_dir, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
    output = stdout + stderr
    assert process.returncode == 3, output
    assert "Run the same command again to resume" in stderr and "Traceback" not in output

    stopped = results.load_record(run_dir)
    assert stopped.status == "running"
    # The checkpoint was written when the signal was honoured, at a step boundary: the record
    # written with it names the same step (an evaluation checkpoint would be a multiple of 100).
    assert checkpoint_step(run_dir) == stopped.global_step >= 100
    assert f"stopped by signal SIGTERM at step {stopped.global_step}" in output

    resumed = run_cli(PREEMPTIBLE, tmp_path, timeout=WAIT_SECONDS)
    assert resumed.returncode == 0, resumed.stderr
    assert results.load_record(run_dir).preemption_count == 1
    assert_same_result(run_dir, uninterrupted)


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_from_the_last_evaluation(tmp_path, uninterrupted):
    run_dir = default_run_dir(tmp_path / "results")
    process = start_cli(PREEMPTIBLE, tmp_path)
    wait_for_checkpoint(run_dir, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == -signal.SIGKILL

    killed = results.load_record(run_dir)
    assert killed.status == "running"  # nothing could be written after the kill
    assert checkpoint_step(run_dir) % 100 == 0  # the last evaluation's checkpoint

    resumed = run_cli(PREEMPTIBLE, tmp_path, timeout=WAIT_SECONDS)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint" in resumed.stdout + resumed.stderr
    record = results.load_record(run_dir)
    assert record.preemption_count == 1
    rows = read_csv(run_dir / results.EVAL_FILE)
    assert [int(row["preemption_count"]) for row in rows][-1] == 1
    assert_same_result(run_dir, uninterrupted)


def test_signal_goes_to_the_displaced_handler_only_after_the_checkpoint():
    """Under submitit, its handler requeues the job: ours must run first, then hand over."""
    received: list[int] = []

    def submitit_like_handler(signum, frame):
        received.append(signum)

    previous = signal.signal(signal.SIGUSR2, submitit_like_handler)
    try:
        with preemption.signals_checkpoint():
            os.kill(os.getpid(), signal.SIGUSR2)
            assert preemption.requested() == signal.SIGUSR2
            assert received == [], "the displaced handler ran before the checkpoint"
            preemption.hand_over(signal.SIGUSR2)
            assert received == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is submitit_like_handler
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_default_signal_action_is_not_handed_over():
    """Outside submitit nothing was installed before: hand_over must not kill the process."""
    with preemption.signals_checkpoint():
        assert preemption.previous_handler(signal.SIGTERM) is None
        preemption.hand_over(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_handler_that_declines_to_requeue_leaves_the_run_resumable(tmp_path):
    """submitit's handler raises once a job is out of requeues: the run is interrupted, not
    failed, so its record stays `running` beside its checkpoint and a rerun resumes it."""
    declined: list[int] = []

    def out_of_requeues(signum, frame):
        declined.append(signum)
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    results_dir = tmp_path / "results"
    run_dir = default_run_dir(results_dir)

    def signal_after_first_checkpoint():
        deadline = time.monotonic() + WAIT_SECONDS
        while not (run_dir / results.CHECKPOINT_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, out_of_requeues)
    threads = torch.get_num_threads()
    sender = threading.Thread(target=signal_after_first_checkpoint)
    try:
        sender.start()
        with pytest.raises(preemption.Preempted):
            run_in_process(PREEMPTIBLE, results_dir)
    finally:
        sender.join()
        signal.signal(signal.SIGUSR2, previous)
        torch.set_num_threads(threads)
    assert declined == [signal.SIGUSR2]
    record = results.load_record(run_dir)
    assert record.status == "running" and record.error is None
    assert checkpoint_step(run_dir) == record.global_step >= 100
