"""Every row of docs/failure-modes.md, run as written: the exit code and what the user sees.

The table is the list: each row's first column names a setup here (what must be true before the
command: a finished run, a file where the results folder should be, a full disk...), and the
row's command runs with a short run's settings added. A row without a setup, or a setup
without a row, fails `test_every_row_has_a_test_and_every_test_a_row`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import lifecycle, results
from tests.helpers import (
    ROOT,
    checkpointed_record,
    cli_environment,
    default_run_dir,
    run_dir_of,
    run_in_process,
)
from tests.synthetic_results import write_study_grid

pytestmark = pytest.mark.slow  # a fresh process per row
DOC = ROOT / "docs" / "failure-modes.md"
FAST = [
    "workload=friedman",
    "max_steps=4",
    "workload.eval_every_steps=2",
    "progress=none",
    "threads=1",
]
WAIT_SECONDS = 240


@dataclass
class Row:
    case: str
    command: list[str]  # argv after `python`
    exit: int
    fragment: str | None  # what the user must see (PATH, N, H, P: any path or number)


def documented_rows() -> list[Row]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        case, _, try_it, exit_code, you_see, _ = cells
        command = shlex.split(re.search(r"`([^`]+)`", try_it).group(1))
        assert command[0] == "python", f"{case}: the command must start with python"
        quoted = re.search(r'"([^"]+)"', you_see)  # none: the process cannot say anything
        rows.append(Row(case.strip("`"), command[1:], int(exit_code), quoted and quoted.group(1)))
    return rows


ROWS = {row.case: row for row in documented_rows()}


def pattern(fragment: str) -> re.Pattern:
    text = re.escape(fragment)
    for word, meaning in (("PATH", r"\S+"), ("N", r"\d+"), ("H", r"\S+"), ("P", r"\d+")):
        text = re.sub(rf"\b{word}\b", lambda _, meaning=meaning: meaning, text)
    return re.compile(text)


# -- what each row needs --------------------------------------------------------------------------
@dataclass
class Case:
    """How to try a row: the folder to run in, the environment, and an optional driver that
    runs the command itself (to signal it mid-run); `after` checks what was kept."""

    cwd: Path
    env: dict[str, str] = field(default_factory=cli_environment)
    drive: Callable[[list[str], Case], subprocess.CompletedProcess] | None = None
    after: Callable[[Case], None] | None = None


def argv(args: list[str]) -> list[str]:
    """`python ARGS` as a process's argv, with run.py found in the repository."""
    return [sys.executable, *(str(ROOT / "run.py") if a == "run.py" else a for a in args)]


def python(args: list[str], case: Case, timeout: float = WAIT_SECONDS):
    return subprocess.run(
        argv(args),
        cwd=case.cwd,
        env=case.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start(args: list[str], case: Case) -> subprocess.Popen:
    """`python ARGS` started for a row that signals it, with SIGINT's default action as a
    terminal's Ctrl-C finds it: a suite started in the background of a non-interactive shell
    (`make test &`) inherits SIGINT ignored, and Python keeps ignoring it."""
    return subprocess.Popen(
        argv(args), cwd=case.cwd, env=case.env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def with_fast(args: list[str]) -> list[str]:
    """The row's command with the short run's settings it does not set itself."""
    if args[0] != "run.py":
        return args
    given = {arg.lstrip("+").split("=", 1)[0] for arg in args}
    return [*args, *(s for s in FAST if s.split("=", 1)[0] not in given)]


def finished_run(case: Case, *extra: str) -> Path:
    """A finished run in the row's results folder (in this process: setting up is not what a
    row tries, and a fresh process per setup would double the module's time)."""
    record = run_in_process([*FAST, *extra], case.cwd / "results")
    assert record.finished, record.error
    return run_dir_of(record, case.cwd / "results")


def mount_tmpfs(folder: Path, size: str, *options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    folder.mkdir(parents=True, exist_ok=True)
    flags = ",".join((f"size={size}", *options))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", flags, "tmpfs", str(folder)], check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")


def unmount(folder: Path) -> None:
    if os.path.ismount(folder):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int) -> None:
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


def signal_after_checkpoint(signum: int, folder: str = "results"):
    """A driver: start the command, send `signum` once its first checkpoint is written."""

    def drive(args: list[str], case: Case) -> subprocess.CompletedProcess:
        run_dir = default_run_dir(case.cwd / folder)
        process = start(args, case)
        deadline = time.monotonic() + WAIT_SECONDS
        while checkpointed_record(run_dir) is None and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signum)
        out, err = process.communicate(timeout=WAIT_SECONDS)
        return subprocess.CompletedProcess(args, process.returncode, out, err)

    return drive


def resumes(args: list[str]):
    """`after`: the same command resumes the run from its checkpoint."""

    def after(case: Case) -> None:
        again = python(with_fast(args), case)
        assert again.returncode == 0, again.stderr
        assert "resuming from the checkpoint" in again.stdout + again.stderr

    return after


def setup(case: str, tmp: Path) -> Case:
    """Prepare `tmp` for the documented row `case` (KeyError: a row without a test)."""
    return SETUPS[case](tmp)


def _plain(tmp: Path) -> Case:
    return Case(tmp)


def _finished(tmp: Path) -> Case:
    case = Case(tmp)
    finished_run(case)
    return case


def _finished_sweep(tmp: Path) -> Case:
    """What `python run.py -m study=0,1` leaves: two finished runs."""
    case = Case(tmp)
    for study in (0, 1):
        finished_run(case, f"study={study}")
    return case


def _under_a_file(tmp: Path) -> Case:
    (tmp / "notes.txt").write_text("not a folder\n")
    return Case(tmp)


def _read_only(tmp: Path) -> Case:
    if os.geteuid() == 0:
        mount_tmpfs(tmp / "readonly", "1m", "ro")
    else:
        (tmp / "readonly").mkdir()
        (tmp / "readonly").chmod(0o555)
    return Case(tmp, after=lambda case: unmount(tmp / "readonly"))


def _full_disk(tmp: Path) -> Case:
    mount_tmpfs(tmp / "full", "8m")
    fill(tmp / "full", leave=100_000)
    return Case(tmp, after=lambda case: unmount(tmp / "full"))


def _filling_disk(tmp: Path) -> Case:
    mount_tmpfs(tmp / "filling", "80m")

    def drive(args: list[str], case: Case) -> subprocess.CompletedProcess:
        run_dir = default_run_dir(tmp / "filling" / "results")
        process = start(args, case)
        deadline = time.monotonic() + WAIT_SECONDS
        while checkpointed_record(run_dir) is None and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        fill(tmp / "filling", leave=200_000)  # records still fit, a checkpoint does not
        out, err = process.communicate(timeout=WAIT_SECONDS)
        return subprocess.CompletedProcess(args, process.returncode, out, err)

    def after(case: Case) -> None:
        record = results.load_record(default_run_dir(tmp / "filling" / "results"))
        assert record.status == "failed" and "no space left on device" in record.error
        unmount(tmp / "filling")

    return Case(tmp, drive=drive, after=after)


def _missing_dataset(tmp: Path) -> Case:
    (tmp / "empty").mkdir()
    return Case(tmp, env={**cli_environment(), "OPTBENCH_DATA_DIR": str(tmp / "empty")})


def _in_use(tmp: Path) -> Case:
    lock = lifecycle.RunLock(default_run_dir(tmp / "results"))
    lock.__enter__()
    return Case(tmp, after=lambda case: lock.__exit__(None, None, None))


def _interrupted_with(damage: Callable[[Path], None]) -> Callable[[Path], Case]:
    """A run stopped after its last checkpoint (record still `running`), then damaged."""

    def make(tmp: Path) -> Case:
        case = Case(tmp)
        run_dir = finished_run(case, "keep_checkpoint=true")
        record = json.loads((run_dir / results.RECORD_FILE).read_text())
        (run_dir / results.RECORD_FILE).write_text(json.dumps({**record, "status": "running"}))
        damage(run_dir)
        kept = (run_dir / results.CHECKPOINT_FILE).read_bytes()
        case.after = lambda _: assert_unchanged(run_dir / results.CHECKPOINT_FILE, kept)
        return case

    return make


def assert_unchanged(path: Path, data: bytes) -> None:
    assert path.read_bytes() == data, f"{path} was touched"


def _unreadable_record(tmp: Path) -> Case:
    case = Case(tmp)
    run_dir = finished_run(case)
    (run_dir / results.RECORD_FILE).write_text('{"status": "reach')
    rows = (run_dir / results.EVAL_FILE).read_bytes()
    case.after = lambda _: assert_unchanged(run_dir / results.EVAL_FILE, rows)
    return case


def _truncated_evaluations(tmp: Path) -> Case:
    case = Case(tmp)
    finished_run(case)
    finished_run(case, "submission=lion")
    csv = default_run_dir(tmp / "results", "lion") / results.EVAL_FILE
    text = csv.read_text()
    csv.write_text(text[: len(text) - 7])
    return case


def _crashing_submission(tmp: Path) -> Case:
    (tmp / "crashing.py").write_text(
        "import torch\n\n\n"
        "class Crashing(torch.optim.SGD):\n"
        "    def step(self, closure=None):\n"
        "        raise RuntimeError('boom in the submission')\n"
    )
    env = cli_environment()
    env["PYTHONPATH"] = f"{tmp}{os.pathsep}{env['PYTHONPATH']}"

    def after(case: Case) -> None:
        # A class given by _target_ alone is filed under its own name, not under sgd.
        record = results.load_record(default_run_dir(tmp / "results", "crashing.Crashing"))
        assert record.status == "failed" and record.error.startswith("Traceback")
        assert record.error.endswith("RuntimeError: boom in the submission")

    return Case(tmp, env=env, after=after)


def _signalled(signum: int) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        args = ["run.py", "max_steps=1000", "workload.eval_every_steps=100"]
        return Case(tmp, drive=signal_after_checkpoint(signum), after=resumes(args))

    return make


def _report_interrupted(tmp: Path) -> Case:
    times = {(s, w): [10.0, 12.0, None] for s in ("adamw", "lion", "nadamw") for w in "abcdef"}
    write_study_grid(tmp / "results", times, n_evals=200)

    def drive(args: list[str], case: Case) -> subprocess.CompletedProcess:
        process = start(args, case)
        manifest = tmp / "results" / ".report_cache" / "manifest.parquet"
        deadline = time.monotonic() + WAIT_SECONDS
        while not manifest.exists() and time.monotonic() < deadline:  # loaded: now scoring
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=WAIT_SECONDS)
        return subprocess.CompletedProcess(args, process.returncode, out, err)

    return Case(tmp, drive=drive)


def _failed_replacement(tmp: Path) -> Case:
    case = _finished(tmp)
    run_dir = default_run_dir(tmp / "results")
    record = (run_dir / results.RECORD_FILE).read_bytes()

    def after(_: Case) -> None:
        assert_unchanged(run_dir / results.RECORD_FILE, record)
        assert results.load_record(run_dir / lifecycle.ATTEMPT_DIR).status == "failed"

    case.after = after
    return case


def _replaced(tmp: Path) -> Case:
    case = _finished(tmp)
    run_dir = default_run_dir(tmp / "results")
    record = (run_dir / results.RECORD_FILE).read_bytes()

    def after(_: Case) -> None:
        (kept,) = (run_dir / lifecycle.REPLACED_DIR).iterdir()
        assert_unchanged(kept / results.RECORD_FILE, record)

    case.after = after
    return case


SETUPS: dict[str, Callable[[Path], Case]] = {
    "unknown-hyperparameter": _plain,
    "hyperparameter-not-in-defaults": _plain,
    "ill-typed-hyperparameter": _plain,
    "refused-hyperparameter": _plain,
    "non-finite-hyperparameter": _plain,
    "zero-batch-size": _plain,
    "negative-batch-size": _plain,
    "batch-larger-than-data": _plain,
    "unknown-group-choice": _plain,
    "unknown-setting": _plain,
    "unknown-setting-added": _plain,
    "unknown-group-added": _plain,
    "optimizer-not-importable": _plain,
    "malformed-search-space": _plain,
    "study-outside-ruleset": _plain,
    "changed-settings": _finished,
    "changed-settings-in-a-sweep": _finished_sweep,
    "results-under-a-file": _under_a_file,
    "read-only-results": _read_only,
    "full-disk-at-start": _full_disk,
    "full-disk-during-a-run": _filling_disk,
    "missing-dataset": _missing_dataset,
    "folder-in-use": _in_use,
    "unreadable-checkpoint": _interrupted_with(
        lambda d: (d / results.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    ),
    "unreadable-record": _unreadable_record,
    "truncated-evaluations": _truncated_evaluations,
    "diverged": _plain,
    "crash-in-a-submission": _crashing_submission,
    "interrupted": _signalled(signal.SIGINT),
    "terminated": _signalled(signal.SIGTERM),
    "killed": _signalled(signal.SIGKILL),
    "interrupted-report": _report_interrupted,
    "rerun-a-finished-run": _replaced,
    "rerun-a-finished-sweep": _finished_sweep,
    "force-a-changed-run": _replaced,
    "failed-replacement": _failed_replacement,
}


def test_every_row_has_a_test_and_every_test_a_row():
    assert sorted(ROWS) == sorted(SETUPS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_documented_failure_mode(name, tmp_path):
    row, case = ROWS[name], setup(name, tmp_path)
    args = with_fast(row.command)
    try:
        done = case.drive(args, case) if case.drive else python(args, case)
        output = done.stdout + done.stderr
        assert done.returncode == row.exit, f"{name}: exit {done.returncode}\n{output}"
        if row.fragment is not None:
            assert pattern(row.fragment).search(output), f"{name}: no {row.fragment!r}\n{output}"
        if row.exit == 2:
            assert "Traceback" not in output, output
        if row.exit == 2 and row.command[0] == "run.py" and name not in KEEP_FILES:
            assert not any(tmp_path.rglob(results.RECORD_FILE)), "nothing may be written"
    finally:
        if case.after is not None:
            case.after(case)


# Rows whose exit 2 leaves files that were there before (the earlier runs it protects).
KEEP_FILES = {
    "changed-settings",
    "changed-settings-in-a-sweep",
    "folder-in-use",
    "unreadable-checkpoint",
    "unreadable-record",
}
