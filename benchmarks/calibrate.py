"""Calibrate a workload's target and budget: time- and steps-to-target over several seeds.

Runs one submission on one workload for n seeds (studies 0..n-1, ruleset fixed) in this
process and prints reached k/n, median (min-max) time-to-target and steps-to-target. Steps
do not depend on machine load; times do, so calibrate times on a quiet machine.

    python benchmarks/calibrate.py workload=digits submission=adamw --seeds 5
    python benchmarks/calibrate.py workload=digits submission=sgd --seeds 3 -- workload.target=0.97
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from harness import launch  # noqa: E402


def run_seed(overrides: list[str], study: int, results_dir: Path) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *overrides,
                f"study={study}",
                f"results_dir={results_dir}",
                "experiment_name=calibration",
                "progress=none",
                "checkpoint=false",
            ],
        )
    return launch.run(cfg)


def describe(values: list[float], unit: str = "", digits: int = 4) -> str:
    """Median (min-max) with `digits` significant digits."""
    if not values:
        return "—"
    median, low, high = (
        f"{v:.{digits}g}" for v in (statistics.median(values), min(values), max(values))
    )
    return f"{median} ({low}-{high}){unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. workload=digits")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (studies)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as results_dir:
        records = [run_seed(args.overrides, k, Path(results_dir)) for k in range(args.seeds)]
    reached = [r for r in records if r.status == "reached"]
    times = [r.time_to_target for r in reached]
    steps = [float(r.steps_to_target) for r in reached]
    finals = [r.final_validation_metric for r in records if r.final_validation_metric]
    print(
        f"{' '.join(args.overrides)}: reached {len(reached)}/{len(records)} | "
        f"time_to_target {describe(times, ' s')} | steps_to_target {describe(steps, '')} | "
        f"final metric {describe(finals)} | statuses {[r.status for r in records]} | "
        f"hardware {records[0].hardware}"
    )


if __name__ == "__main__":
    main()
