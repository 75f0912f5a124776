"""Scoring per the AlgoPerf rules (docs/design.md, "Scoring"): best trial per study, median over
studies, performance ratios and profiles, the benchmark score, speedups, and bootstrap intervals.

Pure functions of times-to-target (seconds; inf = never reached); never reads files or plots.
Array functions take times shaped [..., submissions, workloads], so one call scores every
bootstrap replicate at once.

AlgoPerf reference: mlcommons/algorithmic-efficiency, scoring/performance_profile.py
(`compute_performance_profiles`: times over 4x the per-workload best set to inf, ratios to the
best, rho on np.linspace(1, max_tau, 100)) and scoring/algoperf_v05/score_submissions.py
(max_tau=4.0, num_points=100, score = np.trapz(rho, tau) / (max_tau - min_tau)).
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TAU_MAX = 4.0
ALGOPERF_NUM_POINTS = 100
METHODS = ("exact", "algoperf")
# How a study's best trial is chosen: the fastest to the target (ours), or AlgoPerf's rule, the
# trial that met the target at the earliest evaluation index (ties: the faster, then the lower
# trial number; AlgoPerf itself takes whichever its directory listing gives first).
BEST_TRIAL_RULES = ("fastest", "algoperf")


# -- from runs to one time per (submission, workload) -------------------------------------------
def best_trials(runs: pd.DataFrame, rule: str = "fastest") -> pd.DataFrame:
    """One row per (submission, workload, study): its best trial (docs/design.md, "Scoring").

    `runs` holds finished runs only. Rule "fastest": the smallest time-to-target, ties to the
    lowest trial number. Rule "algoperf": the trial that met the target at the earliest
    evaluation index (column evaluations_to_target), ties to the smaller time-to-target, then
    the lower trial number. A study where no trial reached the target keeps time inf and, for
    the curves, the trial whose final validation metric came closest to the target.
    """
    if rule not in BEST_TRIAL_RULES:
        raise ValueError(f"unknown best-trial rule {rule!r}; choose {', '.join(BEST_TRIAL_RULES)}")
    first = ["evaluations_to_target"] if rule == "algoperf" else []
    ranked = runs.assign(
        _distance=_distance_to_target(runs),
        evaluations_to_target=runs.get("evaluations_to_target", np.nan),
    )
    ranked["evaluations_to_target"] = ranked["evaluations_to_target"].where(
        np.isfinite(ranked["time_to_target"]), np.inf
    )
    ranked = ranked.sort_values(
        ["submission", "workload", "study", *first, "time_to_target", "_distance", "trial"]
    )
    keys = ["submission", "workload", "study"]
    best = ranked.groupby(keys, sort=True).head(1).set_index(keys)
    counts = runs.groupby(keys).size().rename("finished_trials")
    columns = ["run_id", "trial", "time_to_target", "steps_to_target"]
    columns += [c for c in ("disturbed",) if c in best.columns]
    return best[columns].join(counts).reset_index()


def _distance_to_target(runs: pd.DataFrame) -> pd.Series:
    gap = runs["final_validation_metric"] - runs["target_value"]
    sign = np.where(runs["lower_is_better"].astype(bool), 1.0, -1.0)
    return (gap * sign).fillna(np.inf)


def median_time(study_times: np.ndarray) -> float:
    """Median over studies with misses as inf (numpy's median: inf once half or more miss with an
    even count, once more than half miss with an odd count). No studies: inf."""
    return float(np.median(study_times)) if len(study_times) else float("inf")


# -- ratios, profiles, scores --------------------------------------------------------------------
def performance_ratios(times: np.ndarray) -> np.ndarray:
    """r(s, w) = t(s, w) / min over s' of t(s', w); inf where t is inf (also when all miss)."""
    times = np.asarray(times, dtype=float)
    best = times.min(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = times / best
    return np.where(np.isfinite(times), ratios, np.inf)


def performance_profile(times: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rho_s(tau): the fraction of workloads with r(s, w) <= tau; shape [..., S, len(taus)]."""
    ratios = performance_ratios(times)
    return (ratios[..., None] <= np.asarray(taus, dtype=float)).mean(axis=-2)


def exact_scores(times: np.ndarray, tau_max: float = TAU_MAX) -> np.ndarray:
    """(1 / (tau_max - 1)) * integral from 1 to tau_max of rho_s, computed exactly: rho is a
    step function, so each workload contributes max(0, tau_max - r) / (tau_max - 1)."""
    ratios = performance_ratios(times)
    credit = np.clip((tau_max - ratios) / (tau_max - 1.0), 0.0, 1.0)  # inf ratio: no credit
    return credit.mean(axis=-1)


def algoperf_scores(
    times: np.ndarray, tau_max: float = TAU_MAX, num_points: int = ALGOPERF_NUM_POINTS
) -> np.ndarray:
    """The official scorer's discretisation: times over tau_max x the best become inf, rho is
    sampled at `num_points` evenly spaced taus in [1, tau_max] and integrated by the trapezoid
    rule, then divided by (tau_max - 1)."""
    times = np.array(times, dtype=float)
    best = times.min(axis=-2, keepdims=True)
    times[times > tau_max * best] = np.inf
    taus = np.linspace(1.0, tau_max, num_points)
    return np.trapezoid(performance_profile(times, taus), taus, axis=-1) / (tau_max - 1.0)


def held_out_times(
    times: np.ndarray,
    workloads: Sequence[str],
    scored: Sequence[str],
    variants: Mapping[str, str],
    tau_max: float = TAU_MAX,
) -> np.ndarray:
    """The times that are scored, [..., S, len(scored)], after AlgoPerf's held-out rule.

    `variants` maps a held-out variant to its base workload (both columns of `times`, ordered
    as `workloads`). With any such pair, as AlgoPerf's scorer does: a variant counts as never
    reached where its base is; then every time over tau_max x the best on its workload becomes
    inf; then a base workload counts as never reached where its variant does (it missed the
    variant's target or was over tau_max x the best there). Only the `scored` columns are kept.
    """
    times = np.array(times, dtype=float)
    column = {w: i for i, w in enumerate(workloads)}
    pairs = [(column[v], column[b]) for v, b in variants.items() if v in column and b in column]
    if pairs:
        for variant, base in pairs:
            times[..., variant] = np.where(
                np.isfinite(times[..., base]), times[..., variant], np.inf
            )
        best = times.min(axis=-2, keepdims=True)
        times[times > tau_max * best] = np.inf
        for variant, base in pairs:
            times[..., base] = np.where(np.isfinite(times[..., variant]), times[..., base], np.inf)
    return times[..., [column[w] for w in scored]]


def benchmark_scores(times: np.ndarray, method: str = "exact", tau_max: float = TAU_MAX):
    if method == "exact":
        return exact_scores(times, tau_max)
    if method == "algoperf":
        return algoperf_scores(times, tau_max)
    raise ValueError(f"unknown scoring method {method!r}; choose one of {', '.join(METHODS)}")


def speedups(times: np.ndarray, baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """Geometric mean over workloads of t(baseline, w) / t(s, w), over the workloads where both
    reached the target; returns (speedup, number of workloads used), NaN where none."""
    times = np.asarray(times, dtype=float)
    base = times[..., baseline : baseline + 1, :]
    both = np.isfinite(times) & np.isfinite(base)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.where(both, np.log(base) - np.log(times), 0.0)
        used = both.sum(axis=-1)
        speedup = np.exp(log_ratio.sum(axis=-1) / used)
    return np.where(used > 0, speedup, np.nan), used


# -- bootstrap -----------------------------------------------------------------------------------
def cell_rng(seed: int, submission: str, workload: str) -> np.random.Generator:
    """One stream per (submission, workload): adding a submission leaves the others' resamples
    unchanged, and the same seed gives the same intervals on any machine."""
    words = [seed, zlib.crc32(submission.encode()), zlib.crc32(workload.encode())]
    return np.random.default_rng(words)


def bootstrap_medians(study_times: np.ndarray, n_resamples: int, rng: np.random.Generator):
    """Medians of `n_resamples` resamples (with replacement) of the per-study times."""
    study_times = np.asarray(study_times, dtype=float)
    if len(study_times) == 0:
        return np.full(n_resamples, np.inf)
    picks = rng.integers(0, len(study_times), size=(n_resamples, len(study_times)))
    return np.median(study_times[picks], axis=1)


def interval(samples: np.ndarray, confidence: float, axis: int = 0) -> np.ndarray:
    """Percentile interval. Bounds are resampled values (no interpolation), so an inf sample
    gives an inf bound instead of NaN; NaN samples (no defined value) are ignored."""
    tail = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():  # all NaN (e.g. no speedup in any resample): NaN bounds
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        return np.nanquantile(samples, [tail, 1.0 - tail], axis=axis, method="inverted_cdf")


# -- a scored leaderboard ------------------------------------------------------------------------
@dataclass
class Settings:
    method: str = "exact"
    tau_max: float = TAU_MAX
    n_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0
    baseline: str | None = None
    unit: str = "seconds"  # a key of UNITS
    best_trial: str = "fastest"  # a key of BEST_TRIAL_RULES


# What a leaderboard's times are in (python -m harness.report --normalize / --unit steps): the
# short label for column heads and axes, and the sentence a table's legend says.
UNITS = {
    "seconds": ("s", "seconds of submission time"),
    "reference": (
        "ref. s",
        "reference seconds: seconds of submission time x the run's speed index / the "
        "workload's reference index, i.e. as on the machine the workload was calibrated on",
    ),
    "steps": ("steps", "training steps (the same on any hardware)"),
}
# What the hardware column of pooled runs says (their fingerprint moves to hardware_measured).
POOLED = {"reference": "pooled in reference units from", "steps": "pooled, in steps, from"}


class NoReference(ValueError):
    """Runs that cannot be put in reference units; the message says which and why."""


def in_unit(runs: pd.DataFrame, unit: str) -> pd.DataFrame:
    """The runs table with time_to_target (and budget_sec) in `unit`. Steps and reference units
    pool machines: their hardware becomes POOLED[unit] and `hardware_measured` keeps the
    fingerprint."""
    runs = runs.copy()
    if unit == "seconds":
        return runs
    if unit == "steps":
        reached = np.isfinite(runs["time_to_target"])
        runs["time_to_target"] = runs["steps_to_target"].where(reached, np.inf)
        runs["budget_sec"] = np.inf
        runs["hardware_measured"] = runs["hardware"]
        runs["hardware"] = POOLED[unit]
        return runs
    factor = runs["speed_index"] / runs["reference_speed_index"]
    missing = runs[~np.isfinite(factor) & (runs["status"] != "running")]
    if len(missing):
        workloads = sorted(missing["workload"].unique())
        raise NoReference(
            f"--normalize needs each run's speed index and its workload's reference index; "
            f"{len(missing)} run(s) lack one (workloads: {', '.join(workloads)}). Runs recorded "
            "before the speed index existed, and workloads without reference_speed_index in "
            "their YAML (cifar, lm, california: calibrated on no fixed machine), cannot be "
            "normalized: report them without --normalize, or rank by --unit steps."
        )
    runs["time_to_target"] = runs["time_to_target"] * factor
    runs["budget_sec"] = runs["budget_sec"] * factor
    runs["hardware_measured"] = runs["hardware"]
    runs["hardware"] = POOLED[unit]
    return runs


@dataclass
class Leaderboard:
    """Times and scores of one group of comparable runs (same experiment, ruleset, hardware)."""

    submissions: list[str]  # best score first
    workloads: list[str]  # every column of the tables: scored workloads and held-out variants
    times: np.ndarray  # [S, W] median over studies of the best trial's time-to-target
    times_ci: np.ndarray  # [2, S, W]
    steps: np.ndarray  # [S, W] median over studies of the best trial's steps-to-target
    n_studies: np.ndarray  # [S, W]
    n_reached: np.ndarray  # [S, W] studies whose best trial reached the target
    scores: np.ndarray  # [S] with settings.method
    scores_ci: np.ndarray  # [2, S]
    other_scores: dict[str, np.ndarray]  # every method, for the CSV
    speedup: np.ndarray | None  # [S] over settings.baseline
    speedup_ci: np.ndarray | None  # [2, S]
    speedup_workloads: np.ndarray | None  # [S] workloads the speedup is averaged over
    studies: pd.DataFrame  # best_trials() of these runs
    settings: Settings = field(default_factory=Settings)
    scored_workloads: list[str] = field(default_factory=list)  # the score's denominator
    variants: dict[str, str] = field(default_factory=dict)  # held-out variant -> base workload
    # [S, len(scored_workloads)]: the times the score is computed from (held_out_times)
    scored_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def index(self, submission: str) -> int:
        return self.submissions.index(submission)

    def reached(self, i: int) -> int:
        """Scored workloads submission i reached (after the held-out rule)."""
        return int(np.isfinite(self.scored_times[i]).sum())


def score(
    runs: pd.DataFrame,
    settings: Settings,
    submissions: Sequence[str] | None = None,
    workloads: Sequence[str] | None = None,
    scored_workloads: Sequence[str] | None = None,
    variants: Mapping[str, str] | None = None,
) -> Leaderboard:
    """Score finished runs. A (submission, workload) pair with no runs counts as never reached,
    as in AlgoPerf, where rho divides by the number of workloads in the benchmark.

    `scored_workloads` (default: every workload but the variants) are the ones the score
    averages over; `variants` ties held-out variants to their base workloads (held_out_times).
    """
    variants = dict(variants or {})
    studies = best_trials(runs, settings.best_trial)
    submissions = sorted(submissions or runs["submission"].unique())
    workloads = sorted(workloads or runs["workload"].unique())
    scored = list(scored_workloads or [w for w in workloads if w not in variants])
    shape = (len(submissions), len(workloads))
    times, steps = np.full(shape, np.inf), np.full(shape, np.nan)
    n_studies, n_reached = np.zeros(shape, int), np.zeros(shape, int)
    resampled = np.full((settings.n_resamples, *shape), np.inf)
    cells = {key: group for key, group in studies.groupby(["submission", "workload"])}
    for i, submission in enumerate(submissions):
        for j, workload in enumerate(workloads):
            cell = cells.get((submission, workload))
            study_times = np.array([]) if cell is None else cell["time_to_target"].to_numpy()
            times[i, j] = median_time(study_times)
            n_studies[i, j] = len(study_times)
            n_reached[i, j] = int(np.isfinite(study_times).sum())
            if cell is not None and n_reached[i, j]:
                steps[i, j] = float(np.median(cell["steps_to_target"].fillna(np.inf)))
            rng = cell_rng(settings.seed, submission, workload)
            resampled[:, i, j] = bootstrap_medians(study_times, settings.n_resamples, rng)
    steps[~np.isfinite(steps)] = np.nan

    def scored_times(values: np.ndarray) -> np.ndarray:
        return held_out_times(values, workloads, scored, variants, settings.tau_max)

    counted, counted_resampled = scored_times(times), scored_times(resampled)
    all_scores = {m: benchmark_scores(counted, m, settings.tau_max) for m in METHODS}
    resampled_scores = benchmark_scores(counted_resampled, settings.method, settings.tau_max)
    order = np.lexsort((np.array(submissions), -all_scores[settings.method]))
    speedup = speedup_ci = speedup_workloads = None
    if settings.baseline is not None:
        base = submissions.index(settings.baseline)
        speedup, speedup_workloads = speedups(counted, base)
        speedup_ci = interval(speedups(counted_resampled, base)[0], settings.confidence)
        speedup, speedup_workloads, speedup_ci = (
            speedup[order],
            speedup_workloads[order],
            speedup_ci[:, order],
        )
    return Leaderboard(
        submissions=[submissions[k] for k in order],
        workloads=list(workloads),
        times=times[order],
        times_ci=interval(resampled, settings.confidence)[:, order],
        steps=steps[order],
        n_studies=n_studies[order],
        n_reached=n_reached[order],
        scores=all_scores[settings.method][order],
        scores_ci=interval(resampled_scores, settings.confidence)[:, order],
        other_scores={m: s[order] for m, s in all_scores.items()},
        speedup=speedup,
        speedup_ci=speedup_ci,
        speedup_workloads=speedup_workloads,
        studies=studies,
        settings=settings,
        scored_workloads=scored,
        variants={v: b for v, b in variants.items() if v in workloads},
        scored_times=counted[order],
    )
