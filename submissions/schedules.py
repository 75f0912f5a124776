"""Learning-rate schedules: pure functions of the step, so a resumed run needs no schedule state.

Each returns the multiplier of the base learning rate at `step` of a run whose schedule
spans `total_steps` (the workload's step_hint). Past the end the last value is kept.
A schedule field (e.g. `warmup_fraction`) may also be a tuned hyperparameter of the
submission: the generic submission passes hyperparameters of the same name through.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


@dataclass(frozen=True)
class Schedule:
    """Base class: subclasses implement `factor` and add their own fields."""

    def factor(self, step: int, total_steps: int) -> float:
        raise NotImplementedError

    def with_values(self, **values: float) -> Schedule:
        return dataclasses.replace(self, **values)

    @classmethod
    def field_names(cls) -> set[str]:
        return {field.name for field in dataclasses.fields(cls)}


@dataclass(frozen=True)
class Constant(Schedule):
    warmup_fraction: float = 0.0  # linear warmup over this fraction of the steps

    def factor(self, step: int, total_steps: int) -> float:
        return _warmup(step, round(self.warmup_fraction * total_steps))


@dataclass(frozen=True)
class WarmupCosine(Schedule):
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.0  # final learning rate as a fraction of the peak

    def factor(self, step: int, total_steps: int) -> float:
        warmup_steps = round(self.warmup_fraction * total_steps)
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


@dataclass(frozen=True)
class WarmupLinear(Schedule):
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.0

    def factor(self, step: int, total_steps: int) -> float:
        warmup_steps = round(self.warmup_fraction * total_steps)
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * (1.0 - progress)


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup, a long constant phase, then a linear decay over the last `decay_fraction`."""

    warmup_fraction: float = 0.05
    decay_fraction: float = 0.2
    min_lr_ratio: float = 0.0

    def factor(self, step: int, total_steps: int) -> float:
        warmup_steps = round(self.warmup_fraction * total_steps)
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        decay_start = total_steps - round(self.decay_fraction * total_steps)
        if step < decay_start:
            return 1.0
        progress = min(1.0, (step - decay_start) / max(1, total_steps - decay_start))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * (1.0 - progress)
