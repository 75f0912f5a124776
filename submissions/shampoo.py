"""Shampoo (Gupta et al., 2018) from pytorch_optimizer, with its preconditioners warmed up.

The library starts every inverse root at zero and first computes it when the step count is a
multiple of `preconditioning_compute_steps` (k), so for the first k-1 steps its update is zero
and the parameters do not move. Computing the roots once at step 1 instead is worse: they come
from a single rank-one statistic, amplify every other direction by matrix_eps^(-1/4) for k
steps, and overshoot. So this subclass also computes them at steps 1, 2, 4, 8, ... below k,
while the statistics are young and change fastest (a few SVDs more per factor, not k), then
every k steps as the library does. Never reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_optimizer
import torch


def is_warmup_step(step: int, every: int) -> bool:
    """Steps 1, 2, 4, 8, ... below `every` (the library counts steps from 1)."""
    return step < every and step & (step - 1) == 0


class Shampoo(pytorch_optimizer.Shampoo):
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        every = self.preconditioning_compute_steps
        upcoming = [group.get("step", 0) + 1 for group in self.param_groups]
        if all(is_warmup_step(step, every) for step in upcoming):
            self.preconditioning_compute_steps = 1  # the library reads it inside step()
        try:
            return super().step(closure)
        finally:
            self.preconditioning_compute_steps = every
