"""Batched image augmentations: one tensor op per batch, never a per-sample Python loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_translate(
    images: torch.Tensor, max_shift: int, generator: torch.Generator, fill: float = 0.0
) -> torch.Tensor:
    """Shift each image by its own random offset in [-max_shift, max_shift]^2 (pad + crop)."""
    n, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # (n, height)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)  # (n, width)
    batch_index = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indexing over (batch, row, col) gathers all crops at once; channels stay a slice.
    crops = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous(memory_format=torch.preserve_format)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the batch left-right."""
    flip = torch.rand(images.shape[0], generator=generator).to(images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)
