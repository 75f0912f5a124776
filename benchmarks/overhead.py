"""Harness overhead: time per training step through the harness vs a bare PyTorch loop.

Both sides use the same workload object (model, device-resident data and input pipeline),
batch size and optimizer (AdamW at the default hyperparameters and schedule of `adamw`).
Per-step time is (T(3n) - T(n)) / 2n for runs of n and 3n steps, which cancels the
once-per-run costs (initialisation, the first record write); the harness side also subtracts
its evaluation and logging time, which are off the clock by design. Rounds alternate
harness/bare in one process so that drift in machine speed hits both. Prints medians with
min-max spread; never asserts.

    python benchmarks/overhead.py [--steps 200] [--rounds 7] [--workloads digits friedman]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from harness.launch import prepare, standalone_record  # noqa: E402
from harness.runner import Runner, RunSettings  # noqa: E402
from harness.spec import LossType  # noqa: E402


def load(workload_name: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"workload={workload_name}", "submission=adamw"])
    workload, submission, hyperparameters = prepare(cfg)
    workload.setup(torch.device("cpu"))
    return workload, submission, hyperparameters


def harness_seconds(workload, submission, hyperparameters, steps: int) -> float:
    """Wall seconds of a harness run of `steps` steps, minus its evaluation and logging."""
    with tempfile.TemporaryDirectory() as run_dir:
        settings = RunSettings(
            seed=0,
            budget_sec=1e9,
            batch_size=workload.default_batch_size,
            max_steps=steps,
            progress="none",
        )
        workload.eval_every_steps = 10**9  # one evaluation, at the end, subtracted below
        runner = Runner(
            workload,
            submission,
            SimpleNamespace(**hyperparameters),
            settings,
            Path(run_dir),
            standalone_record(workload),
        )
        start = time.perf_counter()
        record = runner.run()
        total = time.perf_counter() - start
    return total - record.accumulated_eval_time - record.accumulated_logging_time


def bare_seconds(workload, submission, hyperparameters, steps: int) -> float:
    """Wall seconds of a plain loop: init, then `steps` x (batch, lr, forward, loss, backward,
    step). It follows the submission's learning-rate schedule because CPU step time depends on
    the values trained (a constant peak rate was ~7% slower per step on friedman)."""
    start = time.perf_counter()
    model, _ = workload.init_model_fn(rng=0)
    model.train()
    peak = hyperparameters["learning_rate"]
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=peak,
        betas=(hyperparameters["beta1"], hyperparameters["beta2"]),
        weight_decay=hyperparameters["weight_decay"],
    )
    queue = workload.build_input_queue(0, "train", workload.default_batch_size)
    classification = workload.loss_type == LossType.SOFTMAX_CROSS_ENTROPY
    for step in range(steps):
        batch = next(queue)
        for group in optimizer.param_groups:
            group["lr"] = peak * submission.schedule.factor(step, workload.step_hint)
        optimizer.zero_grad(set_to_none=True)
        output = model(batch["inputs"])
        if classification:
            loss = F.cross_entropy(
                output.reshape(-1, output.shape[-1]), batch["targets"].reshape(-1)
            )
        else:
            loss = F.mse_loss(output, batch["targets"])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def per_step(measure, steps: int) -> float:
    """Seconds per step with the once-per-run costs cancelled out."""
    return (measure(3 * steps) - measure(steps)) / (2 * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["digits", "shakespeare", "friedman"])
    parser.add_argument("--steps", type=int, default=200, help="steps per measurement")
    parser.add_argument("--rounds", type=int, default=7, help="alternating harness/bare pairs")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds, "
        f"runs of n and 3n steps (n={args.steps}, shakespeare n/10), AdamW, reference batch size"
    )
    print(f"{'workload':<12} {'harness ms/step':>24} {'bare ms/step':>24} {'ratio':>6}")
    for name in args.workloads:
        workload, submission, hyperparameters = load(name)
        steps = args.steps if name != "shakespeare" else max(20, args.steps // 10)
        harness_times, bare_times = [], []
        bare_seconds(workload, submission, hyperparameters, 5)  # warm-up (allocator, kernels)
        for _ in range(args.rounds):
            harness = functools.partial(harness_seconds, workload, submission, hyperparameters)
            harness_times.append(per_step(harness, steps))
            bare_times.append(
                per_step(
                    functools.partial(bare_seconds, workload, submission, hyperparameters), steps
                )
            )
        ratio = statistics.median(harness_times) / statistics.median(bare_times)
        print(f"{name:<12} {spread(harness_times):>24} {spread(bare_times):>24} {ratio:>6.3f}")


def spread(seconds: list[float]) -> str:
    """Median (min-max) in milliseconds."""
    ms = [1e3 * value for value in seconds]
    return f"{statistics.median(ms):.3f} ({min(ms):.3f}-{max(ms):.3f})"


if __name__ == "__main__":
    main()
