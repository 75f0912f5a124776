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


POINTS = [
    {"learning_rate": 1e-3, "beta2": 0.99},
    {"learning_rate": 3e-3, "beta2": 0.999},
]


def test_a_list_of_points_gives_trial_j_point_j_in_every_study():
    for study in range(3):
        assert [trial_point(POINTS, study, trial) for trial in range(2)] == POINTS


def test_more_trials_than_points_is_refused_with_the_count():
    with pytest.raises(SearchSpaceError, match=r"lists 2 point\(s\) \(trials 0\.\.1\)") as error:
        trial_point(POINTS, 0, 2, owner="submission x")
    assert str(error.value).startswith("submission x: trial=2")
    assert "Valid forms" not in str(error.value), "the space is well formed"


@pytest.mark.parametrize(
    "space, message",
    [
        ([], "empty list of points"),
        ([{"learning_rate": 1e-3}, 0.1], "point 1 must be a non-empty mapping"),
        ([{"learning_rate": [1e-3]}], "learning_rate must be a number, a string"),
    ],
)
def test_malformed_list_of_points_is_explained(space, message):
    with pytest.raises(SearchSpaceError, match=message) as error:
        validate_search_space(space, owner="submission x")
    assert "list of points" in str(error.value)
