"""What the benchmarks share: a workload and adamw as a run builds them, and a short harness run
outside the results layout (one evaluation, at the end; no checkpoints)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from harness import results, runner  # noqa: E402
from harness.launch import prepare, standalone_record  # noqa: E402


def load(workload_name: str):
    """(workload on the CPU, adamw, its default hyperparameters)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"workload={workload_name}", "submission=adamw"])
    workload, submission, hyperparameters = prepare(cfg)
    workload.setup(torch.device("cpu"))
    return workload, submission, hyperparameters


def short_run(workload, submission, hyperparameters, steps: int) -> results.RunRecord:
    """A harness run of `steps` steps in a scratch folder, evaluated once, at the end."""
    with tempfile.TemporaryDirectory() as run_dir:
        settings = runner.RunSettings(
            seed=0,
            budget_sec=1e9,
            batch_size=workload.default_batch_size,
            max_steps=steps,
            progress="none",
            checkpoint=False,
        )
        workload.eval_every_steps = 10**9
        return runner.Runner(
            workload,
            submission,
            SimpleNamespace(**hyperparameters),
            settings,
            Path(run_dir),
            standalone_record(workload),
        ).run()
