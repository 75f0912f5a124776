"""Batched image augmentations: one tensor op per batch, never a per-sample Python loop.

Random numbers are drawn on the generator's device: a generator on the images' (CUDA) device
avoids a host-to-device copy, which would synchronise, at every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_translate(
    images: torch.Tensor,
    max_shift: int,
    generator: torch.Generator,
    fill: float = 0.0,
    padding_mode: str = "constant",
) -> torch.Tensor:
    """Shift each image by its own random offset in [-max_shift, max_shift]^2 (pad + crop).

    `padding_mode` "constant" pads with `fill`; "reflect" mirrors the border (CIFAR recipes).
    """
    n, _, height, width = images.shape
    if padding_mode == "constant":
        padded = F.pad(images, (max_shift,) * 4, value=fill)
    else:
        padded = F.pad(images, (max_shift,) * 4, mode=padding_mode)
    offsets = torch.randint(
        0, 2 * max_shift + 1, (2, n), generator=generator, device=generator.device
    ).to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # (n, height)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)  # (n, width)
    batch_index = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indexing over (batch, row, col) gathers all crops at once; channels stay a slice.
    crops = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]
    # contiguous(), not preserve_format: the contiguous operator rejects preserve_format, which
    # went unnoticed while only 1-channel images (already contiguous after the permute) came here.
    return crops.permute(0, 3, 1, 2).contiguous()


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the batch left-right."""
    flip = torch.rand(images.shape[0], generator=generator, device=generator.device)
    flip = flip.to(images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def random_cutout(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a size x size square at a random centre in each image (DeVries & Taylor, 2017).

    Centres are uniform over the image, so a square may be cut off by the border. Inputs are
    normalised, so zero is the mean pixel.
    """
    n, _, height, width = images.shape
    centres = torch.randint(
        0, height * width, (n,), generator=generator, device=generator.device
    ).to(images.device)
    top = (centres // width - size // 2)[:, None]
    left = (centres % width - size // 2)[:, None]
    rows = torch.arange(height, device=images.device)[None, :]
    cols = torch.arange(width, device=images.device)[None, :]
    inside_rows = (rows >= top) & (rows < top + size)  # (n, height)
    inside_cols = (cols >= left) & (cols < left + size)  # (n, width)
    inside = inside_rows[:, :, None] & inside_cols[:, None, :]
    return images.masked_fill(inside[:, None], 0.0)
