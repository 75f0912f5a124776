"""Search spaces: validation messages and the deterministic (study, trial) -> point mapping."""

from __future__ import annotations

import math

import pytest
from scipy.stats import qmc

from harness.tuning import SearchSpaceError, trial_point, validate_search_space

SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-1, "scaling": "log"},
    "weight_decay": {"min": 0.0, "max": 0.5, "scaling": "linear"},
    "beta2": {"feasible_points": [0.99, 0.999]},
}


def test_point_is_deterministic_and_inside_the_space():
    for study in range(3):
        for trial in range(5):
            point = trial_point(SPACE, study, trial)
            assert point == trial_point(SPACE, study, trial)
            assert 1e-4 <= point["learning_rate"] <= 1e-1
            assert 0.0 <= point["weight_decay"] <= 0.5
            assert point["beta2"] in (0.99, 0.999)
    assert trial_point(SPACE, 0, 1) != trial_point(SPACE, 1, 1), "studies must differ"


def test_point_matches_an_independent_halton_computation():
    unit = qmc.Halton(d=3, scramble=True, seed=2).random(4)[3]  # dims in sorted-name order
    beta2_u, lr_u, wd_u = unit
    point = trial_point(SPACE, study=2, trial=3)
    assert math.isclose(point["learning_rate"], 10 ** (-4 + 3 * lr_u), rel_tol=1e-9)
    assert math.isclose(point["weight_decay"], 0.5 * wd_u, rel_tol=1e-9)
    assert point["beta2"] == (0.99, 0.999)[int(beta2_u * 2)]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"min": 1e-3, "max": 1e-1}, "expected exactly min, max and scaling"),
        ({"min": 1e-3, "max": 1e-1, "scaling": "cubic"}, "scaling 'cubic' is not one of"),
        ({"min": 0.0, "max": 1e-1, "scaling": "log"}, "log scaling needs min > 0"),
        ({"min": 1.0, "max": 0.1, "scaling": "linear"}, "must be smaller than max"),
        ({"min": "a", "max": 0.1, "scaling": "linear"}, "must be numbers"),
        ({"feasible_points": []}, "non-empty list"),
        (0.1, "must be a mapping"),
    ],
)
def test_malformed_search_space_is_explained(entry, message):
    with pytest.raises(SearchSpaceError, match=message) as error:
        validate_search_space({"learning_rate": entry}, owner="submission x")
    assert "learning_rate" in str(error.value)
