"""Turn a results folder of the comparison sweep into a Markdown table (docs/comparison.md).

    python run.py experiment=comparison
    python -m harness.report.comparison results/comparison --output docs/comparison.md

Per workload and submission: how many studies reached the target (k/n), the median
time-to-target over all n studies with its range, and the median steps-to-target. A study that
missed the target (not reached, diverged or failed) counts as infinity, as in AlgoPerf, so a
median over mostly-missed studies is infinite: misses stay misses. Runs from different hardware
are never mixed: each hardware fingerprint gets its own section. Reads record.json files only;
never trains and never writes into the results folder.
"""

from __future__ import annotations

import argparse
import datetime
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness import results

REGENERATE = (
    "python run.py experiment=comparison\n"
    "python -m harness.report.comparison results/comparison --output docs/comparison.md"
)
MISS_STATUSES = ("not_reached", "diverged", "failed")


def read_finished_records(results_dir: Path) -> list[dict[str, Any]]:
    """Every finished or failed run's record; unreadable and still-running runs are named."""
    records = []
    for path in sorted(results_dir.rglob(results.RECORD_FILE)):
        record = results.read_record(path.parent)
        if record is None:
            print(f"warning: skipping unreadable {path}", file=sys.stderr)
        elif record.get("status") not in (*results.DONE_STATUSES, "failed"):
            print(f"warning: skipping unfinished run {path.parent}", file=sys.stderr)
        else:
            records.append(record)
    return records


def time_to_target(record: dict[str, Any]) -> float:
    value = record.get("time_to_target")
    return math.inf if value is None or record.get("status") == "failed" else float(value)


def steps_to_target(record: dict[str, Any]) -> float:
    value = record.get("steps_to_target")
    return math.inf if value is None or math.isinf(time_to_target(record)) else float(value)


def format_seconds(value: float) -> str:
    if math.isinf(value):
        return "∞"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def format_steps(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.0f}"


def cell_row(submission: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: a submission's studies on one workload."""
    times = sorted(time_to_target(run) for run in runs)
    steps = [steps_to_target(run) for run in runs]
    misses = defaultdict(int)
    for run in runs:
        if run["status"] in MISS_STATUSES:
            misses[run["status"].replace("_", " ")] += 1
    median_time = statistics.median(times)
    return {
        "submission": submission,
        "reached": sum(not math.isinf(t) for t in times),
        "n": len(runs),
        "median_time": median_time,
        "time": f"{format_seconds(median_time)} [{format_seconds(times[0])}–"
        f"{format_seconds(times[-1])}]",
        "steps": format_steps(statistics.median(steps)),
        "misses": ", ".join(f"{count} {status}" for status, count in sorted(misses.items())),
    }


def workload_table(records: list[dict[str, Any]]) -> list[str]:
    by_submission: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_submission[record["submission"]].append(record)
    rows = [cell_row(name, runs) for name, runs in by_submission.items()]
    rows.sort(key=lambda row: (-row["reached"] / row["n"], row["median_time"], row["submission"]))
    lines = [
        "| submission | reached | time to target, s: median [min–max] | steps to target "
        "(median) | misses |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['submission']} | {row['reached']}/{row['n']} | {row['time']} | {row['steps']} "
        f"| {row['misses']} |"
        for row in rows
    ]
    return lines


def describe_target(record: dict[str, Any]) -> str:
    target = record.get("target") or {}
    direction = "≤" if target.get("lower_is_better") else "≥"
    budget = record.get("budget_sec")
    return (
        f"target {target.get('target_metric', '?')} {direction} {target.get('target_value', '?')}"
        f", budget {format_seconds(budget) if budget is not None else '?'} s of submission time"
    )


def hardware_section(hardware: str, records: list[dict[str, Any]]) -> list[str]:
    dates = sorted(str(r.get("started_at", "?"))[:10] for r in records)
    packages = records[0].get("packages") or {}
    versions = ", ".join(f"{name} {packages[name]}" for name in sorted(packages))
    rulesets = sorted({str(r.get("ruleset")) for r in records})
    lines = [
        f"## {hardware}",
        "",
        f"- runs: {len(records)} (ruleset {', '.join(rulesets)}), started {dates[0]} to "
        f"{dates[-1]}",
        f"- hosts: {', '.join(sorted({str(r.get('host') or '?') for r in records}))}",
        f"- packages: {versions or 'unknown'}",
        f"- commits: {', '.join(sorted({str(r.get('git_commit') or '?') for r in records}))}",
        "",
    ]
    by_workload: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_workload[record["workload"]].append(record)
    for workload in sorted(by_workload):
        lines += [
            f"### {workload}",
            "",
            f"{describe_target(by_workload[workload][0])}.",
            "",
            *workload_table(by_workload[workload]),
            "",
        ]
    return lines


def render(records: Iterable[dict[str, Any]], results_dir: Path, generated_on: str) -> str:
    by_hardware: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_hardware[str(record.get("hardware", "unknown hardware"))].append(record)
    lines = [
        "# Comparison: every submission with its defaults",
        "",
        f"Generated on {generated_on} from `{results_dir}` by:",
        "",
        "```bash",
        REGENERATE,
        "```",
        "",
        "Each row is one submission on one workload over n studies (seeds 1000 x study). "
        "*reached* is how many studies reached the validation target within the budget; "
        "time to target is submission time (evaluation off the clock) at the first evaluation "
        "that met the target, with a missed study counted as ∞ (so the median is ∞ when most "
        "studies missed); steps are global steps at that evaluation. The defaults come from "
        "each submission's YAML (literature values, not tuned to these workloads); see "
        "`conf/submission/`. Times from different hardware are never mixed. To run part of "
        "the sweep, add overrides to the first command, e.g. `submission=adamw,lion "
        "workload=digits study=0`.",
        "",
    ]
    for hardware in sorted(by_hardware):
        lines += hardware_section(hardware, by_hardware[hardware])
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="the sweep's folder, results/comparison")
    parser.add_argument("--output", type=Path, help="write here (default: print)")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        print(f"error: {args.results_dir} is not a folder", file=sys.stderr)
        return 2
    records = read_finished_records(args.results_dir)
    if not records:
        print(f"error: no finished runs under {args.results_dir}", file=sys.stderr)
        return 1
    today = datetime.date.today().isoformat()
    text = render(records, args.results_dir, today)
    if args.output is None:
        print(text, end="")
    else:
        results.write_text(args.output, text)
        print(f"wrote {args.output} ({len(records)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
