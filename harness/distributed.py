"""Data parallelism over several processes: which process this is, the process group, and the
few collectives a data-parallel run needs (the step's outcome agreed by every rank, a value from
rank 0, this rank's share of a batch). docs/design.md, "Distributed runs", gives the semantics.

One process (world size 1) never touches torch.distributed, so a single run is unchanged.
Never reads the clock and never writes a file.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from harness.ranks import launched_ranks, local_world_size

# How long a rank waits for the others at a collective before the run fails: long enough for
# rank 0 to write a large checkpoint or promote a run folder, short enough not to hold a
# cluster allocation for hours when another rank died.
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank `rank` of `size` processes over `backend`."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # "gloo" or "nccl"; None for one process
    local_size: int = 1  # ranks on this machine

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes run files, logs and checkpoints."""
        return self.rank == 0


SINGLE = World()


def current() -> World:
    """The world this process belongs to (set up by `setup`); SINGLE without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    ranks = launched_ranks()
    local_rank = ranks[2] if ranks is not None else 0
    size = dist.get_world_size()
    return World(dist.get_rank(), size, local_rank, dist.get_backend(), local_world_size(size))


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the run's process group when this process is one of several (NCCL on CUDA, gloo on
    CPU) and return the world and this rank's device (cuda:<local rank> on CUDA)."""
    ranks = launched_ranks()
    if ranks is None:
        return SINGLE, device
    rank, size, local_rank = ranks
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:  # a Slurm task: submitit knows the first node
            from submitit.helpers import TorchDistributedEnvironment

            TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=size,
            timeout=TIMEOUT,
            device_id=device if device.type == "cuda" else None,
        )
    return current(), device


def collective_device(world: World) -> torch.device:
    """Where tensors for a collective live: NCCL needs the rank's GPU, gloo the CPU."""
    if world.backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@dataclass(frozen=True)
class StepOutcome:
    """What every rank agrees on after a step, so all take the same decisions."""

    seconds: float  # rank 0's submission time of the step: the run's
    loss: float | None  # the mean over ranks of the step's training loss
    signal: int | None  # a termination signal any rank received (the largest number)
    training_complete: bool  # any rank's submission ended training


def agree(
    world: World, seconds: float, loss: float | None, signal: int | None, complete: bool
) -> StepOutcome:
    """One all-gather of four numbers per step (off the clock): rank 0's time, the mean loss,
    any rank's signal and any rank's end of training."""
    if not world.distributed:
        return StepOutcome(seconds, loss, signal, complete)
    mine = torch.tensor(
        [
            seconds,
            math.nan if loss is None else loss,
            float(loss is not None),
            float(signal or 0),
            float(complete),
        ],
        dtype=torch.float64,
        device=collective_device(world),
    )
    gathered = [torch.empty_like(mine) for _ in range(world.size)]
    dist.all_gather(gathered, mine)
    table = torch.stack(gathered).cpu()
    has_loss = bool(table[:, 2].all())
    loss_mean = float(table[:, 1].mean()) if has_loss else None
    signal_agreed = int(table[:, 3].max())
    return StepOutcome(
        seconds=float(table[0, 0]),
        loss=loss_mean,
        signal=signal_agreed or None,
        training_complete=bool(table[:, 4].any()),
    )


def from_rank0(world: World, value: Any) -> Any:
    """Rank 0's `value` on every rank (any picklable object); `value` itself for one process."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=collective_device(world))
    return box[0]


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def shard(batch: Mapping[str, torch.Tensor], world: World | None = None) -> dict[str, Any]:
    """This rank's share of a batch: the `rank`-th of `size` consecutive parts along the first
    dimension (views, no copy). Parts of a batch of B examples are as equal as can be (the first
    B mod size parts one larger; some empty when B < size). One process: the batch itself."""
    world = current() if world is None else world
    if not world.distributed:
        return dict(batch)
    return {key: value.tensor_split(world.size)[world.rank] for key, value in batch.items()}


def sharded_queue(queue: Iterator[dict], world: World) -> Iterator[dict]:
    """The training input queue of this rank: each global batch's `rank`-th part. Every rank
    builds the same global batch of the step (it depends only on seed and step), so shards are
    disjoint, cover the batch, and match what one process would have trained on."""
    if not world.distributed:
        return queue
    return (shard(batch, world) for batch in queue)


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of `values` over the ranks of the current world (evaluation sums)."""
    world = current()
    if not world.distributed:
        return values
    summed = values.to(collective_device(world), torch.float64)
    dist.all_reduce(summed)
    return summed.to(values.device)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (the model itself otherwise): what
    checkpoints hold, so they load into a run of any number of processes."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.module
    return model


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The model as the submission sees it: wrapped in DistributedDataParallel (gradients
    averaged over the ranks in backward) when there are several ranks, itself otherwise."""
    if not world.distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
