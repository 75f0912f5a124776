"""Learning-rate schedules: warmup, peak, end values, and past-the-end behaviour."""

from __future__ import annotations

import itertools

import pytest

from submissions.schedules import Constant, WarmupCosine, WarmupLinear, WarmupStableDecay

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
