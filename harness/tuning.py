"""Hyperparameter search spaces in AlgoPerf's formats and the (study, trial) -> point mapping.

Two forms, as in AlgoPerf's `tuning_search_space.json`:
- ranges, a mapping `{name: {min, max, scaling} | {feasible_points: [...]}}`: trial j of study k
  is point j of a scrambled Halton sequence seeded by k (scipy.stats.qmc);
- points, a list `[{name: value, ...}, ...]` (AlgoPerf's newer baselines): trial j is point j in
  every study (studies differ by their seeds only).
Either way any single trial can be recomputed, and rerun, on its own. Never trains anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

SCALINGS = ("log", "linear")


VALID_FORMS = (
    "Valid forms: {min: <number>, max: <number>, scaling: log|linear} "
    "or {feasible_points: [<value>, ...]} per name, or a list of points "
    "[{<name>: <value>, ...}, ...]."
)
# A search space as loaded: ranges by name, or a list of points.
SearchSpace = Mapping[str, Any] | Sequence[Mapping[str, Any]]


class SearchSpaceError(ValueError):
    """A malformed search space; the message ends with the valid forms (`forms=False`: a
    well-formed space asked for something it does not hold)."""

    def __init__(self, message: str, forms: bool = True) -> None:
        if forms and VALID_FORMS not in message:
            message = f"{message}. {VALID_FORMS}"
        super().__init__(message)


def is_point_list(space: Any) -> bool:
    """Whether `space` is the points form (a list), not the ranges form (a mapping)."""
    return isinstance(space, Sequence) and not isinstance(space, (str, bytes, Mapping))


def search_space_names(space: SearchSpace) -> set[str]:
    """Every hyperparameter name the space sets (of any of its points)."""
    if is_point_list(space):
        return {str(name) for point in space if isinstance(point, Mapping) for name in point}
    return {str(name) for name in space}


def copy_search_space(space: SearchSpace | None) -> dict[str, Any] | list[dict[str, Any]]:
    """A plain copy of either form ({} for none), for a submission to keep."""
    if space is None:
        return {}
    if is_point_list(space):
        return [dict(point) if isinstance(point, Mapping) else point for point in space]
    return dict(space)


def validate_points(points: Sequence[Any], owner: str = "submission") -> list[dict[str, Any]]:
    """Check a list of points: non-empty, each a mapping of names to plain values."""
    if not points:
        raise SearchSpaceError(f"{owner}: the search space is an empty list of points")
    checked = []
    for index, point in enumerate(points):
        where = f"{owner}: search space point {index}"
        if not isinstance(point, Mapping) or not point:
            raise SearchSpaceError(
                f"{where} must be a non-empty mapping of names to values, like "
                f"{{learning_rate: 0.001, weight_decay: 0.1}}, got {point!r}"
            )
        for name, value in point.items():
            if not isinstance(name, str) or not name:
                raise SearchSpaceError(f"{where}: {name!r} is not a hyperparameter name")
            if value is not None and not isinstance(value, (bool, int, float, str)):
                raise SearchSpaceError(
                    f"{where}: {name} must be a number, a string, true/false or null, got {value!r}"
                )
        checked.append(dict(point))
    return checked


def validate_search_space(
    space: SearchSpace, owner: str = "submission"
) -> dict[str, dict] | list[dict[str, Any]]:
    """Check either form: every range entry is `{min, max, scaling}` or `{feasible_points:
    [...]}`, every point a mapping of names to values; return a copy."""
    if is_point_list(space):
        return validate_points(space, owner)
    if not isinstance(space, Mapping):
        raise SearchSpaceError(
            f"{owner}: a search space is a mapping of names to ranges or a list of points, "
            f"got {space!r}"
        )
    checked: dict[str, dict] = {}
    for name, spec in space.items():
        where = f"{owner}: search space entry {name!r}"
        if not isinstance(spec, Mapping):
            raise SearchSpaceError(
                f"{where} must be a mapping like {{min: 1e-4, max: 1e-2, scaling: log}} or "
                f"{{feasible_points: [0.9, 0.99]}}, got {spec!r}"
            )
        spec = dict(spec)
        if "feasible_points" in spec:
            points = spec["feasible_points"]
            if (
                set(spec) != {"feasible_points"}
                or not isinstance(points, (list, tuple))
                or not points
            ):
                raise SearchSpaceError(
                    f"{where}: feasible_points must be a non-empty list and alone"
                )
            checked[name] = {"feasible_points": list(points)}
            continue
        if set(spec) != {"min", "max", "scaling"}:
            raise SearchSpaceError(
                f"{where} has keys {sorted(spec)}; expected exactly min, max and scaling "
                f"({'|'.join(SCALINGS)}), or feasible_points"
            )
        low, high, scaling = spec["min"], spec["max"], spec["scaling"]
        if scaling not in SCALINGS:
            raise SearchSpaceError(f"{where}: scaling {scaling!r} is not one of {SCALINGS}")
        for bound in (low, high):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise SearchSpaceError(f"{where}: min and max must be numbers, got {bound!r}")
        if not low < high:
            raise SearchSpaceError(f"{where}: min ({low}) must be smaller than max ({high})")
        if scaling == "log" and low <= 0:
            raise SearchSpaceError(f"{where}: log scaling needs min > 0, got {low}")
        checked[name] = {"min": low, "max": high, "scaling": scaling}
    return checked


def _scale(spec: dict, u: float) -> Any:
    if "feasible_points" in spec:
        points = spec["feasible_points"]
        return points[min(int(u * len(points)), len(points) - 1)]
    low, high = spec["min"], spec["max"]
    if spec["scaling"] == "log":
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        value = low + u * (high - low)
    if isinstance(low, int) and isinstance(high, int):
        return round(value)
    return value


def trial_point(
    space: SearchSpace, study: int, trial: int, owner: str = "submission"
) -> dict[str, Any]:
    """Hyperparameters of trial `trial` in study `study`: a Halton point over the ranges
    (dimensions in sorted-name order), or point `trial` of a list (the same in every study)."""
    checked = validate_search_space(space, owner)
    if not checked:
        return {}
    if study < 0 or trial < 0:
        raise ValueError(f"study and trial must be >= 0, got study={study}, trial={trial}")
    if isinstance(checked, list):
        if trial >= len(checked):
            raise SearchSpaceError(
                f"{owner}: trial={trial} asks for point {trial} of a search space that lists "
                f"{len(checked)} point(s) (trials 0..{len(checked) - 1}); add points to the "
                f"list, or run trials 0..{len(checked) - 1} only",
                forms=False,
            )
        return dict(checked[trial])
    names = sorted(checked)
    from scipy.stats import qmc  # here, not at import: scipy.stats costs a second to load

    sampler = qmc.Halton(d=len(names), scramble=True, seed=study)
    unit = sampler.random(trial + 1)[trial]
    return {name: _scale(checked[name], float(u)) for name, u in zip(names, unit, strict=True)}
