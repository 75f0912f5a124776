"""Shared helpers: compose the real Hydra config and run it in-process, or run the CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from harness import config, launch

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
config.register()

# Small, fast settings that still exercise every code path (evaluation, checkpoint, record).
SMOKE = ["max_steps=6", "workload.eval_every_steps=3", "progress=none"]
# The workloads that need no network: every submission is exercised on each of them.
EMBEDDED_WORKLOADS = ["digits", "shakespeare", "friedman"]


def group_choices(group: str) -> list[str]:
    """Every YAML of a config group: tests parameterised over these cover new plug-ins."""
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def compose_config(overrides: list[str], results_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"results_dir={results_dir}", *overrides])


def run_in_process(overrides: list[str], results_dir: Path) -> dict:
    return launch.run(compose_config(overrides, results_dir))


def run_dir_of(record: dict, results_dir: Path) -> Path:
    return (
        results_dir
        / record["experiment_name"]
        / f"{record['ruleset']}/{record['submission']}/{record['workload']}"
        / f"study_{record['study']}/trial_{record['trial']}"
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python run.py ARGS` in a fresh process, as a user would type it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"
