"""Weight averaging's cost per step: update_params of adamw with and without each averaging
(submission/averaging=...), and prepare_for_eval's swap, on an embedded workload's model.

The plain and averaged submissions train models of their own on the same batches, their steps
interleaved (a cloud VM's speed swings within seconds); per round the median averaged step
over the median plain step; printed: the median ratio over rounds with its min-max, and the
median time of prepare_for_eval (the average put into the model: on the clock). Never asserts.

    python benchmarks/averaging_overhead.py [--workload digits] [--steps 60] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from harness import environment  # noqa: E402
from harness.data import step_seed  # noqa: E402
from harness.launch import prepare  # noqa: E402


def build(workload_name: str, averaging: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[f"workload={workload_name}", f"submission/averaging={averaging}"],
        )
    workload, submission, hyperparameters = prepare(cfg)
    return workload, submission, SimpleNamespace(**hyperparameters)


class Side:
    def __init__(self, workload, submission, hyperparameters) -> None:
        self.workload, self.submission, self.hp = workload, submission, hyperparameters
        self.model, self.model_state = workload.init_model_fn(rng=0)
        self.types = workload.model_params_types(self.model)
        self.state = submission.init_optimizer_state(workload, self.model, None, self.hp, 0)

    def step(self, batch, step: int) -> float:
        start = time.perf_counter()
        self.state, self.model, self.model_state = self.submission.update_params(
            self.workload,
            self.model,
            self.types,
            self.model_state,
            self.hp,
            batch,
            self.workload.loss_type,
            self.state,
            [],
            step,
            step_seed(0, step),
        )
        return time.perf_counter() - start

    def prepare_for_eval(self, step: int) -> float:
        start = time.perf_counter()
        self.state, self.model, self.model_state = self.submission.prepare_for_eval(
            self.workload,
            self.model,
            self.types,
            self.model_state,
            self.hp,
            self.workload.loss_type,
            self.state,
            step,
            0,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="digits")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workload, _, _ = build(args.workload, "none")
    workload.setup(torch.device("cpu"))
    queue = workload.build_input_queue(0, "train", workload.default_batch_size)
    batches = [next(queue) for _ in range(args.steps)]
    print(
        f"{environment.cpu_model()}, {args.threads} thread(s), {args.workload}, adamw, "
        f"{args.steps} steps x {args.rounds} rounds"
    )
    print("averaging   step ratio: median [min-max]   plain step   prepare_for_eval")
    for averaging in ("ema", "switch_ema", "swa", "lawa"):
        ratios, plain_steps, swaps = [], [], []
        for _ in range(args.rounds):
            plain = Side(workload, *build(args.workload, "none")[1:])
            averaged = Side(workload, *build(args.workload, averaging)[1:])
            times = [(plain.step(b, s), averaged.step(b, s)) for s, b in enumerate(batches)]
            plain_median = statistics.median(t[0] for t in times)
            ratios.append(statistics.median(t[1] for t in times) / plain_median)
            plain_steps.append(plain_median)
            swaps.append(averaged.prepare_for_eval(args.steps))
        print(
            f"{averaging:<11} {statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]"
            f"        {1e3 * statistics.median(plain_steps):.2f} ms     "
            f"{1e3 * statistics.median(swaps):.3f} ms"
        )


if __name__ == "__main__":
    main()
