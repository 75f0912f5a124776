"""Fixtures shared by the test modules (helpers they call are in tests/helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.spec import Workload
from tests import fake_datasets
from tests.helpers import (
    EMBEDDED_WORKLOADS,
    PREEMPTIBLE,
    default_run_dir,
    run_in_process,
    tiny_workload,
)


@pytest.fixture(scope="session", autouse=True)
def offline_datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data folder holding small files in the real formats of the downloaded datasets, named
    by $OPTBENCH_DATA_DIR for the session (as a user would place them when offline)."""
    from workloads import datasets
    from workloads.image_classification import cifar

    folder = tmp_path_factory.mktemp("data")
    fake_datasets.write_cifar_archive(folder / cifar.ARCHIVE.filename)
    fake_datasets.write_california_cache(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(datasets.DATA_DIR_VARIABLE, str(folder))
        yield folder


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture(scope="session")
def tiny_workloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Workload]:
    """Each tiny embedded workload (helpers.TINY), set up once: loading data is the slow part."""
    folder = tmp_path_factory.mktemp("workloads")
    return {name: tiny_workload(name, folder) for name in EMBEDDED_WORKLOADS}


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of helpers.PREEMPTIBLE, never interrupted: what every interrupted and
    resumed run must end like (in this process; torch's thread count is restored)."""
    threads = torch.get_num_threads()
    results_dir = tmp_path_factory.mktemp("uninterrupted") / "results"
    try:
        run_in_process(PREEMPTIBLE, results_dir)
    finally:
        torch.set_num_threads(threads)
    return default_run_dir(results_dir)
