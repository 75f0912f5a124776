"""CUDA speed settings of the full-size workloads: bfloat16 autocast, channels_last, torch.compile.

Autocast and channels_last apply on CUDA only, so CPU runs (and the tests) are unchanged by
them; compile is off by default and applies wherever it is switched on. This module never moves
data between devices and never reads the clock: `torch.compile` compiles lazily, inside the
first training step, which is on the clock (docs/design.md, "The clock"), and again at the first
evaluation, which is off it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Acceleration:
    device: torch.device
    bf16: bool = True  # autocast matmuls and convolutions to bfloat16
    channels_last: bool = False  # NHWC memory layout for convolutional nets
    compile: bool = False  # torch.compile the model in place (nn.Module.compile)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def input_dtype(self) -> torch.dtype:
        """Dtype to store device-resident float inputs in: half the memory under autocast."""
        return torch.bfloat16 if self.on_cuda and self.bf16 else torch.float32

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.on_cuda and self.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Layout and compilation; parameter names (and so checkpoints) stay as they were."""
        if self.on_cuda and self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.compile:
            model.compile(dynamic=False)
        return model

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        if self.on_cuda and self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images
