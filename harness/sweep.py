"""How far a sweep is: its runs counted as done / running / failed / pending, from their
record.json files. One function (`progress`) serves both the sweep launchers, which print it while
they wait (hydra_plugins/optbench_launchers.py), and `python -m harness.sweep RESULTS_DIR`.
Only reads: never trains, never writes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness import results

STATES = ("done", "running", "failed", "pending")


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


# -- command line ---------------------------------------------------------------------------------
def status_report(root: Path) -> str:
    """The progress of every run under `root`, by (ruleset, submission, workload) folder. Runs
    not started yet have no folder, so only the sweep itself can count them as pending."""
    groups: dict[str, list[tuple[Path, results.RunRecord | None]]] = {}
    unreadable: list[str] = []
    for run_dir in results.find_run_dirs(root):
        try:
            record = results.load_record(run_dir)
        except results.RecordError as error:
            unreadable.append(f"  {run_dir}: {error}")
            continue
        group = f"{record.experiment_name}/{record.ruleset.name}/{record.submission}/"
        groups.setdefault(group + record.workload, []).append((run_dir, record))
    if not groups and not unreadable:
        return f"{root}: no runs yet (no record.json below it)"
    by_group = {name: tally(members) for name, members in sorted(groups.items())}
    total = sum(by_group.values(), SweepProgress())
    width = max((len(name) for name in groups), default=0)
    lines = [f"{root}: {total.line(pending=False)}", ""]
    lines.append(" " * width + "".join(f"  {state:>7}" for state in STATES[:3]))
    for name, group in by_group.items():
        lines.append(f"{name:<{width}}" + "".join(f"  {group.counts[s]:>7}" for s in STATES[:3]))
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
