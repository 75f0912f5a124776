"""Which process of a data-parallel run this is, read from the environment alone: torchrun's
variables, or a task of a multi-task Slurm job that submitit started. Light on purpose (no
torch): run.py asks it before a run starts. Never joins a process group (harness/distributed.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def launched_ranks(environ: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when this process is one of several of one run: started
    by torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or a task of a multi-task Slurm job submitted by
    submitit (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID); None for a single process."""
    env = os.environ if environ is None else environ
    if int(env.get("WORLD_SIZE") or 1) > 1:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK") or 0)
    if env.get("SUBMITIT_EXECUTOR") == "slurm" and int(env.get("SLURM_NTASKS") or 1) > 1:
        return (
            int(env["SLURM_PROCID"]),
            int(env["SLURM_NTASKS"]),
            int(env.get("SLURM_LOCALID") or 0),
        )
    return None


def local_world_size(world_size: int, environ: Mapping[str, str] | None = None) -> int:
    """How many of the run's `world_size` ranks share this machine (torchrun's
    LOCAL_WORLD_SIZE; Slurm's tasks per node; else all of them)."""
    env = os.environ if environ is None else environ
    for key in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = env.get(key, "").split("(")[0]  # Slurm may say "2(x3)": 2 on each of 3 nodes
        if value.isdigit() and int(value) > 0:
            return min(int(value), world_size)
    nodes = env.get("SLURM_JOB_NUM_NODES", "")
    return max(1, world_size // int(nodes)) if nodes.isdigit() and int(nodes) > 0 else world_size


def is_secondary_rank(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is a rank other than 0 of a data-parallel run: it writes no run
    files and no log file (rank 0 does)."""
    ranks = launched_ranks(environ)
    return ranks is not None and ranks[0] != 0


# Hydra settings of a rank other than 0: no `.hydra/` folder and no run.log in the run folder
# (rank 0 writes them), log lines on the terminal only.
SECONDARY_RANK_OVERRIDES = ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
