"""`algoperf.pytorch_utils` for single-process PyTorch submission files.

`pytorch_setup()` answers as AlgoPerf's does for one process without DDP: (False, 0, the run's
device, the number of visible GPUs). The run's device is the harness's `device` setting
(submissions/algoperf.py sets it with `use_device` before it loads a file, so a file that
computes `DEVICE` at import gets the device the workload's tensors are on).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_device: torch.device | None = None


def use_device(device: torch.device | str) -> None:
    """The device `pytorch_setup` reports from now on."""
    global _device
    _device = torch.device(device)


def pytorch_setup() -> tuple[bool, int, torch.device, int]:
    """(USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS) of this single process."""
    device = _device
    if device is None:
        device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return False, 0, device, 1 if device.type == "cuda" else 0  # the one device the run uses


def pytorch_init(use_pytorch_ddp: bool, rank: int, profiler: Any = None) -> None:
    """Nothing to set up for one process without DDP."""
    if use_pytorch_ddp:
        raise RuntimeError("the harness runs one process; DDP is not supported")


def sync_ddp_time(time: float, device: torch.device) -> float:
    """One process: its own clock is the synchronised one."""
    return time


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
