"""Learning-rate schedules: warmup, peak, end values, and past-the-end behaviour."""

from __future__ import annotations

import itertools
import math

import pytest

from submissions.schedules import (
    Constant,
    Infinite,
    PowerLaw,
    WarmupCosine,
    WarmupLinear,
    WarmupStableDecay,
)

TOTAL = 1000


@pytest.mark.parametrize("schedule", [WarmupCosine(), WarmupLinear(), WarmupStableDecay()])
def test_warmup_then_decay_to_min(schedule):
    warmup = round(schedule.warmup_fraction * TOTAL)
    assert schedule.factor(0, TOTAL) == pytest.approx(1 / warmup)
    assert schedule.factor(warmup - 1, TOTAL) == pytest.approx(1.0)
    assert schedule.factor(TOTAL, TOTAL) == pytest.approx(schedule.min_lr_ratio)
    assert schedule.factor(5 * TOTAL, TOTAL) == pytest.approx(schedule.min_lr_ratio)
    values = [schedule.factor(step, TOTAL) for step in range(warmup, TOTAL)]
    assert all(a >= b for a, b in itertools.pairwise(values)), "decay must be monotone"


def test_wsd_is_flat_until_the_decay_phase():
    schedule = WarmupStableDecay(warmup_fraction=0.1, decay_fraction=0.2)
    assert schedule.factor(100, TOTAL) == 1.0 and schedule.factor(799, TOTAL) == 1.0
    assert schedule.factor(900, TOTAL) == pytest.approx(0.5)


def test_constant_and_min_ratio():
    assert Constant().factor(0, TOTAL) == Constant().factor(999, TOTAL) == 1.0
    assert WarmupCosine(min_lr_ratio=0.1).factor(TOTAL, TOTAL) == pytest.approx(0.1)
    assert WarmupCosine().with_values(warmup_fraction=0.5).factor(250, TOTAL) == pytest.approx(
        251 / 500
    )


def test_linear_decay_to_zero_after_warmup_is_defazio_et_al():
    """lr_t = lr_peak (1 - (t - W) / (T - W)) after a warmup of W steps (arXiv:2310.07831)."""
    schedule = WarmupLinear(warmup_fraction=0.1)  # W = 100, T = 1000
    assert schedule.factor(99, TOTAL) == pytest.approx(1.0)
    assert schedule.factor(100, TOTAL) == pytest.approx(1.0)
    assert schedule.factor(325, TOTAL) == pytest.approx(1 - 225 / 900)
    assert schedule.factor(775, TOTAL) == pytest.approx(1 - 675 / 900)
    assert schedule.factor(TOTAL, TOTAL) == 0.0


def test_power_scheduler_is_min_of_peak_and_a_power_law_then_decays():
    """min(lr_max, a n^b) with n0 = (lr_max / a)^(1/b) as the step where the law meets the
    peak (arXiv:2408.13359); a linear warmup to its value; decay_floor^progress at the end."""
    schedule = PowerLaw(
        warmup_fraction=0.02, power_start_fraction=0.05, exponent=-0.5, decay_fraction=0.1
    )
    lr_max, b, n0 = 3e-3, -0.5, 50.0  # n0 = 0.05 x 1000 steps
    a = lr_max * n0**-b  # the paper's coefficient that puts the crossing at n0
    for step in (20, 49, 200, 899):
        paper = min(lr_max, a * (step + 1) ** b)
        assert lr_max * schedule.factor(step, TOTAL) == pytest.approx(paper), step
    assert schedule.factor(0, TOTAL) == pytest.approx(1 / 20)  # warmup (the law is flat there)
    assert schedule.factor(399, TOTAL) == pytest.approx(math.sqrt(50 / 400))
    at_decay = (50 / 901) ** 0.5  # the law's value where the decay starts (step 900)
    assert schedule.factor(950, TOTAL) == pytest.approx(at_decay * 0.01**0.5)
    assert schedule.factor(TOTAL, TOTAL) == pytest.approx(at_decay * 0.01)
    linear = PowerLaw(decay_shape="linear", decay_floor=0.0)
    assert linear.factor(TOTAL, TOTAL) == 0.0
    assert linear.factor(950, TOTAL) == pytest.approx(0.5 * linear.factor(900, TOTAL))


def test_infinite_schedule_cools_down_from_any_step():
    early = Infinite(warmup_fraction=0.0, cooldown_start_fraction=0.3, cooldown_fraction=0.1)
    assert early.factor(299, TOTAL) == 1.0
    assert early.factor(325, TOTAL) == pytest.approx(1 - math.sqrt(0.25))
    assert early.factor(400, TOTAL) == 0.0 == early.factor(2 * TOTAL, TOTAL)
    late = Infinite(cooldown_start_fraction=2.0, cooldown_fraction=0.5, cooldown_shape="linear")
    assert late.factor(TOTAL, TOTAL) == 1.0 == late.factor(1999, TOTAL)  # past the step hint
    assert late.factor(2100, TOTAL) == pytest.approx(0.8)
    assert Infinite(min_lr_ratio=0.1).factor(TOTAL, TOTAL) == pytest.approx(0.1)


def test_an_unknown_shape_is_refused_when_built():
    with pytest.raises(ValueError, match="decay_shape must be exponential or linear"):
        PowerLaw(decay_shape="cubic")
    with pytest.raises(ValueError, match="cooldown_shape must be 1-sqrt or linear"):
        Infinite(cooldown_shape="cubic")
