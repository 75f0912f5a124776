"""This machine's speed index per workload, its noise, and how well it predicts the step time.

For each workload: the speed index (harness/speed.py) read --readings times as a run reads it at
its start, then the harness's time per training step (AdamW at its defaults, --steps steps, on
the clock), then the index again. Prints the median index with its min-max and coefficient of
variation, the reference index of the workload's YAML and the budget a run would get here, and
index x seconds/step: if the index tracks the step time, that product is about the same on
every machine, which is what makes budget scaling and --normalize fair. Never asserts.

    python benchmarks/speed_index.py [--workloads digits friedman] [--steps 200] [--readings 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import load, short_run  # noqa: E402

from harness import environment, speed  # noqa: E402

EMBEDDED = [
    "digits",
    "digits_gelu",
    "digits_narrow",
    "friedman",
    "friedman_deep",
    "friedman_tanh",
    "shakespeare",
    "shakespeare_relu",
    "shakespeare_rmsnorm",
]


def seconds_per_step(workload, submission, hyperparameters, steps: int) -> float:
    record = short_run(workload, submission, hyperparameters, steps)
    return record.accumulated_submission_time / record.global_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=EMBEDDED)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--readings", type=int, default=10)
    args = parser.parse_args()
    threads, _ = environment.default_threads()
    torch.set_num_threads(threads)
    print(f"{environment.hardware_fingerprint(torch.device('cpu'))}, torch {torch.__version__}")
    print(
        f"{'workload':<20} {'index (min-max)':>24} {'cv':>6} {'reference':>10} "
        f"{'budget here':>12} {'ms/step':>8} {'index x s/step':>15}"
    )
    for name in args.workloads:
        workload, submission, hyperparameters = load(name)
        probe = speed.SpeedProbe(workload, workload.default_batch_size, seed=0)
        readings = [probe.measure(speed.REPEATS_AT_START) for _ in range(args.readings // 2)]
        step = seconds_per_step(workload, submission, hyperparameters, args.steps)
        readings += [probe.measure(speed.REPEATS_AT_START) for _ in range(args.readings // 2)]
        index = statistics.median(readings)
        cv = statistics.stdev(readings) / statistics.mean(readings)
        reference = workload.reference_speed_index
        budget = workload.max_allowed_runtime_sec
        if reference is not None and workload.scale_budget:
            budget *= reference / index
        print(
            f"{name:<20} {f'{index:.4g} ({min(readings):.4g}-{max(readings):.4g})':>24} "
            f"{cv:>6.1%} {reference or float('nan'):>10.4g} {budget:>11.1f}s "
            f"{1e3 * step:>8.2f} {index * step:>15.3f}"
        )


if __name__ == "__main__":
    main()
