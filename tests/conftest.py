"""Shared helpers: compose the real Hydra config and run it in-process, or run the CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
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


# Full-size workloads and the variants of the embedded ones run the tests at CPU size: a
# smaller batch, evaluation set or width, never another code path. Keyed by workload class; the
# embedded defaults (EMBEDDED_WORKLOADS) run as they are, and an explicit override wins.
# tests/test_datasets.py takes a training step with each full-size model.
CPU_TEST_SIZE = {
    "workloads.image_classification.cifar.CifarWorkload": [
        "workload.batch_size=16",
        "workload.width=8",
    ],
    "workloads.language_model.lm.LanguageModelWorkload": [
        "workload.batch_size=4",
        "workload.context_length=64",
        "workload.width=64",
        "workload.depth=1",
        "workload.num_heads=2",
        "workload.eval_tokens=1024",
    ],
    "workloads.language_model.shakespeare.ShakespeareWorkload": [
        "workload.batch_size=8",
        "workload.eval_tokens=2048",
    ],
}


def compose_config(overrides: list[str], results_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"results_dir={results_dir}", *overrides])
        if cfg.workload.name in EMBEDDED_WORKLOADS:
            return cfg
        given = {override.split("=", 1)[0] for override in overrides}
        smaller = [
            override
            for override in CPU_TEST_SIZE.get(cfg.workload.get("_target_"), [])
            if override.split("=", 1)[0] not in given
        ]
        if not smaller:
            return cfg
        return compose("config", overrides=[f"results_dir={results_dir}", *smaller, *overrides])


@pytest.fixture(scope="session", autouse=True)
def offline_datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data folder holding small files in the real formats of the downloaded datasets, named
    by $OPTBENCH_DATA_DIR for the session (as a user would place them when offline)."""
    from tests import fake_datasets
    from workloads import datasets
    from workloads.image_classification import cifar

    folder = tmp_path_factory.mktemp("data")
    fake_datasets.write_cifar_archive(folder / cifar.ARCHIVE.filename)
    fake_datasets.write_california_cache(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(datasets.DATA_DIR_VARIABLE, str(folder))
        yield folder


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
