"""One run on 1 process against the same run data-parallel over all GPUs: time-to-target and steps.

For each seed and each number of processes P (default: 1 and every visible GPU), runs
`torchrun --nproc_per_node=P run.py workload=W submission=S seed=K` exactly as a user would
(P = 1: `python run.py`), in a fresh results folder, and reads time_to_target, steps_to_target
and the final validation metric from its record (docs/design.md, "Distributed runs": the global
batch is the submission's at every P, so steps-to-target should agree and time-to-target should
shrink). Prints the device, one row per run, and per P the median with min-max spread and the
speed-up over P = 1; never asserts.

    python benchmarks/data_parallel.py --seeds 3                       # cifar, 1 vs all GPUs
    python benchmarks/data_parallel.py --processes 1,2,4,8 --seeds 2
    python benchmarks/data_parallel.py --workload friedman --device cpu --processes 1,2 \\
        --seeds 1 -- max_steps=200                                     # a smoke test on CPU

cifar needs its dataset in the cache (`python run.py workload=cifar max_steps=1` downloads it;
offline, put cifar-10-python.tar.gz where its error message says).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return "cpu"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_run(args: argparse.Namespace, processes: int, seed: int) -> dict:
    """The record of one run over `processes` processes."""
    with tempfile.TemporaryDirectory() as results_dir:
        settings = [
            f"workload={args.workload}",
            f"submission={args.submission}",
            f"seed={seed}",
            f"device={args.device}",
            f"results_dir={results_dir}",
            "progress=none",
            *args.overrides,
        ]
        if processes == 1:
            command = [sys.executable, str(ROOT / "run.py"), *settings]
        else:
            command = [sys.executable, "-m", "torch.distributed.run"]
            command += [f"--nproc_per_node={processes}", f"--master_port={free_port()}"]
            command += [str(ROOT / "run.py"), *settings]
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
        records = list(Path(results_dir).rglob("record.json"))
        if done.returncode != 0 or len(records) != 1:
            print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"the run over {processes} process(es) failed ({done.returncode})")
        return json.loads(records[0].read_text())


def spread(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="cifar")
    parser.add_argument("--submission", default="sgd_nesterov")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--processes", default=None, help="e.g. 1,8 (default: 1 and all GPUs)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="more settings for run.py, after --")
    args = parser.parse_args()
    if args.processes is None:
        import torch

        gpus = torch.cuda.device_count() if args.device != "cpu" else 1
        counts = sorted({1, max(1, gpus)})
    else:
        counts = [int(p) for p in args.processes.split(",")]

    print(f"# {args.submission} on {args.workload}, device {device_name(args.device)}")
    print("processes  seed  status       time_to_target_s  steps_to_target  final_metric")
    times: dict[int, list[float]] = {p: [] for p in counts}
    steps: dict[int, list[float]] = {p: [] for p in counts}
    for seed in range(args.seeds):
        for processes in counts:  # alternately, so a drift of the machine hits all alike
            record = one_run(args, processes, seed)
            if record["time_to_target"] is not None:
                times[processes].append(record["time_to_target"])
                steps[processes].append(record["steps_to_target"])
            print(
                f"{processes:>9}  {seed:>4}  {record['status']:<11}  "
                f"{record['time_to_target'] or float('inf'):>16.2f}  "
                f"{record['steps_to_target'] or '-':>15}  {record['final_validation_metric']:.4f}"
            )
    print(
        "\nprocesses  reached  time_to_target_s median (min-max)  steps median (min-max)  speed-up"
    )
    base = statistics.median(times[counts[0]]) if times[counts[0]] else None
    for processes in counts:
        median = statistics.median(times[processes]) if times[processes] else None
        speedup = f"{base / median:.2f}x" if base and median else "—"
        print(
            f"{processes:>9}  {len(times[processes])}/{args.seeds:<5}  "
            f"{spread(times[processes]):>33}  {spread(steps[processes]):>22}  {speedup:>8}"
        )


if __name__ == "__main__":
    main()
