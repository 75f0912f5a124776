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


@dataclass(frozen=True)
class PowerLaw(Schedule):
    """The Power scheduler (Shen et al., 2024, arXiv:2408.13359), in steps.

    The paper sets lr(n) = min(lr_max, a * n**b) after a linear warmup and ends with a decay
    over the last N_decay steps, scaled from lr(N - N_decay). As a multiplier of the peak
    lr_max this is min(1, (n / n0)**b) with n0 = (lr_max / a)**(1 / b), the step at which the
    power law falls below the peak: `power_start_fraction` places n0 (a fraction of the step
    hint), `exponent` is b (the paper fits b ~ -0.51). The final decay f(n, N, N_decay)
    multiplies the value where it starts: exponential by default (decay_floor**progress, the
    shape of MiniCPM's warmup-stable-decay that the paper builds on) or linear, down to
    `decay_floor`.
    """

    warmup_fraction: float = 0.05
    power_start_fraction: float = 0.05  # n0 / step hint: the power law takes over here
    exponent: float = -0.51  # b
    decay_fraction: float = 0.1  # N_decay / step hint
    decay_floor: float = 0.01  # the final decay ends at this fraction of where it starts
    decay_shape: str = "exponential"  # or "linear"

    def __post_init__(self) -> None:
        if self.decay_shape not in ("exponential", "linear"):
            raise ValueError(f"decay_shape must be exponential or linear, not {self.decay_shape!r}")

    def power(self, step: int, total_steps: int) -> float:
        n0 = max(1.0, self.power_start_fraction * total_steps)
        return min(1.0, ((step + 1) / n0) ** self.exponent)

    def factor(self, step: int, total_steps: int) -> float:
        warmup_steps = round(self.warmup_fraction * total_steps)
        if step < warmup_steps:  # linear warmup to the power law's value at its end
            return _warmup(step, warmup_steps) * self.power(warmup_steps - 1, total_steps)
        decay_start = total_steps - round(self.decay_fraction * total_steps)
        if step < decay_start:
            return self.power(step, total_steps)
        progress = min(1.0, (step - decay_start) / max(1, total_steps - decay_start))
        if self.decay_shape == "exponential":
            decay = self.decay_floor**progress
        else:
            decay = 1.0 - (1.0 - self.decay_floor) * progress
        return decay * self.power(decay_start, total_steps)


@dataclass(frozen=True)
class Infinite(Schedule):
    """An infinite schedule: warmup, then constant for as long as one likes, then a cooldown
    that may start at any step (Zhai et al., 2022; Hägele et al., 2024, arXiv:2405.18392).

    The cooldown starts at `cooldown_start_fraction` x the step hint (any value: 0.3 to cool
    down early, 2.0 to train past the hint first) and lasts `cooldown_fraction` x the hint;
    unlike warmup-stable-decay its end is not tied to the step hint. Its shape is "1-sqrt"
    (Hägele et al.: 1 - sqrt(progress), better than linear there) or "linear"; after it the
    multiplier stays at `min_lr_ratio`.
    """

    warmup_fraction: float = 0.05
    cooldown_start_fraction: float = 0.8
    cooldown_fraction: float = 0.2
    cooldown_shape: str = "1-sqrt"
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.cooldown_shape not in ("1-sqrt", "linear"):
            raise ValueError(
                f"cooldown_shape must be 1-sqrt or linear, not {self.cooldown_shape!r}"
            )

    def factor(self, step: int, total_steps: int) -> float:
        warmup_steps = round(self.warmup_fraction * total_steps)
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        start = round(self.cooldown_start_fraction * total_steps)
        if step < start:
            return 1.0
        progress = min(1.0, (step - start) / max(1, round(self.cooldown_fraction * total_steps)))
        shape = 1.0 - (math.sqrt(progress) if self.cooldown_shape == "1-sqrt" else progress)
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * shape
