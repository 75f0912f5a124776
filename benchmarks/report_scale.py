"""Report at scale: load and score a synthetic results folder of 10,000 runs x 100 evaluations,
cold (no parquet cache) and warm (cache present), and warm after one run changed.

The folder is written in the real results format (tests/synthetic_results.py): 10
submissions x 10 workloads x 20 studies x 5 trials, external ruleset. "load" is
harness.report.load.load (every record.json and eval_measurements.csv, or the
cache); "score" is report.build_groups (grouping, completeness audit, best trials, medians,
scores and bootstrap intervals with 2000 resamples). Rounds alternate cold and warm; prints
medians with the min-max spread over rounds; never asserts.

    python benchmarks/report_scale.py [--rounds 3] [--runs 10000] [--evals 100] [--dir PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import results  # noqa: E402
from harness.report import cli as report  # noqa: E402
from harness.report import load, scoring  # noqa: E402
from tests.synthetic_results import write_run  # noqa: E402

SUBMISSIONS, WORKLOADS, TRIALS = 10, 10, 5


def write_folder(root: Path, runs: int, evals: int) -> None:
    studies = max(1, runs // (SUBMISSIONS * WORKLOADS * TRIALS))
    for s in range(SUBMISSIONS):
        for w in range(WORKLOADS):
            for study in range(studies):
                for trial in range(TRIALS):
                    # Deterministic spread: some trials miss, the rest take 50-250 s.
                    index = (7 * s + 13 * w + 3 * study + trial) % 11
                    time_to_target = None if index == 0 else 50.0 + 20.0 * index
                    write_run(
                        root,
                        f"submission_{s}",
                        f"workload_{w}",
                        study,
                        trial,
                        time_to_target,
                        n_evals=evals,
                    )


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - start, value


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--dir", type=Path, help="reuse or keep the synthetic folder here")
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="report_scale_"))
    if not results.find_run_dirs(root):
        seconds, _ = timed(write_folder, root, args.runs, args.evals)
        print(f"wrote the synthetic folder in {seconds:.1f} s: {root}")
    settings = scoring.Settings(baseline="submission_0")
    measured: dict[str, list[float]] = {k: [] for k in ("cold", "warm", "one changed", "score")}
    for _ in range(args.rounds):
        load.clear_cache(root)
        seconds, loaded = timed(load.load, root)
        measured["cold"].append(seconds)
        seconds, warm = timed(load.load, root)
        measured["warm"].append(seconds)
        first = warm.runs.iloc[0]
        write_run(root, first["submission"], first["workload"], 0, 0, 60.0, n_evals=args.evals)
        measured["one changed"].append(timed(load.load, root)[0])
        measured["score"].append(timed(report.build_groups, warm.runs, settings)[0])
    print(
        f"{len(loaded.runs)} runs, {len(loaded.evaluations)} evaluations, "
        f"{args.rounds} rounds (the machine may be busy: compare ratios, not seconds)"
    )
    for name, values in measured.items():
        label = {"score": "score (2000 resamples)"}.get(name, f"load, {name}")
        print(f"  {label:<24}{spread(values)}")
    ratio = statistics.median(measured["cold"]) / statistics.median(measured["warm"])
    print(f"  cold / warm load: {ratio:.1f}x")
    if args.dir is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
