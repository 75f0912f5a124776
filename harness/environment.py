"""Where a run ran: hardware fingerprint, package versions, git commit.

Runs from different fingerprints are never mixed silently in one leaderboard, so the
fingerprint names what decides speed (device model and count, CPU threads) and nothing else.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

PACKAGES = ("torch", "numpy", "hydra-core", "pytorch-optimizer", "schedulefree", "scikit-learn")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name} but CUDA is not available here; use device=cpu or auto")
    return device


def hardware_fingerprint(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{cpu_model()} x{torch.get_num_threads()} threads"


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


@functools.cache
def git_commit() -> str | None:
    """HEAD of the project's checkout, with "-dirty" when tracked files are modified."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def slurm_job_id() -> str | None:
    """The job as squeue, scontrol and scancel name it: 123_4 for task 4 of job array 123 (its
    own SLURM_JOB_ID alone may equal 123, which names the whole array)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def describe(device: torch.device) -> dict:
    """The provenance fields of a run record (harness/results.py's RunRecord)."""
    return {
        "hardware": hardware_fingerprint(device),
        "device": str(device),
        "host": platform.node(),
        "slurm_job_id": slurm_job_id(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
