"""CIFAR-10 time-to-target on a GPU: through the harness, and through a bare loop, side by side.

For each seed, alternately: (a) the harness, exactly as `python run.py submission=S workload=W
seed=K` runs it (fixed ruleset, checkpoints at each evaluation), reading time_to_target and
steps_to_target from its record; (b) a bare PyTorch loop over the same workload object (same
device-resident data and batched augmentation, same net with bf16 autocast and channels_last,
same optimizer built by the submission's init_optimizer_state, same schedule, same seed), timed
the same way: CUDA synchronised around each step, evaluation every eval_every_steps off the
clock, stop at the first evaluation that meets the target. Prints one row per seed and medians
with min-max spread; never asserts. Compare with the published CIFAR-10 speed runs (94% in
3.29 s on an A100 for airbench94, a different net and recipe; 79 s on a V100 for ResNet-9).

    python benchmarks/cifar_gpu.py --seeds 3
    python benchmarks/cifar_gpu.py --seeds 3 -- workload.compile=true
    python benchmarks/cifar_gpu.py --workload cifar_resnet18 --submission sgd_nesterov --seeds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from harness import environment, launch  # noqa: E402


def compose_run(args: argparse.Namespace, seed: int, results_dir: str):
    overrides = [
        f"workload={args.workload}",
        f"submission={args.submission}",
        f"seed={seed}",
        f"device={args.device}",
        f"results_dir={results_dir}",
        "experiment_name=cifar_gpu",
        "progress=none",
        "force=true",
        *args.overrides,
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def harness_run(args: argparse.Namespace, seed: int) -> tuple[float | None, int | None]:
    with tempfile.TemporaryDirectory() as results_dir:
        record = launch.run(compose_run(args, seed, results_dir))
    return record.time_to_target, record.steps_to_target


def bare_run(workload, cfg, hyperparameters, batch_size, seed, device, budget_sec: float):
    """(time_to_target or None, steps_to_target or None) of a plain training loop.

    The optimizer is the submission's class with its hyperparameters as keyword arguments
    (so a submission such as sgd_nesterov, whose hyperparameters are SGD's own), and the
    schedule is the submission's schedule config.
    """
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(seed)
    model, _ = workload.init_model_fn(rng=seed)
    options = dict(hyperparameters)
    learning_rate = options.pop("learning_rate")
    label_smoothing = options.pop("label_smoothing", 0.0)
    optimizer = instantiate(cfg.submission.optimizer)(
        model.parameters(), lr=learning_rate, **options
    )
    schedule = instantiate(cfg.submission.schedule)
    queue = workload.build_input_queue(seed, "train", batch_size)
    acceleration = workload.acceleration
    elapsed, step = 0.0, 0
    model.train()
    while elapsed < budget_sec:
        synchronize()
        start = time.perf_counter()
        batch = next(queue)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * schedule.factor(step, workload.step_hint)
        optimizer.zero_grad(set_to_none=True)
        with acceleration.autocast():
            logits = model(acceleration.prepare_images(batch["inputs"]))
        loss = F.cross_entropy(logits.float(), batch["targets"], label_smoothing=label_smoothing)
        loss.backward()
        optimizer.step()
        synchronize()
        elapsed += time.perf_counter() - start
        step += 1
        if step % workload.eval_every_steps == 0:
            metrics = workload.eval_model(model, None, rng=seed)  # switches to eval mode
            model.train()
            if workload.has_reached_validation_target(metrics):
                return elapsed, step
    return None, None


def spread(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def show(value: float | int | None, digits: int = 2) -> str:
    return "inf" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="cifar")
    parser.add_argument("--submission", default="sgd_nesterov")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..n-1, each run both ways")
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both sides, after --")
    args = parser.parse_args()

    cfg = compose_run(args, 0, tempfile.gettempdir())
    workload, submission, hyperparameters = launch.prepare(cfg)
    batch_size = submission.get_batch_size(workload.name) or workload.default_batch_size
    device = environment.resolve_device(cfg.device)
    workload.setup(device)
    budget = workload.max_allowed_runtime_sec * cfg.ruleset.budget_factor
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{name}, torch {torch.__version__}, {args.workload} (target "
        f"{workload.validation_target_value}), {args.submission} {hyperparameters}, "
        f"overrides {args.overrides or 'none'}, n={args.seeds}"
    )
    bare_run(workload, cfg, hyperparameters, batch_size, 0, device, budget_sec=0.5)  # warm-up
    print(f"{'seed':>4} {'harness s':>10} {'steps':>6} {'bare s':>10} {'steps':>6}")
    harness_times, bare_times = [], []
    for seed in range(args.seeds):
        harness_time, harness_steps = harness_run(args, seed)
        bare_time, bare_steps = bare_run(
            workload, cfg, hyperparameters, batch_size, seed, device, budget
        )
        print(
            f"{seed:>4} {show(harness_time):>10} {show(harness_steps, 0):>6} "
            f"{show(bare_time):>10} {show(bare_steps, 0):>6}",
            flush=True,
        )
        if harness_time is not None and bare_time is not None:
            harness_times.append(harness_time)
            bare_times.append(bare_time)
    ratio = (
        f"{statistics.median(harness_times) / statistics.median(bare_times):.3f}"
        if harness_times
        else "—"
    )
    print(
        f"time-to-target median (min-max) over seeds that both reached: harness "
        f"{spread(harness_times)} s, bare {spread(bare_times)} s, ratio {ratio}"
    )


if __name__ == "__main__":
    main()
