"""Sweeps through a real Slurm cluster (the single-node one from slurm/up.sh; no mocked sbatch).

A sweep becomes a job array; a task that crashes on purpose leaves the others running and its
record holds the error; running the sweep again submits nothing that finished; a run requeued in
mid-run (`scontrol requeue`), or signalled before its time limit (SIGUSR2, submitit's requeue),
ends with the same steps-to-target and evaluation values as an uninterrupted run; a task
cancelled outright is reported instead of being waited for forever; a job of 2 tasks
(`hydra.launcher.tasks_per_node=2`) is one run, data-parallel over 2 processes.

The module's fixture starts the local cluster if it is not running, and stops it afterwards
only if it started it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness import results
from tests.helpers import (
    PREEMPTIBLE,
    ROOT,
    assert_hyperparameters_match,
    assert_same_result,
    checkpoint_step,
    checkpointed_record,
    default_run_dir,
    expected_hyperparameters,
    read_csv,
    run_cli,
    run_in_process,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
WAIT_SECONDS = 300  # a shared, loaded machine can be slow; every wait still has an end
REVOKED_CREDENTIAL_SECONDS = 2  # see `interrupt`


def slurm(*command: str) -> str:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


def cluster_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    state = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%t"], capture_output=True, text=True
    )
    return state.returncode == 0 and state.stdout.split()[:1] in (["idle"], ["mix"], ["alloc"])


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    started = False
    if not cluster_is_up():
        up = subprocess.run(
            ["bash", str(ROOT / "slurm" / "up.sh")],
            capture_output=True,
            text=True,
            timeout=900,  # a first start installs Debian's packages
            stdin=subprocess.DEVNULL,
        )
        assert up.returncode == 0, f"slurm/up.sh failed:\n{up.stdout}\n{up.stderr}"
        started = True
    yield
    if started:
        subprocess.run(["bash", str(ROOT / "slurm" / "down.sh")], timeout=120, check=False)


def job_state(job_id: str) -> str:
    return slurm("squeue", "--noheader", "--states=all", "--format=%T", f"--jobs={job_id}")


def wait_for(condition, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"the sweep ended while waiting for {what}:\n{log.read_text()}")
        time.sleep(0.1)
    pytest.fail(f"waited {WAIT_SECONDS}s for {what}:\n{log.read_text()}")


def start_sweep(args: list[str], cwd: Path) -> tuple[subprocess.Popen, Path]:
    log = cwd / "sweep.log"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, log


# -- a sweep, a crash, a rerun --------------------------------------------------------------------
SWEEP = [
    "-m",
    "hydra/launcher=slurm",
    "ruleset=external",
    "submission=adamw",
    "workload=friedman,digits",
    "study=0",
    "trial=0,1",
    "submission.batch_size=2000",  # larger than digits' training set: those tasks crash
    "max_steps=20",
    "workload.eval_every_steps=10",
    "progress=none",
]


def test_sweep_as_a_job_array_with_a_crashing_task_then_rerun(tmp_path):
    first = run_cli(SWEEP, tmp_path, timeout=WAIT_SECONDS)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert "sweep: 4 tasks, 0 of them already finished" in output
    assert "sweep: 2/4 done, 0 running, 2 failed, 0 pending" in output

    def run_dir(workload: str, trial: int) -> Path:
        return default_run_dir(tmp_path / "results", "adamw", workload, 0, trial, "external")

    job_ids = set()
    for trial in (0, 1):
        finished = results.load_record(run_dir("friedman", trial))
        assert finished.finished
        job_ids.add(finished.slurm_job_id)
        written = results.read_json(run_dir("friedman", trial) / results.HPARAMS_FILE)
        assert_hyperparameters_match(written, expected_hyperparameters("adamw", 0, trial))
        crashed = results.load_record(run_dir("digits", trial))
        assert crashed.status == "failed" and "batch size 2000 exceeds" in crashed.error
    assert None not in job_ids and len(job_ids) == 2, "each task is its own Slurm job"
    assert not list((tmp_path / "results").rglob("*.pkl")), "results/ must hold no pickle"
    assert list((tmp_path / ".slurm" / "submitit").rglob("*.pkl"))

    done = {t: (run_dir("friedman", t) / results.RECORD_FILE).read_text() for t in (0, 1)}
    again = run_cli(SWEEP, tmp_path, timeout=WAIT_SECONDS)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "sweep: 4 tasks, 2 of them already finished (not submitted)" in output
    for trial, text in done.items():
        assert (run_dir("friedman", trial) / results.RECORD_FILE).read_text() == text


# -- preemption -----------------------------------------------------------------------------------
def interrupt(run_dir: Path, signal_job, process, log) -> dict:
    """Interrupt the run after its first evaluation checkpoint; once Slurm holds the requeued
    job, check the checkpoint and let the job start again (Slurm would wait ~2 minutes)."""
    record = wait_for(
        lambda: checkpointed_record(run_dir), f"a checkpoint in {run_dir}", process, log
    )
    job_id = record.slurm_job_id
    signal_job(job_id)
    wait_for(lambda: job_state(job_id) == "PENDING", f"job {job_id} requeued", process, log)
    stopped = {"record": results.load_record(run_dir), "checkpoint_step": checkpoint_step(run_dir)}
    # slurmd refuses to start a job again within the second its credential was revoked (the
    # kill of the requeue): "Killing non-startable batch job: Job credential revoked", and the
    # job ends FAILED. Slurm's own ~2 minute hold avoids that; a release a moment later does too.
    time.sleep(REVOKED_CREDENTIAL_SECONDS)
    slurm("scontrol", "update", f"JobId={job_id}", "StartTime=now")
    return stopped


def submitit_logs(cwd: Path) -> str:
    return "".join(path.read_text() for path in (cwd / ".slurm").rglob("*_log.*"))


def test_requeued_and_signalled_runs_end_like_an_uninterrupted_run(tmp_path):
    args = ["-m", "hydra/launcher=slurm", "experiment_name=reference,requeued,signalled"]
    process, log = start_sweep([*args, *PREEMPTIBLE], tmp_path)
    try:
        reference, requeued, signalled = (
            default_run_dir(tmp_path / "results", experiment=name)
            for name in ("reference", "requeued", "signalled")
        )
        by_requeue = interrupt(
            requeued, lambda job: slurm("scontrol", "requeue", job), process, log
        )
        # What Slurm sends before the time limit (--signal=USR2@signal_delay_s), sent now.
        by_signal = interrupt(
            signalled, lambda job: slurm("scancel", "--signal=USR2", job), process, log
        )
        process.wait(timeout=WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode == 0, output
    assert "sweep: 3/3 done, 0 running, 0 failed, 0 pending" in output

    for stopped in (by_requeue, by_signal):
        # Checkpointed at the step boundary after the signal, not only at the last evaluation.
        assert stopped["record"].status == "running"
        assert stopped["checkpoint_step"] == stopped["record"].global_step >= 100
    logs = submitit_logs(tmp_path)
    step = by_requeue["record"].global_step
    assert f"stopped by signal SIGTERM at step {step}" in logs
    step = by_signal["record"].global_step
    assert f"stopped by signal SIGUSR2 at step {step}" in logs
    assert "Requeued job" in logs, "submitit's own handler must still requeue the job"

    for run_dir in (requeued, signalled):
        assert results.load_record(run_dir).preemption_count == 1
        assert_same_result(run_dir, reference)
    assert results.load_record(reference).preemption_count == 0


def test_a_cancelled_task_is_reported_not_waited_for(tmp_path):
    """No sacct on the local cluster: the launcher learns from squeue that the job is gone."""
    process, log = start_sweep(["-m", "hydra/launcher=slurm", *PREEMPTIBLE], tmp_path)
    try:
        run_dir = default_run_dir(tmp_path / "results")
        record = wait_for(lambda: checkpointed_record(run_dir), "a checkpoint", process, log)
        slurm("scancel", record.slurm_job_id)
        process.wait(timeout=WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode == 1, output
    assert "ended without a result (state CANCELLED)" in output and "Traceback" not in output
    assert "1 of 1 tasks ended without a result" in output
    assert str(run_dir.relative_to(tmp_path)) in output
    # The cancelled run checkpointed on SIGTERM: running the sweep again resumes it.
    assert results.load_record(run_dir).status == "running"
    assert (run_dir / results.CHECKPOINT_FILE).exists()


# -- a data-parallel run: one job of 2 tasks ------------------------------------------------------
DATA_PARALLEL = ["workload=friedman", "max_steps=40", "workload.eval_every_steps=20"]
DATA_PARALLEL += ["threads=1", "workload.scale_budget=false", "progress=none"]


def test_a_two_task_job_is_one_data_parallel_run(tmp_path):
    args = ["-m", "hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2", *DATA_PARALLEL]
    sweep = run_cli(args, tmp_path, timeout=WAIT_SECONDS)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    run_dir = default_run_dir(tmp_path / "results")
    record = results.load_record(run_dir)
    assert (record.status, record.global_step) == ("not_reached", 40)
    assert (record.world_size, record.backend) == (2, "gloo")
    assert record.hardware.endswith(" x2 processes")
    job = record.slurm_job_id
    task_logs = sorted(p.name for p in (tmp_path / ".slurm").rglob(f"{job}_*_log.out"))
    assert task_logs == [f"{job}_0_log.out", f"{job}_1_log.out"], "one job, two tasks"

    # The same run in one process: the same evaluations, up to float rounding.
    threads = torch.get_num_threads()
    try:
        one = run_in_process(DATA_PARALLEL, tmp_path / "one")
    finally:
        torch.set_num_threads(threads)
    rows = read_csv(run_dir / results.EVAL_FILE)
    reference = read_csv(default_run_dir(tmp_path / "one") / results.EVAL_FILE)
    assert one.global_step == 40 and len(rows) == len(reference) == 2
    for row, expected in zip(rows, reference, strict=True):
        for key in ("train/loss", "validation/loss", "validation/mse"):
            assert float(row[key]) == pytest.approx(float(expected[key]), rel=1e-3), key
