"""`algoperf.pytorch_utils` for PyTorch submission files, in one process or data-parallel.

`pytorch_setup()` answers as AlgoPerf's does: (USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS). One
process: (False, 0, the run's device, 1 on CUDA else 0). A data-parallel run (torchrun, or a
multi-task Slurm job; the harness has joined the process group before it loads the file):
(True, this process's rank, its device (cuda:<local rank> on CUDA), the GPUs visible to it).
The run's device is the harness's `device` setting (submissions/algoperf.py sets it with
`use_device` before it loads a file, so a file that computes `DEVICE` at import gets the device
the workload's tensors are on). Never initialises or tears down the process group itself.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

_device: torch.device | None = None


def use_device(device: torch.device | str) -> None:
    """The device `pytorch_setup` reports from now on."""
    global _device
    _device = torch.device(device)


def _data_parallel() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def pytorch_setup() -> tuple[bool, int, torch.device, int]:
    """(USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS) of this process."""
    device = _device
    if device is None:
        device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if _data_parallel():
        if device.type == "cuda":  # the harness has set each rank's own GPU
            device = torch.device("cuda", torch.cuda.current_device())
        return True, dist.get_rank(), device, torch.cuda.device_count()
    return False, 0, device, 1 if device.type == "cuda" else 0  # the one device the run uses


def pytorch_init(use_pytorch_ddp: bool, rank: int, profiler: Any = None) -> None:
    """Nothing to set up: the harness has joined the process group when there is one."""
    if use_pytorch_ddp and not _data_parallel():
        raise RuntimeError(
            "pytorch_init(use_pytorch_ddp=True) in a single process: start the run with "
            "torchrun --nproc_per_node=N for data parallelism"
        )


def sync_ddp_time(time: float, device: torch.device) -> float:
    """The largest of the ranks' times, as AlgoPerf's; one process: its own."""
    if not _data_parallel():
        return time
    value = torch.tensor(time, dtype=torch.float64, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return float(value)


def update_batch_norm_fn(module: nn.Module, update_batch_norm: bool) -> None:
    """Stop (or resume) the running-statistics update of a batch-norm module, for use with
    `model.apply(functools.partial(update_batch_norm_fn, update_batch_norm=...))`."""
    if not isinstance(module, nn.modules.batchnorm._BatchNorm):
        return
    if not update_batch_norm:
        if not hasattr(module, "momentum_backup"):
            module.momentum_backup = module.momentum
        module.momentum = 0.0
    elif hasattr(module, "momentum_backup"):
        module.momentum = module.momentum_backup
