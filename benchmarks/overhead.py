"""Harness overhead: time per training step through the harness vs a bare PyTorch loop.

Both sides use the same workload (model, device-resident data and input pipeline), batch size
and optimizer (AdamW at the default hyperparameters and schedule of `adamw`), each with its own
model and optimizer. A cloud VM's speed swings by tens of percent within seconds, more than the
difference sought, so the two are measured step by step, interleaved: each harness step first
runs one bare step (timed on its own) from inside data selection, and the harness's progress
hook, which the runner calls once per step after the step and its bookkeeping, stamps the time.
A harness step is the time between two stamps minus the bare step inside it: data, update,
clock reads, divergence check, progress; not evaluation or the speed index (one evaluation, at
the end). Per round (one harness run): the median harness step over the median bare step;
printed: the median of the rounds' ratios with their min-max, and the per-step medians.

The method has a floor of its own: with a second bare step in place of the harness's update
(and no harness batch), the runner costs ~4 us a step, yet the ratio comes out ~1.02 on
friedman, the smallest step. The `A/A` column measures that floor the same way, in the same run,
and `harness / A/A` is the harness's cost over it. Never asserts.

    python benchmarks/overhead.py [--steps 100] [--rounds 7] [--threads 1] [--workloads digits]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import load, short_run  # noqa: E402

from harness import environment, runner  # noqa: E402
from harness.progress import Progress  # noqa: E402
from harness.spec import LossType  # noqa: E402


class BareLoop:
    """A plain loop: (batch, lr, forward, loss, backward, step). It follows the submission's
    learning-rate schedule because CPU step time depends on the values trained (a constant peak
    rate was ~7% slower per step on friedman)."""

    def __init__(self, workload, submission, hyperparameters):
        self.workload, self.schedule = workload, submission.schedule
        self.model, _ = workload.init_model_fn(rng=1)
        self.model.train()
        self.peak = hyperparameters["learning_rate"]
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=self.peak,
            betas=(hyperparameters["beta1"], hyperparameters["beta2"]),
            weight_decay=hyperparameters["weight_decay"],
        )
        self.queue = workload.build_input_queue(1, "train", workload.default_batch_size)
        self.classification = workload.loss_type == LossType.SOFTMAX_CROSS_ENTROPY
        self.global_step = 0

    def step(self) -> None:
        batch = next(self.queue)
        factor = self.schedule.factor(self.global_step, self.workload.step_hint)
        for group in self.optimizer.param_groups:
            group["lr"] = self.peak * factor
        self.optimizer.zero_grad(set_to_none=True)
        output = self.model(batch["inputs"])
        if self.classification:
            loss = F.cross_entropy(
                output.reshape(-1, output.shape[-1]), batch["targets"].reshape(-1)
            )
        else:
            loss = F.mse_loss(output, batch["targets"])
        loss.backward()
        self.optimizer.step()
        self.global_step += 1

    def timed_step(self) -> float:
        """Seconds of one step, with the freeing of its tensors when it returns (timed inside,
        that cost would fall on the harness step after it: +1.7% on friedman in an A/A test)."""
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start


class StampingProgress(Progress):
    """The runner's progress display, replaced by one that only notes when each step ended."""

    stamps: ClassVar[list[float]] = []

    def __init__(self, *args, **kwargs):
        super().__init__("none", *args[1:], **kwargs)

    def step(self, global_step: int, submission_time: float, loss: float | None) -> None:
        StampingProgress.stamps.append(time.perf_counter())


def interleaved(
    workload, submission, hyperparameters, steps: int, a_a: bool = False
) -> tuple[float, float]:
    """(median harness step, median bare step) in seconds, over `steps` interleaved pairs (the
    first pair dropped: warm-up). `a_a`: the harness's update is a second bare step."""
    bare = BareLoop(workload, submission, hyperparameters)
    bare_times: list[float] = []
    select = submission.data_selection

    def data_selection(*args, **kwargs):
        bare_times.append(bare.timed_step())
        return None if a_a else select(*args, **kwargs)

    if a_a:
        other = BareLoop(workload, submission, hyperparameters)

        def update_params(*args, **kwargs):
            other.step()
            submission.last_loss = 1.0
            return args[7], args[1], args[3]  # optimizer_state, model, model_state

        submission.update_params = update_params
    StampingProgress.stamps = []
    runner.Progress, submission.data_selection = StampingProgress, data_selection
    try:
        short_run(workload, submission, hyperparameters, steps + 1)  # evaluates after the stamps
    finally:
        runner.Progress = Progress
        del submission.data_selection
        if a_a:
            del submission.update_params
    stamps = StampingProgress.stamps
    harness = [
        (after - before) - inside
        for before, after, inside in zip(stamps, stamps[1:], bare_times[1:], strict=False)
    ]
    return statistics.median(harness), statistics.median(bare_times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["digits", "shakespeare", "friedman"])
    parser.add_argument("--steps", type=int, default=100, help="interleaved steps per round")
    parser.add_argument("--rounds", type=int, default=7, help="harness runs per workload")
    parser.add_argument("--threads", type=int, help="torch threads (default: the run default)")
    args = parser.parse_args()
    threads = args.threads or environment.default_threads()[0]
    torch.set_num_threads(threads)
    print(
        f"{environment.hardware_fingerprint(torch.device('cpu'))}, torch {torch.__version__}, "
        f"{args.rounds} rounds of {args.steps} interleaved steps (friedman: 5x as many), "
        "AdamW, reference batch size"
    )
    print(
        f"{'workload':<12} {'harness ms/step':>22} {'bare ms/step':>22} "
        f"{'harness/bare: median (min-max)':>31} {'A/A':>21} {'harness / A/A':>13}"
    )
    for name in args.workloads:
        workload, submission, hyperparameters = load(name)
        steps = 5 * args.steps if name == "friedman" else args.steps
        interleaved(workload, submission, hyperparameters, 5)  # warm-up
        pairs, floor = [], []
        for _ in range(args.rounds):  # alternating, so that drift hits both alike
            pairs.append(interleaved(workload, submission, hyperparameters, steps))
            h, b = interleaved(workload, submission, hyperparameters, steps, a_a=True)
            floor.append(h / b)
        harness, bare = [h for h, _ in pairs], [b for _, b in pairs]
        ratios = [h / b for h, b in pairs]
        print(
            f"{name:<12} {spread(harness):>22} {spread(bare):>22} {median_range(ratios):>31} "
            f"{median_range(floor):>21} "
            f"{statistics.median(ratios) / statistics.median(floor):>13.3f}"
        )


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def spread(seconds: list[float]) -> str:
    """Median (min-max) in milliseconds."""
    ms = [1e3 * value for value in seconds]
    return f"{statistics.median(ms):.3f} ({min(ms):.3f}-{max(ms):.3f})"


if __name__ == "__main__":
    main()
