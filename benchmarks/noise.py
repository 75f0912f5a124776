"""How much time-to-target varies between identical runs, quiet and beside a CPU hog, and
whether the hogged runs are flagged disturbed.

Runs `python run.py` --runs times with the same seed on a quiet machine, then --runs times with
--hogs busy-looping processes (default one) started before each run and stopped after it.
Prints, per condition: times-to-target, their median and coefficient of variation, steps to
target (the same in every run: the seed fixes the training), the first speed index and budget,
and how many runs were marked disturbed, with the reasons. Goal: every hogged run flagged, no
quiet one. Needs a quiet machine for the first half. Never asserts.

    python benchmarks/noise.py [--workload digits_narrow] [--runs 5] [-- overrides ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import results  # noqa: E402


def spin() -> None:
    while True:
        pass


def run_once(folder: Path, workload: str, overrides: list[str]) -> results.RunRecord:
    command = [
        sys.executable,
        str(ROOT / "run.py"),
        f"workload={workload}",
        "submission=adamw",
        f"results_dir={folder}",
        "progress=none",
        "checkpoint=false",
        *overrides,
    ]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    (run_dir,) = results.find_run_dirs(folder)
    return results.load_record(run_dir)


def condition(name: str, records: list[results.RunRecord]) -> None:
    times = [r.time_to_target for r in records if r.time_to_target is not None]
    steps = sorted({r.steps_to_target for r in records})
    flagged = [r for r in records if r.disturbed]
    cv = statistics.stdev(times) / statistics.mean(times) if len(times) >= 2 else float("nan")
    print(f"\n{name}: {len(records)} runs")
    shown = ["inf" if r.time_to_target is None else f"{r.time_to_target:.2f}" for r in records]
    print(f"  time-to-target s: {', '.join(shown)}")
    if times:
        print(f"  median {statistics.median(times):.2f} s, coefficient of variation {cv:.1%}")
    print(f"  steps-to-target: {', '.join(str(s) for s in steps)}")
    print(
        "  speed index at start: "
        + ", ".join(f"{r.speed_index['start']:.3g}" for r in records if r.speed_index)
        + "; budget s: "
        + ", ".join(f"{r.budget_sec:.0f}" for r in records)
    )
    print(f"  disturbed: {len(flagged)}/{len(records)}")
    for record in flagged:
        print(f"    - {record.disturbed_reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="digits_narrow")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hogs", type=int, default=1, help="busy-looping processes")
    parser.add_argument("overrides", nargs="*", help="more run.py overrides, after --")
    args = parser.parse_args()
    hogs = args.hogs
    print(
        f"adamw on {args.workload}, {args.runs} identical runs (seed 0) quiet, then {args.runs} "
        f"beside {hogs} busy-looping process(es)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        quiet = [
            run_once(Path(scratch) / f"quiet_{k}", args.workload, args.overrides)
            for k in range(args.runs)
        ]
        hogged = []
        context = multiprocessing.get_context("spawn")
        for k in range(args.runs):
            processes = [context.Process(target=spin, daemon=True) for _ in range(hogs)]
            for process in processes:
                process.start()
            try:
                time.sleep(0.5)
                hogged.append(run_once(Path(scratch) / f"hog_{k}", args.workload, args.overrides))
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.join()
    print(f"hardware: {quiet[0].hardware}")
    condition("quiet", quiet)
    condition("beside a CPU hog", hogged)


if __name__ == "__main__":
    main()
