"""Faults a results folder meets, and the promise kept through each: no finished result is ever
lost, none goes stale, none is silently dropped (docs/design.md, "Failure behaviour").

Every scenario asserts the status it expects and that every finished result written before the
fault is byte for byte where it was (or, replaced on purpose, kept in the run's .replaced/).
The wandb case (the logger gets a trial's sampled hyperparameters) is in tests/test_wandb.py,
beside the reader of wandb's offline files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from harness import launch, lifecycle, results
from harness.errors import UserError
from harness.report import cli as report
from tests.helpers import (
    PREEMPTIBLE,
    ROOT,
    assert_same_result,
    checkpointed_record,
    cli_environment,
    compose_config,
    default_run_dir,
    read_csv,
    run_cli,
    run_in_process,
    start_cli,
)

# A run that reaches its (easy) target at its first evaluation: seconds, every file written.
TINY = [
    "workload=friedman",
    "workload.num_train=4096",
    "workload.num_validation=2048",
    "threads=1",
    "max_steps=20",
    "workload.eval_every_steps=10",
    "workload.target=100",
    "progress=none",
]
WAIT_SECONDS = 240


def finished_results(root: Path) -> dict[str, bytes]:
    """Every file of every finished run under `root` (hidden folders aside), by path."""
    found = {}
    for run_dir in results.find_run_dirs(root):
        record = results.read_record(run_dir)
        if record is not None and record.finished:
            for name in lifecycle.RESULT_FILES:
                if (run_dir / name).exists():
                    found[str(run_dir / name)] = (run_dir / name).read_bytes()
    return found


def assert_kept(before: dict[str, bytes]) -> None:
    """Each finished result of `before` is still there, byte for byte."""
    for path, data in before.items():
        assert Path(path).read_bytes() == data, f"{path} changed or vanished"


def replaced_copies(run_dir: Path) -> list[Path]:
    return sorted((run_dir / lifecycle.REPLACED_DIR).glob("*"))


# -- a. every run counts --------------------------------------------------------------------------
def test_a_run_that_diverges_before_its_first_evaluation_is_a_miss_in_its_study(tmp_path, capsys):
    results_dir = tmp_path / "results"
    base = [
        "workload=friedman",
        "threads=1",
        "max_steps=200",
        "workload.target=1.5",
        "workload.eval_every_steps=100",
        "progress=none",
    ]
    for study, lr in ((0, 0.003), (1, 1e10), (2, 0.003)):
        lr_override = f"submission.hyperparameters.learning_rate={lr}"
        record = run_in_process([*base, f"study={study}", lr_override], results_dir)
        assert record.status == ("diverged" if study == 1 else "reached")
    diverged = default_run_dir(results_dir, study=1)
    assert not (diverged / results.EVAL_FILE).exists(), "it must end before any evaluation"
    assert report.main([str(results_dir), "--no-figures", "--resamples", "20"]) == 0
    cell = pd.read_csv(results_dir / "report" / "time_to_target.csv").iloc[0]
    assert cell["studies"] == 3 and cell["studies_reached"] == 2 and cell["runs_diverged"] == 1
    assert "inf" in cell["study_times"]
    markdown = (results_dir / "report" / "leaderboard.md").read_text()
    assert "adamw on friedman: 1 diverged run(s), each counted as not reached" in markdown


# -- b. a finished result is never removed by a new attempt ----------------------------------------
def test_an_invalid_rerun_leaves_the_finished_result_untouched(results_dir):
    run_in_process(TINY, results_dir)
    before = finished_results(results_dir)
    # A value the optimizer refuses: refused before the folder is looked at, force or not.
    bad = [*TINY, "submission.hyperparameters.learning_rate=-0.01"]
    for force in ("force=false", "force=true"):
        with pytest.raises(UserError, match=re.escape("refuses learning_rate=-0.01")):
            run_in_process([*bad, force], results_dir)
        assert_kept(before)
    # A valid change without force=true: refused, naming what changed.
    other = [*TINY, "submission.hyperparameters.learning_rate=0.001"]
    with pytest.raises(lifecycle.SettingsChanged, match=re.escape("learning_rate: 0.003 -> 0.001")):
        run_in_process(other, results_dir)
    assert_kept(before)
    # A replacement that fails only once running (a batch larger than the data) fails beside it,
    # in .attempt/, and the finished result stays in place.
    record = run_in_process([*TINY, "submission.batch_size=100000", "force=true"], results_dir)
    assert record.status == "failed"
    assert_kept(before)
    assert results.load_record(default_run_dir(results_dir)).status == "reached"


def test_a_replacement_takes_the_place_only_once_finished_and_the_earlier_is_kept(results_dir):
    run_in_process(TINY, results_dir)
    run_dir = default_run_dir(results_dir)
    before = (run_dir / results.RECORD_FILE).read_bytes()
    record = run_in_process([*TINY, "workload.target=50", "force=true"], results_dir)
    assert record.status == "reached" and record.target.value == 50
    assert results.load_record(run_dir).target.value == 50
    (kept,) = replaced_copies(run_dir)
    assert (kept / results.RECORD_FILE).read_bytes() == before
    assert not (run_dir / lifecycle.ATTEMPT_DIR).exists()


def test_an_interrupted_promotion_is_completed_at_the_next_start(results_dir):
    run_in_process(TINY, results_dir)
    run_dir = default_run_dir(results_dir)
    first = (run_dir / results.RECORD_FILE).read_bytes()
    # A finished replacement that was killed before it was moved into place.
    staged = run_dir / lifecycle.ATTEMPT_DIR
    shutil.copytree(run_dir, staged, ignore=shutil.ignore_patterns(".*"))
    record = json.loads((staged / results.RECORD_FILE).read_text())
    (staged / results.RECORD_FILE).write_text(json.dumps({**record, "global_step": 12345}))
    run_in_process(TINY, results_dir)  # a sweep would now skip it; a single run reruns it
    assert any(
        (kept / results.RECORD_FILE).read_bytes() == first for kept in replaced_copies(run_dir)
    )


# -- c. an interrupted run's checkpoint is never thrown away --------------------------------------
def interrupted_run(results_dir: Path, overrides: list[str]) -> Path:
    """A run that stopped after its last checkpoint, before its final record (as a kill does)."""
    run_in_process([*overrides, "keep_checkpoint=true", "stop_at_target=false"], results_dir)
    run_dir = default_run_dir(results_dir)
    record = json.loads((run_dir / results.RECORD_FILE).read_text())
    (run_dir / results.RECORD_FILE).write_text(json.dumps({**record, "status": "running"}))
    return run_dir


def test_other_settings_never_touch_an_interrupted_run_and_force_moves_it_aside(results_dir):
    run_dir = interrupted_run(results_dir, TINY)
    files = {n: (run_dir / n).read_bytes() for n in (*lifecycle.RESULT_FILES, "checkpoint.pt")}
    with pytest.raises(lifecycle.SettingsChanged, match=re.escape("workload.target: 100 -> 90")):
        run_in_process([*TINY, "workload.target=90", "stop_at_target=false"], results_dir)
    assert {n: (run_dir / n).read_bytes() for n in files} == files
    record = run_in_process([*TINY, "workload.target=90", "force=true"], results_dir)
    assert record.status == "reached" and record.preemption_count == 0  # started over
    (kept,) = replaced_copies(run_dir)
    assert (kept / results.CHECKPOINT_FILE).read_bytes() == files["checkpoint.pt"]


@pytest.mark.parametrize("damage", ["empty", "failed"])
def test_a_checkpoint_of_this_run_resumes_it_whatever_its_record_says(results_dir, damage):
    run_dir = interrupted_run(results_dir, TINY)
    if damage == "empty":
        (run_dir / results.RECORD_FILE).write_text("")
    else:
        record = json.loads((run_dir / results.RECORD_FILE).read_text())
        (run_dir / results.RECORD_FILE).write_text(json.dumps({**record, "status": "failed"}))
    record = run_in_process([*TINY, "stop_at_target=false"], results_dir)
    assert record.status == "reached" and record.preemption_count == 1  # resumed
    assert record.global_step == 20


# -- d. changed settings are never skipped or replaced silently -----------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["serial", "local"])
def test_a_sweep_over_runs_of_other_settings_stops_before_launching(tmp_path, launcher):
    sweep = ["-m", f"hydra/launcher={launcher}", "study=0,1", *TINY]
    first = run_cli(sweep, tmp_path)
    assert first.returncode == 0, first.stderr
    before = finished_results(tmp_path / "results")
    assert len(before) == 2 * len(lifecycle.RESULT_FILES)

    changed = run_cli([*sweep, "workload.target=50"], tmp_path)
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "2 run(s) of this sweep already hold results" in changed.stderr
    assert "workload.target: 100 -> 50" in changed.stderr and "force=true" in changed.stderr
    assert "Traceback" not in changed.stderr
    assert_kept(before)

    if launcher == "local":
        return  # forcing works the same through either launcher: once is enough
    forced = run_cli([*sweep, "workload.target=50", "force=true"], tmp_path)
    assert forced.returncode == 0, forced.stderr
    for study in (0, 1):
        run_dir = default_run_dir(tmp_path / "results", study=study)
        assert results.load_record(run_dir).target.value == 50
        assert len(replaced_copies(run_dir)) == 1


def test_a_single_run_over_a_run_of_other_settings_is_refused(results_dir):
    run_in_process(TINY, results_dir)
    before = finished_results(results_dir)
    with pytest.raises(lifecycle.SettingsChanged, match=re.escape("workload.target: 100 -> 95")):
        run_in_process([*TINY, "workload.target=95"], results_dir)
    assert_kept(before)


def test_the_same_settings_are_skipped_in_a_sweep_and_presentation_keys_do_not_count(results_dir):
    run_in_process(TINY, results_dir)
    before = finished_results(results_dir)
    cfg = compose_config([*TINY, "progress=log", "keep_checkpoint=true"], results_dir)
    run_dir = default_run_dir(results_dir)
    assert launch.preflight(cfg, run_dir) == ("done", None)
    cfg = compose_config([*TINY, "threads=2"], results_dir)
    state, what = launch.preflight(cfg, run_dir)
    assert state == "conflict" and what == "threads: 1 -> 2"
    assert_kept(before)


# -- e. one process per run folder ---------------------------------------------------------------
def test_a_second_process_on_a_run_exits_2_naming_the_holder(tmp_path):
    run_dir = default_run_dir(tmp_path / "results")
    with lifecycle.RunLock(run_dir):
        result = run_cli(TINY, tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"pid {os.getpid()}" in result.stderr and "in use by another process" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (run_dir / results.RECORD_FILE).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    run_dir = default_run_dir(tmp_path / "results")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from harness.lifecycle import RunLock; "
            f"lock = RunLock({str(run_dir)!r}).__enter__(); print('locked', flush=True); "
            "time.sleep(600)",
        ],
        env=cli_environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert "pid" in (run_dir / lifecycle.LOCK_FILE).read_text()  # the dead holder's note
    record = run_in_process(TINY, tmp_path / "results")
    assert record.status == "reached"


# -- f. leftovers of interrupted writes ----------------------------------------------------------
def test_temporary_files_of_interrupted_writes_are_removed_at_the_next_start(results_dir):
    run_dir = interrupted_run(results_dir, TINY)
    leftovers = [run_dir / ".checkpoint.pt.k2j3.tmp", run_dir / ".record.json.x9.tmp"]
    for path in leftovers:
        path.write_bytes(b"\0" * 1_600_000)
    run_in_process([*TINY, "stop_at_target=false"], results_dir)
    assert not any(path.exists() for path in leftovers)
    assert not list(run_dir.glob(".*.tmp"))


# -- h. a record that lacks what scoring needs ---------------------------------------------------
def test_a_record_without_a_target_is_skipped_with_its_reason(results_dir, capsys):
    record = run_in_process(TINY, results_dir)
    other = run_in_process([*TINY, "submission=lion"], results_dir)
    run_dir = default_run_dir(results_dir)
    data = json.loads((run_dir / results.RECORD_FILE).read_text())
    del data["target"]
    (run_dir / results.RECORD_FILE).write_text(json.dumps(data))
    assert report.main([str(results_dir), "--no-figures", "--resamples", "20"]) == 0
    err = capsys.readouterr().err
    assert f"skipping {run_dir}: record.json has no target" in err
    board = pd.read_csv(results_dir / "report" / "time_to_target.csv")
    assert set(board["workload"]) == {record.workload} == {other.workload}
    assert set(board["submission"]) == {"lion"}


# -- i. effective hyperparameters ----------------------------------------------------------------
def test_records_hold_the_hyperparameters_the_optimizer_gets(results_dir):
    overrides = [*TINY, "+submission.hyperparameters.one_minus_beta1=0.04"]
    record = run_in_process(overrides, results_dir)
    run_dir = default_run_dir(results_dir)
    written = json.loads((run_dir / results.HPARAMS_FILE).read_text())
    assert written == record.hyperparameters
    assert written["beta1"] == pytest.approx(0.96) and "one_minus_beta1" not in written
    workload, submission, hyperparameters = launch.prepare(compose_config(overrides, results_dir))
    model, state = workload.init_model_fn(rng=0)
    optimizer_state = submission.init_optimizer_state(
        workload, model, state, SimpleNamespace(**hyperparameters), rng=0
    )
    (group,) = optimizer_state["optimizers"]["optimizer"].param_groups
    assert group["betas"][0] == pytest.approx(0.96)

    external = run_in_process([*TINY, "ruleset=external", "trial=3"], results_dir)
    point = external.search_point
    assert set(point) == {"learning_rate", "one_minus_beta1", "beta2", "weight_decay"}
    assert external.hyperparameters["beta1"] == pytest.approx(1 - point["one_minus_beta1"])
    assert external.hyperparameters["learning_rate"] == point["learning_rate"]


# -- what already worked, kept working -----------------------------------------------------------
def test_the_same_seed_twice_gives_the_same_result_and_keeps_the_first(results_dir):
    first = run_in_process(TINY, results_dir)
    run_dir = default_run_dir(results_dir)
    first_rows = read_csv(run_dir / results.EVAL_FILE)
    second = run_in_process(TINY, results_dir)  # a single run is rerun, and replaces
    assert second.steps_to_target == first.steps_to_target
    strip = (
        "accumulated_submission_time",
        "accumulated_eval_time",
        "accumulated_logging_time",
        *results.MEASUREMENT_COLUMNS,
    )
    rows = read_csv(run_dir / results.EVAL_FILE)
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows] == [
        {k: v for k, v in r.items() if k not in strip} for r in first_rows
    ]
    (kept,) = replaced_copies(run_dir)
    assert read_csv(kept / results.EVAL_FILE) == first_rows


def wait_until(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{process.stderr.read()}")
        time.sleep(0.02)
    pytest.fail(f"no {what} after {WAIT_SECONDS}s")


def evaluations(run_dir: Path) -> int:
    with contextlib.suppress(OSError):
        return len((run_dir / results.EVAL_FILE).read_text().splitlines()) - 1
    return 0


KILL_POINTS = {  # when to kill: a condition on the run folder
    "early": lambda d: (d / results.RECORD_FILE).exists() and evaluations(d) == 0,
    "after_an_evaluation": lambda d: checkpointed_record(d) is not None,
    "late": lambda d: evaluations(d) >= 7 and (d / results.CHECKPOINT_FILE).exists(),
    "after_the_target": lambda d: (
        (r := results.read_record(d)) is not None and r.time_to_target is not None
    ),
}


KILLS = [  # SIGKILL at every kill point; SIGTERM (checkpoint at the next step) once
    *((when, signal.SIGKILL) for when in KILL_POINTS),
    ("after_an_evaluation", signal.SIGTERM),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "when, signum", KILLS, ids=[f"{w}-{signal.Signals(n).name}" for w, n in KILLS]
)
def test_a_killed_run_resumes_to_the_same_result(tmp_path, uninterrupted, when, signum):
    run_dir = default_run_dir(tmp_path / "results")
    process = start_cli(PREEMPTIBLE, tmp_path)
    wait_until(lambda: KILL_POINTS[when](run_dir), process, f"the kill point {when}")
    process.send_signal(signum)
    process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == (3 if signum == signal.SIGTERM else -signal.SIGKILL)
    assert results.load_record(run_dir).status == "running"
    rerun = run_cli(PREEMPTIBLE, tmp_path, timeout=WAIT_SECONDS)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_result(run_dir, uninterrupted)


def test_a_run_killed_between_its_target_evaluation_and_its_final_record_ends_reached(results_dir):
    """The state such a kill leaves: the checkpoint of the target evaluation beside a record
    that still says running. The rerun trains no further and reports the same time."""
    finished = run_in_process([*TINY, "keep_checkpoint=true"], results_dir)
    run_dir = default_run_dir(results_dir)
    record = json.loads((run_dir / results.RECORD_FILE).read_text())
    (run_dir / results.RECORD_FILE).write_text(json.dumps({**record, "status": "running"}))
    resumed = run_in_process(TINY, results_dir)
    assert resumed.status == "reached" and resumed.global_step == finished.global_step
    assert resumed.time_to_target == finished.time_to_target


@pytest.mark.slow
def test_sixteen_concurrent_runs_in_one_tree_then_the_report(tmp_path):
    processes = [
        start_cli([*TINY, f"submission={s}", f"study={k}"], tmp_path)
        for s in ("adamw", "lion")
        for k in range(8)
    ]
    for process in processes:
        _, err = process.communicate(timeout=2 * WAIT_SECONDS)
        assert process.returncode == 0, err
    done = subprocess.run(
        [sys.executable, "-m", "harness.report", str(tmp_path / "results"), "--no-figures"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    assert "skipping" not in done.stderr
    cells = pd.read_csv(tmp_path / "results" / "report" / "time_to_target.csv")
    assert sorted(cells["studies"]) == [8, 8] and (cells["studies_reached"] == 8).all()


# -- corrupt files ---------------------------------------------------------------------------------
def test_a_corrupt_record_of_a_finished_run_is_skipped_and_never_overwritten(results_dir, capsys):
    run_in_process(TINY, results_dir)
    run_dir = default_run_dir(results_dir)
    (run_dir / results.RECORD_FILE).write_text('{"status": "reached", "submis')
    rows = (run_dir / results.EVAL_FILE).read_bytes()
    assert report.main([str(results_dir), "--no-figures"]) == 1  # nothing else to score
    assert f"skipping {run_dir}: record.json cannot be read" in capsys.readouterr().err
    with pytest.raises(lifecycle.UnreadableRecord, match="force=true"):
        run_in_process(TINY, results_dir)
    assert (run_dir / results.EVAL_FILE).read_bytes() == rows
    record = run_in_process([*TINY, "force=true"], results_dir)
    assert record.status == "reached"
    (kept,) = replaced_copies(run_dir)
    assert (kept / results.EVAL_FILE).read_bytes() == rows


def test_a_corrupt_evaluations_file_is_skipped_with_its_reason(results_dir, capsys):
    run_in_process(TINY, results_dir)
    run_in_process([*TINY, "submission=lion"], results_dir)
    run_dir = default_run_dir(results_dir)
    text = (run_dir / results.EVAL_FILE).read_text()
    (run_dir / results.EVAL_FILE).write_text(text[: len(text) // 2])  # cut mid-row
    assert report.main([str(results_dir), "--no-figures", "--resamples", "20"]) == 0
    assert f"skipping {run_dir}: eval_measurements.csv" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04" + bytes(300)])
def test_an_unreadable_checkpoint_is_one_paragraph_and_moved_aside_only_with_force(
    results_dir, content
):
    run_dir = interrupted_run(results_dir, TINY)
    (run_dir / results.CHECKPOINT_FILE).write_bytes(content)
    with pytest.raises(lifecycle.UnreadableCheckpoint) as error:
        run_in_process([*TINY, "stop_at_target=false"], results_dir)
    message = str(error.value)
    assert str(run_dir / results.CHECKPOINT_FILE) in message and "force=true" in message
    assert "weights_only" not in message and "\n" not in message
    assert (run_dir / results.CHECKPOINT_FILE).read_bytes() == content
    record = run_in_process([*TINY, "stop_at_target=false", "force=true"], results_dir)
    assert record.status == "reached"
    (kept,) = replaced_copies(run_dir)
    assert (kept / results.CHECKPOINT_FILE).read_bytes() == content


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(results_dir, tmp_path):
    run_dir = interrupted_run(results_dir, TINY)
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": results.CHECKPOINT_FORMAT, "x": Payload()}, run_dir / "checkpoint.pt")
    with pytest.raises(lifecycle.UnreadableCheckpoint, match="unsupported GLOBAL"):
        run_in_process([*TINY, "stop_at_target=false"], results_dir)
    assert not marker.exists()


# -- a full disk ----------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path) -> Path:
    """An 80 MiB tmpfs (root only): room to start a run, and to fill."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (the disk-full case)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=80m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` until `leave` bytes are free."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as handle:
        handle.truncate(0)
        handle.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.slow
def test_a_full_disk_fails_the_run_in_words_and_keeps_earlier_results(small_disk, tmp_path):
    results_dir = small_disk / "results"
    run_in_process([*TINY, "submission=lion"], results_dir)  # an earlier result on that disk
    before = finished_results(results_dir)
    overrides = [*PREEMPTIBLE, f"results_dir={results_dir}"]
    process = start_cli(overrides, tmp_path)
    run_dir = default_run_dir(results_dir)
    wait_until(lambda: checkpointed_record(run_dir) is not None, process, "a first checkpoint")
    fill(small_disk, leave=200_000)  # records fit, the next checkpoint does not
    out, err = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode in (1, 2), out + err
    assert f"no space left on device: {run_dir}" in out + err and "Traceback" not in err
    record = results.load_record(run_dir)
    assert record.status in ("failed", "running")  # failed, or its last record if none fit
    if record.status == "failed":
        assert record.error.startswith(f"no space left on device: {run_dir}")
    assert_kept(before)
    # A replacement of the earlier result on the full disk is refused before it starts.
    lion = [*TINY, "submission=lion", "force=true"]
    with pytest.raises(UserError, match="no space left on device"):
        run_in_process(lion, results_dir)
    assert_kept(before)
