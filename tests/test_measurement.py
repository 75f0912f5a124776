"""Measurement you can defend (harness/speed.py): the speed index, disturbance, budget scaling,
thread defaults, the time cadence and its resolution, and the report's units.

What a quiet machine gives cannot be a test here (the suite itself loads the machine); that is
benchmarks/noise.py's job. These tests check the arithmetic with counters chosen by hand, and a
real run beside a real CPU hog, whose disturbance no other load can hide.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time

import pytest
import torch
from helpers import make_runner, read_csv
from synthetic_results import write_run

from harness import environment, results, speed, sweep
from harness.report import cli as report_cli


# -- arithmetic ----------------------------------------------------------------------------------
def sample(wall: float, own: float, busy: float, steal: float = 0.0) -> speed.CpuSample:
    return speed.CpuSample(wall=wall, own=own, busy=busy, steal=steal)


def test_others_count_only_beyond_the_cpus_the_run_leaves_spare():
    start = sample(0, 0, 0)
    # 10 s on 2 CPUs, 2 threads: the run used 10 CPU-s, others 10: half of what it needed.
    shares = speed.CpuShares.between(start, sample(10, 10, 20), n_cpus=2, threads=2)
    assert shares.other == pytest.approx(0.5) and shares.seconds == 10
    # 1 thread on 2 CPUs: another 1-thread run on the spare CPU takes nothing from it ...
    assert speed.CpuShares.between(start, sample(10, 10, 20), 2, 1).other == pytest.approx(0)
    # ... two of them take half of its CPU.
    assert speed.CpuShares.between(start, sample(10, 5, 20), 2, 1).other == pytest.approx(0.5)
    # Steal: as a share of what the run needed.
    stolen = speed.CpuShares.between(start, sample(10, 8, 8, steal=4), 2, 2)
    assert stolen.steal == pytest.approx(0.2) and stolen.other == pytest.approx(0)
    # No counters (no /proc/stat): nothing is claimed either way.
    unknown = speed.CpuSample(wall=10, own=5, busy=None, steal=None)
    assert speed.CpuShares.between(start, unknown, 2, 2).other is None


def test_the_verdict_names_each_reason_and_clears_a_quiet_run():
    def readings(*values):
        return speed.SpeedReadings(list(values))

    quiet = [100, 95, 105, 98, 102, 97, 103, 99, 101, 100]
    assert speed.disturbance(readings(*quiet), 0.05, 0.0) is None
    # An unlucky first reading, or one slow reading, is noise: the median is the baseline.
    assert speed.disturbance(readings(60, *quiet[1:]), 0.05, 0.0) is None
    assert speed.disturbance(readings(*quiet[:8], 50, 50), 0.05, 0.0) is None  # 2 of 10
    fell = speed.disturbance(readings(*quiet[:7], 50, 50, 50), 0.05, 0.0)
    assert fell and "below 70% of its median (97.5)" in fell and "3 of 10" in fell
    assert "lowest 50" in fell
    rose = speed.disturbance(readings(40, 42, 41, 100, 105, 39), None, None)
    assert rose and "above 143% of its median" in rose and "2 of 6" in rose
    others = speed.disturbance(readings(*quiet), 0.45, 0.0)
    assert others and "other processes took 45%" in others
    stolen = speed.disturbance(readings(*quiet), 0.0, 0.3)
    assert stolen and "hypervisor withheld 30%" in stolen
    both = speed.disturbance(readings(*quiet[:6], 40, 40, 40, 40), 0.5, 0.0)
    assert both.count(";") == 1  # both reasons, one line
    summary = readings(10, 20, 30).summary()
    assert summary == {
        "start": 10,
        "min": 10,
        "max": 30,
        "median": 20,
        "readings": 3,
        "slow": 1,
        "fast": 1,
    }


def test_proc_stat_counters_come_from_the_run_s_cpus(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  300 0 30 900 0 0 0 6 0 0\n"
        "cpu0 100 0 10 300 0 0 0 2 0 0\n"
        "cpu1 200 0 20 600 0 0 0 4 0 0\n"
        "intr 12345\n"
    )
    monkeypatch.setattr(speed, "PROC_STAT", stat)
    monkeypatch.setattr(speed, "_TICK", 100)
    one = speed.CpuSample.take([1])
    # busy: user + nice + system + irq + softirq; steal apart (the CPU ran nothing of ours).
    assert one.busy == pytest.approx((200 + 20) / 100) and one.steal == pytest.approx(0.04)
    both = speed.CpuSample.take([0, 1])
    assert both.busy == pytest.approx((100 + 10 + 200 + 20) / 100)
    monkeypatch.setattr(speed, "PROC_STAT", tmp_path / "absent")
    assert speed.CpuSample.take([0]).busy is None


# -- the probe -----------------------------------------------------------------------------------
def test_the_probe_leaves_training_exactly_as_it_was(tmp_path, monkeypatch):
    """A run with many more probe passes gives the same evaluations: the probe works on its own
    model and restores the random state."""
    overrides = ["workload=digits", "workload.width=4", "workload.eval_every_steps=20"]
    first = make_runner(overrides, tmp_path / "a", max_steps=60).run()
    monkeypatch.setattr(speed, "REPEATS_AT_EVALUATION", 9)
    monkeypatch.setattr(speed, "REPEATS_AT_START", 11)
    second = make_runner(overrides, tmp_path / "b", max_steps=60).run()
    assert first.global_step == second.global_step == 60
    rows_a, rows_b = (
        read_csv(tmp_path / "a" / results.EVAL_FILE),
        read_csv(tmp_path / "b" / results.EVAL_FILE),
    )
    for key in ("train/loss", "validation/loss", "validation/accuracy"):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b]
    assert all(float(r["speed_index"]) > 0 for r in rows_a + rows_b)
    assert first.speed_index["start"] > 0 and first.speed_index["reference"] is not None


def test_the_probe_leaves_the_global_random_state_alone(tmp_path):
    """init_model_fn seeds torch's generator; the probe must give it back as it found it."""
    runner = make_runner(["workload=digits", "workload.width=4"], tmp_path / "run")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    probe = speed.SpeedProbe(runner.workload, 32, seed=7)
    probe.measure(2)
    assert torch.equal(torch.get_rng_state(), before)


def test_budget_scales_by_reference_over_measured_and_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(speed.SpeedProbe, "measure", lambda self, repeats=3: 50.0)
    scaled = make_runner(
        ["workload=friedman", "workload.reference_speed_index=125"],
        tmp_path / "scaled",
        budget_sec=4.0,
        max_steps=5,
    ).run()
    assert scaled.budget_sec == pytest.approx(10.0) and scaled.base_budget_sec == 4.0
    assert scaled.speed_index["start"] == 50 and scaled.speed_index["reference"] == 125
    fixed = make_runner(
        ["workload=friedman", "workload.reference_speed_index=125", "workload.scale_budget=false"],
        tmp_path / "fixed",
        budget_sec=4.0,
        max_steps=5,
    ).run()
    assert fixed.budget_sec == fixed.base_budget_sec == 4.0


def test_budget_scale_is_limited_to_eightfold_either_way():
    assert speed.budget_scale(100, 50) == (2.0, False)
    assert speed.budget_scale(100, 5) == (8.0, True)  # a first reading beside a CPU hog
    assert speed.budget_scale(10, 1000) == (0.125, True)


def test_every_new_record_says_whether_it_was_disturbed(tmp_path):
    record = make_runner(["workload=friedman"], tmp_path / "run", max_steps=5).run()
    saved = results.read_json(tmp_path / "run" / results.RECORD_FILE)
    assert isinstance(saved["disturbed"], bool) and saved["record_format"] == 3
    assert set(saved["speed_index"]) == {
        "unit",
        "start",
        "min",
        "max",
        "median",
        "reference",
        "readings",
        "slow",
        "fast",
    }
    assert saved["cpu"]["threads"] == torch.get_num_threads()
    assert record.speed_index["min"] <= record.speed_index["start"] <= record.speed_index["max"]


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_run_beside_a_cpu_hog_is_marked_disturbed(tmp_path):
    """Two busy loops per CPU of this process: whatever else loads the machine, they take more
    than the tolerance of what the run needs."""
    cpus = len(speed.run_cpus())
    context = multiprocessing.get_context("spawn")
    hogs = [context.Process(target=_spin, args=(120,), daemon=True) for _ in range(2 * cpus)]
    for hog in hogs:
        hog.start()
    try:
        time.sleep(0.5)
        record = make_runner(
            ["workload=friedman", "workload.eval_every_steps=50"], tmp_path / "run", max_steps=150
        ).run()
    finally:
        for hog in hogs:
            hog.terminate()
    assert record.disturbed is True
    assert "other processes took" in record.disturbed_reason
    assert record.cpu["other_share"] > speed.OTHER_CPU_TOLERANCE
    rows = read_csv(tmp_path / "run" / results.EVAL_FILE)
    assert all(float(row["cpu_other_share"]) > 0 for row in rows)


# -- threads -------------------------------------------------------------------------------------
def test_threads_default_to_the_cpus_allotted(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    affinity = len(os.sched_getaffinity(0))
    assert environment.default_threads()[0] == affinity
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert environment.allotted_cpus() == 1 and environment.default_threads()[0] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # what our launchers set per task
    assert environment.default_threads() == (3, "OMP_NUM_THREADS")


# -- cadence and resolution ----------------------------------------------------------------------
def test_evaluation_every_n_seconds_and_the_resolution_of_time_to_target(tmp_path):
    run_dir = tmp_path / "run"
    record = make_runner(
        ["workload=friedman", "workload.eval_every_sec=0.4", "workload.target=1.35"],
        run_dir,
        max_steps=400,
        stop_at_target=False,
    ).run()
    rows = read_csv(run_dir / results.EVAL_FILE)
    times = [float(r["accumulated_submission_time"]) for r in rows]
    assert len(rows) >= 2
    # Each evaluation (but the budget's last) comes once 0.4 s have passed since the previous.
    gaps = [b - a for a, b in zip([0.0, *times], times[:-1], strict=False)]
    assert all(gap >= 0.4 for gap in gaps), gaps
    if record.reached:
        hit = next(i for i, r in enumerate(rows) if float(r["validation/mse"]) <= 1.35)
        before = times[hit - 1] if hit else 0.0
        assert record.time_to_target_resolution == pytest.approx(times[hit] - before)
    else:
        assert record.time_to_target_resolution is None


# -- sweep status and report ---------------------------------------------------------------------
def test_sweep_status_lists_disturbed_runs_with_the_command_that_reruns_them(tmp_path):
    run_dir = write_run(tmp_path, "adamw", "digits", 0, 0, 5.0, disturbed=True)
    record = results.load_record(run_dir).replace(command="python run.py workload=digits")
    results.write_record(run_dir, record)
    write_run(tmp_path, "adamw", "digits", 1, 0, 6.0)
    report = sweep.status_report(tmp_path)
    assert "disturbed: 1 done run(s)" in report
    assert "synthetic disturbance" in report
    assert "python run.py workload=digits force=true" in report
    assert report.count("force=true") == 1


def _board(out) -> str:
    return (out / "leaderboard.md").read_text()


def test_report_marks_disturbed_runs_and_can_leave_them_out(tmp_path, capsys):
    root = tmp_path / "results"
    write_run(root, "adamw", "digits", 0, 0, 5.0, ruleset="fixed", disturbed=True)
    write_run(root, "lion", "digits", 0, 0, 8.0, ruleset="fixed")
    assert report_cli.main([str(root), "--no-figures", "--out", str(tmp_path / "a")]) == 0
    board = _board(tmp_path / "a")
    assert "5.00‡" in board and "8.00‡" not in board and "1 disturbed run(s)" in board
    assert (
        report_cli.main(
            [str(root), "--no-figures", "--exclude-disturbed", "--out", str(tmp_path / "b")]
        )
        == 0
    )
    rows = [line for line in _board(tmp_path / "b").splitlines() if line.startswith("| 1 ")]
    assert rows and "‡" not in rows[0] and "8.00" in rows[0]
    assert "left out 1 disturbed run(s)" in capsys.readouterr().err


def test_normalize_pools_two_machines_into_one_leaderboard(tmp_path):
    root = tmp_path / "results"
    # Machine B is 3x slower (index 10 vs 30, reference 30) and took 3x as long.
    for study, (fast, slow) in enumerate([(4.0, 12.0), (5.0, 15.0)]):
        write_run(
            root,
            "adamw",
            "digits",
            study,
            0,
            fast,
            ruleset="fixed",
            hardware="cpu:A",
            speed_index=30.0,
            reference_speed_index=30.0,
        )
        write_run(
            root,
            "adamw",
            "digits",
            study + 2,
            0,
            slow,
            ruleset="fixed",
            hardware="cpu:B",
            speed_index=10.0,
            reference_speed_index=30.0,
        )
    out = tmp_path / "split"
    assert report_cli.main([str(root), "--no-figures", "--out", str(out)]) == 0
    assert _board(out).count("\n## Leaderboard") == 2  # two machines: two by default
    out = tmp_path / "pooled"
    assert report_cli.main([str(root), "--no-figures", "--normalize", "--out", str(out)]) == 0
    board = _board(out)
    assert board.count("\n## Leaderboard") == 1 and "pooled in reference units from cpu:A" in board
    times = read_csv(out / "time_to_target.csv")
    assert times[0]["unit"] == "reference"
    assert sorted(float(t) for t in times[0]["study_times"].split(";")) == [4, 4, 5, 5]


def test_normalize_refuses_runs_without_a_reference(tmp_path, capsys):
    root = tmp_path / "results"
    write_run(root, "adamw", "digits", 0, 0, 4.0, ruleset="fixed")  # no speed index recorded
    assert report_cli.main([str(root), "--no-figures", "--normalize"]) == 2
    err = capsys.readouterr().err
    assert "--normalize needs each run's speed index" in err and "digits" in err


def test_steps_rank_by_steps_to_target_from_any_hardware(tmp_path):
    root = tmp_path / "results"
    write_run(root, "adamw", "digits", 0, 0, 4.0, ruleset="fixed", hardware="cpu:A")
    write_run(root, "lion", "digits", 0, 0, 2.0, ruleset="fixed", n_evals=4, hardware="cpu:B")
    out = tmp_path / "steps"
    assert report_cli.main([str(root), "--no-figures", "--unit", "steps", "--out", str(out)]) == 0
    times = {r["submission"]: r for r in read_csv(out / "time_to_target.csv")}
    for submission in ("adamw", "lion"):
        record = results.load_record(
            root / "synthetic" / results.run_subdir("fixed", submission, "digits", 0, 0)
        )
        assert float(times[submission]["time_to_target"]) == record.steps_to_target
        assert times[submission]["unit"] == "steps"
    board = _board(out)
    assert "training steps" in board and board.count("\n## Leaderboard") == 1
    assert "pooled, in steps, from cpu:A (1 runs); cpu:B (1 runs)" in board


def test_cli_refuses_normalize_with_steps(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        report_cli.main([str(tmp_path), "--normalize", "--unit", "steps"])
    assert stop.value.code == 2 and "use one of them" in capsys.readouterr().err


def test_format_2_records_read_as_not_disturbed(tmp_path):
    run_dir = write_run(tmp_path, "adamw", "digits", 0, 0, 5.0)
    data = results.read_json(run_dir / results.RECORD_FILE)
    for key in ("disturbed", "disturbed_reason", "speed_index", "cpu"):
        data.pop(key, None)
    data["record_format"] = 2
    results.write_json(run_dir / results.RECORD_FILE, data)
    record = results.load_record(run_dir)
    assert record.disturbed is False and record.speed_index is None
    assert math.isnan(report_cli.load.parse_record(run_dir, "x")["speed_index"])
