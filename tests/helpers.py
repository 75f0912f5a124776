"""Build a Runner directly from the real configs, for tests that need to reach inside a run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from harness.launch import prepare
from harness.runner import Runner, RunSettings
from tests.conftest import compose_config


def make_runner(overrides: list[str], run_dir: Path, **settings) -> Runner:
    cfg = compose_config(overrides, run_dir.parent)
    workload, submission, hyperparameters = prepare(cfg)
    workload.setup(torch.device("cpu"))
    torch.manual_seed(0)
    defaults = dict(
        seed=0, budget_sec=600.0, batch_size=workload.default_batch_size, progress="none"
    )
    return Runner(
        workload,
        submission,
        SimpleNamespace(**hyperparameters),
        RunSettings(**{**defaults, **settings}),
        run_dir,
        record_base={"target": workload.describe(), "seed": 0},
    )
