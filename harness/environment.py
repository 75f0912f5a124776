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


def allotted_cpus() -> int:
    """CPUs this process may use: its affinity (a Slurm allocation's cgroup, `taskset`), capped by
    SLURM_CPUS_PER_TASK where Slurm sets it."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cpus = min(cpus or int(slurm), int(slurm))
    return max(1, cpus or 1)


def default_threads() -> tuple[int, str]:
    """torch's CPU threads when the config says `threads: null`, and where the number comes from:
    OMP_NUM_THREADS when set (our launchers set it to the CPUs of each task, so runs that share a
    machine divide it), else every CPU allotted to this process. Torch's own default counts the
    machine's cores, which on a shared node or a Slurm allocation oversubscribes the CPUs."""
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp), "OMP_NUM_THREADS"
    cpus = allotted_cpus()
    return cpus, f"the {cpus} CPU(s) allotted to this process"


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
