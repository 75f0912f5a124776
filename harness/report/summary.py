"""Print one line per run found under a results folder: the quick look after a sweep.

    python -m harness.report.summary results/demo

Reads record.json files only; never trains, never scores (harness/report/grouping.py scores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import results

COLUMNS = (
    "submission",
    "workload",
    "study",
    "trial",
    "status",
    "time_to_target",
    "steps_to_target",
    "final metric",
    "target",
)


def rows(results_dir: Path) -> list[dict[str, str]]:
    table = []
    for run_dir in results.find_run_dirs(results_dir):
        try:
            record = results.load_record(run_dir)
        except results.RecordError as error:
            print(f"warning: skipping {run_dir}: {error}", file=sys.stderr)
            continue
        target, metric = record.target, record.final_validation_metric
        time_to_target = record.time_to_target
        table.append(
            {
                "submission": record.submission,
                "workload": record.workload,
                "study": str(record.study),
                "trial": str(record.trial),
                "status": record.status,
                "time_to_target": "inf" if time_to_target is None else f"{time_to_target:.2f} s",
                "steps_to_target": str(record.steps_to_target or "inf"),
                "final metric": "—" if metric is None else f"{metric:.4f}",
                "target": "?" if target is None else target.text(),
            }
        )
    return table


def format_table(table: list[dict[str, str]]) -> str:
    widths = {c: max(len(c), *(len(row[c]) for row in table)) for c in COLUMNS}
    lines = [
        "  ".join(c.ljust(widths[c]) for c in COLUMNS),
        "  ".join("-" * widths[c] for c in COLUMNS),
    ]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in COLUMNS) for row in table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="a folder of runs, e.g. results/demo")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        print(f"error: {args.results_dir} is not a folder", file=sys.stderr)
        return 2
    table = rows(args.results_dir)
    if not table:
        print(f"error: no runs (record.json files) under {args.results_dir}", file=sys.stderr)
        return 1
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
