"""Hyperparameter search spaces in AlgoPerf's format and the (study, trial) -> point mapping.

Trial j of study k is point j of a scrambled Halton sequence seeded by k (scipy.stats.qmc), so
any single trial can be recomputed, and rerun, on its own. Never trains anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SCALINGS = ("log", "linear")


VALID_FORMS = (
    "Valid forms: {min: <number>, max: <number>, scaling: log|linear} "
    "or {feasible_points: [<value>, ...]}."
)


class SearchSpaceError(ValueError):
    """A malformed search space; every message ends with the valid forms of an entry."""

    def __init__(self, message: str) -> None:
        super().__init__(message if VALID_FORMS in message else f"{message}. {VALID_FORMS}")


def validate_search_space(space: Mapping[str, Any], owner: str = "submission") -> dict[str, dict]:
    """Check every entry is `{min, max, scaling}` or `{feasible_points: [...]}`; return a copy."""
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


def trial_point(space: Mapping[str, Any], study: int, trial: int) -> dict[str, Any]:
    """Hyperparameters of trial `trial` in study `study` (dimensions in sorted-name order)."""
    checked = validate_search_space(space)
    if not checked:
        return {}
    if study < 0 or trial < 0:
        raise ValueError(f"study and trial must be >= 0, got study={study}, trial={trial}")
    names = sorted(checked)
    from scipy.stats import qmc  # here, not at import: scipy.stats costs a second to load

    sampler = qmc.Halton(d=len(names), scramble=True, seed=study)
    unit = sampler.random(trial + 1)[trial]
    return {name: _scale(checked[name], float(u)) for name, u in zip(names, unit, strict=True)}
