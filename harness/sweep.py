"""How far a sweep is: its runs counted as done / running / failed / pending, from their
record.json files and the sweep's plan. One function (`progress`) serves both the sweep launchers,
which print it while they wait (hydra_plugins/optbench_launchers.py), and `python -m harness.sweep
RESULTS_DIR`; `SweepClock` makes the line a launcher prints for each finished run, with an ETA.
Never trains; writes only the plan (`sweep_plan.json` in the sweep's folder), never a run's files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness import results

STATES = ("done", "running", "failed", "pending")
PLAN_FILE = "sweep_plan.json"  # in the sweep's folder: every run a sweep launched, by folder


def run_state(record: results.RunRecord | None) -> str:
    """One of STATES, from a run's record (None: no record yet)."""
    if record is None:
        return "pending"
    if record.finished:
        return "done"
    return "failed" if record.status == "failed" else "running"


@dataclass
class SweepProgress:
    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[Path, str]] = field(default_factory=list)  # (run folder, error)
    disturbed: list[tuple[Path, results.RunRecord]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self, pending: bool = True) -> str:
        """E.g. `3/8 done, 2 running, 1 failed, 2 pending`; without pending when it is unknown."""
        parts = [f"{self.counts['done']}/{self.total} done"]
        parts += [f"{self.counts[state]} {state}" for state in STATES[1 : 4 if pending else 3]]
        return ", ".join(parts)

    def __add__(self, other: SweepProgress) -> SweepProgress:
        return SweepProgress(
            self.counts + other.counts,
            self.failures + other.failures,
            self.disturbed + other.disturbed,
        )


def progress(run_dirs: Iterable[Path]) -> SweepProgress:
    """How far the runs in `run_dirs` are (a folder without a record is pending)."""
    return tally((run_dir, results.read_record(run_dir)) for run_dir in run_dirs)


def tally(runs: Iterable[tuple[Path, results.RunRecord | None]]) -> SweepProgress:
    summary = SweepProgress()
    for run_dir, record in runs:
        state = run_state(record)
        summary.counts[state] += 1
        if state == "failed":
            summary.failures.append((Path(run_dir), record.error or "no error recorded"))
        if state == "done" and record.disturbed:
            summary.disturbed.append((Path(run_dir), record))
    return summary


# -- the plan and the per-run lines ---------------------------------------------------------------
def write_plan(sweep_dir: Path, run_dirs: Iterable[Path]) -> None:
    """Record every run of a sweep before any starts, so that `python -m harness.sweep` counts
    the runs not started yet as pending. Runs of earlier sweeps into the same folder are kept."""
    base = Path(sweep_dir).resolve()
    path = base / PLAN_FILE
    planned = set(_read_plan(path))
    # Relative to the sweep's folder; a task may write elsewhere (its own experiment_name):
    # then `../<experiment>/...`.
    planned |= {Path(os.path.relpath(Path(d).resolve(), base)).as_posix() for d in run_dirs}
    results.write_json(path, {"runs": sorted(planned)})


def _read_plan(path: Path) -> list[str]:
    try:
        runs = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [str(run) for run in runs if isinstance(run, str)]


def planned_run_dirs(root: Path) -> list[Path]:
    """The run folders under `root` that the plans of sweeps at, above or just below `root`
    list (a run not started yet has no folder, so only its sweep's plan knows it)."""
    root = Path(root).resolve()
    plans = [folder / PLAN_FILE for folder in (root, *root.parents[:3])]
    plans += sorted(root.glob(f"*/{PLAN_FILE}")) + sorted(root.glob(f"*/*/{PLAN_FILE}"))
    found: set[Path] = set()
    for plan in plans:
        for run in _read_plan(plan):
            run_dir = (plan.parent / run).resolve()
            if run_dir == root or root in run_dir.parents:
                found.add(run_dir)
    return sorted(found)


def outcome(record: results.RunRecord | None) -> str:
    """How a run ended, in a few words: `reached in 12.3 s (350 steps)`, `not_reached:
    validation/mse 1.31 (target 1.08)`, `failed: <last line of the error>`."""
    if record is None:
        return "ended without a record"
    if record.status == "reached":
        return f"reached in {record.time_to_target:.1f} s ({record.steps_to_target} steps)"
    if record.status == "failed":
        return f"failed: {(record.error or 'no error recorded').strip().splitlines()[-1]}"
    if record.status == "running":
        return "stopped midway (rerunning resumes it)"
    metric = record.final_validation_metric
    shown = "—" if metric is None else f"{metric:.4g}"
    target = f" (target {record.target.value:g})" if record.target else ""
    name = record.target.metric if record.target else "final metric"
    return f"{record.status}: {name} {shown}{target} at step {record.global_step}"


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class SweepClock:
    """Counts the runs of a sweep as they finish; each gets one line with its outcome, the time
    since the sweep started and an ETA (the runs left at the rate of those finished so far)."""

    def __init__(self, to_run: int, already_done: int = 0) -> None:
        self.to_run, self.already_done, self.finished = to_run, already_done, 0
        self.started = time.monotonic()

    def line(self, run_dir: Path, record: results.RunRecord | None) -> str:
        self.finished += 1
        elapsed = time.monotonic() - self.started
        left = self.to_run - self.finished
        eta = "done" if left <= 0 else f"ETA {duration(elapsed / self.finished * left)}"
        where = results.display_path(run_dir)
        return (
            f"[{self.finished}/{self.to_run}] {outcome(record)} | {where} | "
            f"{duration(elapsed)} elapsed, {eta}"
        )


# -- command line ---------------------------------------------------------------------------------
def status_report(root: Path) -> str:
    """The progress of every run under `root`, by (ruleset, submission, workload) folder; the
    runs a sweep's plan lists that have not started yet are pending."""
    groups: dict[str, list[tuple[Path, results.RunRecord | None]]] = {}
    unreadable: list[str] = []
    seen: set[Path] = set()
    for run_dir in results.find_run_dirs(root):
        seen.add(run_dir.resolve())
        try:
            record = results.load_record(run_dir)
        except results.RecordError as error:
            unreadable.append(f"  {run_dir}: {error}")
            continue
        group = f"{record.experiment_name}/{record.ruleset.name}/{record.submission}/"
        groups.setdefault(group + record.workload, []).append((run_dir, record))
    planned = planned_run_dirs(root)
    for run_dir in planned:
        if run_dir not in seen:  # <experiment>/<ruleset>/<submission>/<workload>/study_k/trial_j
            group = "/".join(run_dir.parts[-6:-2])
            groups.setdefault(group, []).append((run_dir, None))
    if not groups and not unreadable:
        return f"{root}: no runs yet (no record.json below it)"
    by_group = {name: tally(members) for name, members in sorted(groups.items())}
    total = sum(by_group.values(), SweepProgress())
    shown = STATES if planned else STATES[:3]
    width = max((len(name) for name in groups), default=0)
    lines = [f"{root}: {total.line(pending=bool(planned))}", ""]
    lines.append(" " * width + "".join(f"  {state:>7}" for state in shown))
    for name, group in by_group.items():
        lines.append(f"{name:<{width}}" + "".join(f"  {group.counts[s]:>7}" for s in shown))
    if total.counts["running"]:
        lines += ["", "running: or stopped midway (killed, cancelled); rerunning resumes those."]
    if total.failures:
        lines += ["", "failed (their record.json holds the whole error):"]
        lines += [f"  {d}: {error.strip().splitlines()[-1]}" for d, error in total.failures]
    if total.disturbed:
        lines += [
            "",
            f"disturbed: {len(total.disturbed)} done run(s) whose times are not a quiet "
            "machine's (the report marks them; --exclude-disturbed leaves them out). Rerun each "
            "on a quiet machine with the command below it:",
        ]
        for run_dir, record in total.disturbed:
            lines.append(f"  {run_dir}: {record.disturbed_reason}")
            lines.append(f"    {rerun(record)}")
    if unreadable:
        lines += ["", "not counted, their record cannot be read:", *unreadable]
    return "\n".join(lines)


def rerun(record: results.RunRecord) -> str:
    """The command that replaces a finished run with a new attempt (the earlier result is kept
    in the run's .replaced/ folder until the new one has finished)."""
    command = record.command or "python run.py <the run's overrides>"
    return command if "force=true" in command.split() else f"{command} force=true"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.sweep",
        description="How far a sweep is: runs done / running / failed, from their record.json.",
    )
    parser.add_argument("results_dir", type=Path, help="e.g. results/demo")
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="repeat every SECONDS")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        print(f"error: {args.results_dir} is not a folder", file=sys.stderr)
        return 2
    while True:
        print(status_report(args.results_dir), flush=True)
        if args.watch is None:
            return 0
        time.sleep(args.watch)
        print()


if __name__ == "__main__":
    sys.exit(main())
