"""AlgoPerf's published v0.5 logs through our import and report: how long each step takes.

Steps, each in a fresh process as a user runs it, side by side in every round:
- import: `python -m harness.algoperf import LOGS OUT --targets ... --held-out ...` into an empty
  folder (4,117 eval_measurements.csv: 4,099 trials in AlgoPerf's layout, 18 not);
- report cold: `python -m harness.report OUT --algoperf --no-cache --no-figures`;
- report warm: the same with the parquet cache in place;
- report with figures: cold and warm, without `--no-figures`.
The report's first round builds the cache; "warm" rounds read it. Prints the median and the
min-max spread over rounds, the ratios figures/no-figures, and checks that our scores equal the
17 published ones (to 4 decimals); never asserts on time.

The data (never committed): AlgoPerf v0.5 logs, targets and published scores, in the folder
given by --data (default: $ALGOPERF_DATA, else ../shared/data/algoperf beside the repository).

    python benchmarks/algoperf_scoring.py [--rounds 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("ALGOPERF_DATA", ROOT.parent / "shared/data/algoperf"))


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    archive = args.data / "algoperf_v05_logs.tar.xz"
    if not archive.exists():
        print(f"no AlgoPerf logs at {archive}: give --data DIR (or set ALGOPERF_DATA)")
        return 2
    python = sys.executable
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        logs = scratch / "logs"
        importing = [
            python, "-m", "harness.algoperf", "import", str(logs), "OUT",
            "--targets", str(args.data / "workload_targets_v05.json"),
            "--held-out", str(args.data / "held_out_workloads_algoperf_v05.json"),
        ]  # fmt: skip
        steps: dict[str, list[float]] = {
            "import": [],
            "report cold, no figures": [],
            "report warm, no figures": [],
            "report cold, figures": [],
            "report warm, figures": [],
        }
        kept = scratch / "kept"
        for round_number in range(args.rounds):
            out = scratch / f"out_{round_number}"
            steps["import"].append(timed([c if c != "OUT" else str(out) for c in importing]))
            runs = out / "algoperf_v0.5"
            report = [python, "-m", "harness.report", str(runs), "--algoperf", "--out"]
            steps["report cold, no figures"].append(
                timed([*report, str(kept), "--no-cache", "--no-figures"])
            )
            timed([*report, str(scratch / "warmup"), "--no-figures"])  # builds the cache
            steps["report warm, no figures"].append(timed([*report, str(kept), "--no-figures"]))
            steps["report cold, figures"].append(
                timed([*report, str(scratch / "figures"), "--no-cache"])
            )
            steps["report warm, figures"].append(timed([*report, str(scratch / "figures")]))
            if round_number < args.rounds - 1:
                shutil.rmtree(out)
        print(f"AlgoPerf v0.5 logs, {args.rounds} round(s); seconds: median [min, max]")
        for name, values in steps.items():
            print(
                f"  {name:26s} {statistics.median(values):7.1f} "
                f"[{min(values):.1f}, {max(values):.1f}]"
            )
        for state in ("cold", "warm"):
            ratios = [
                f / n
                for f, n in zip(
                    steps[f"report {state}, figures"],
                    steps[f"report {state}, no figures"],
                    strict=True,
                )
            ]
            print(
                f"  figures / no figures, {state}: {statistics.median(ratios):.2f} "
                f"[{min(ratios):.2f}, {max(ratios):.2f}]"
            )
        ours = pd.read_csv(kept / "leaderboard.csv").set_index(["ruleset", "submission"])
        published = pd.read_csv(args.data / "published_scores_v05.csv").set_index(
            ["ruleset", "submission"]
        )["published_score"]
        difference = (ours.loc[published.index, "score"] - published).abs()
        print(
            f"published scores: {len(published)}, reproduced to 4 decimals: "
            f"{int((difference < 5e-5).sum())}, largest difference {difference.max():.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
