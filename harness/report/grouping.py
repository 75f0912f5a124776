"""Leaderboards from loaded runs: which runs may be compared (same ruleset and hardware;
sweeps pooled when pooling.py finds them compatible), what keeps each from being a complete
study, and its score (scoring.py). Pure: reads no files and prints nothing; the command line
(cli.py) reports the problems it lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.report import pooling, scoring, tables

RUN_LIST_LIMIT = 5  # run folders named in one warning line; the rest are counted


@dataclass
class Group:
    """One leaderboard: runs that may be compared, their score, and what is missing."""

    context: tables.TableContext
    runs: pd.DataFrame  # every run of the group, finished or not
    board: scoring.Leaderboard


def _name_runs(run_ids: Sequence[str]) -> str:
    run_ids = sorted(run_ids)
    shown = ", ".join(run_ids[:RUN_LIST_LIMIT])
    more = len(run_ids) - RUN_LIST_LIMIT
    return shown + (f" and {more} more" if more > 0 else "")


# -- grouping ------------------------------------------------------------------------------------
def label_workloads_by_target(runs: pd.DataFrame) -> pd.DataFrame:
    """A workload run with two different targets is two workloads: name each by its target."""
    runs = runs.copy()
    targets = runs.groupby("workload")[["target_metric", "target_value"]].nunique()
    for workload in targets.index[(targets > 1).any(axis=1)]:
        rows = runs["workload"] == workload
        runs.loc[rows, "workload"] = [
            f"{workload} ({metric.removeprefix('validation/')} {value:g})"
            for metric, value in zip(
                runs.loc[rows, "target_metric"], runs.loc[rows, "target_value"], strict=True
            )
        ]
    return runs


# -- completeness --------------------------------------------------------------------------------
Cell = tuple[str, str]  # (submission, workload)


def audit(runs: pd.DataFrame) -> tuple[list[str], set[Cell]]:
    """What keeps a group from being a complete study, and the (submission, workload) cells hit."""
    problems: list[str] = []
    incomplete: set[Cell] = set()
    for check in (_status_problems, _trial_problems, _study_problems):
        found, cells = check(runs)
        problems += found
        incomplete |= cells
    return problems, incomplete


def _status_problems(runs: pd.DataFrame) -> tuple[list[str], set[Cell]]:
    problems = []
    running = runs[runs["status"] == "running"]
    if len(running):
        problems.append(
            f"{len(running)} run(s) still running, left out of the scores: "
            + _name_runs(running["run_id"])
        )
    failed = runs[runs["status"] == "failed"]
    if len(failed):
        problems.append(
            f"{len(failed)} run(s) failed and count as not reached (their record holds the error "
            "and the command that reruns them): " + _name_runs(failed["run_id"])
        )
    for (submission, workload), counts in ended_runs(runs).items():
        what = ", ".join(f"{n} {status}" for status, n in counts.items())
        problems.append(f"{submission} on {workload}: {what} run(s), each counted as not reached")
    scored = runs[runs["status"] != "running"]
    repeats = scored.duplicated(["submission", "workload", "study", "trial"], keep="first")
    if repeats.any():
        problems.append(
            f"{int(repeats.sum())} trial(s) were run more than once (other hardware or another "
            "results folder); the fastest of each counts: "
            + _name_runs(scored.loc[repeats, "run_id"])
        )
    return problems, set(zip(running["submission"], running["workload"], strict=True))


def ended_runs(runs: pd.DataFrame) -> dict[Cell, dict[str, int]]:
    """Per (submission, workload): how many runs diverged or failed (misses, whatever their
    trial; a run that ended before its first evaluation counts from its record alone)."""
    ended = runs[runs["status"].isin(("diverged", "failed"))]
    return {
        cell: group["status"].value_counts().sort_index().to_dict()
        for cell, group in ended.groupby(["submission", "workload"], sort=True)
    }


def _trial_problems(runs: pd.DataFrame) -> tuple[list[str], set[Cell]]:
    """Studies with fewer finished trials than their ruleset's num_trials."""
    trials = (
        runs[runs["status"] != "running"]
        .groupby(["submission", "workload", "study"])
        .agg(finished=("trial", "nunique"), expected=("num_trials", "max"))
    )
    short = trials[trials["finished"] < trials["expected"]]
    lines = [
        f"{submission} on {workload}, study {study}: {int(row['finished'])} of "
        f"{int(row['expected'])} trials finished"
        for (submission, workload, study), row in short.iterrows()
    ]
    return _capped(lines, "studies with missing trials"), {(s, w) for s, w, _ in short.index}


def _study_problems(runs: pd.DataFrame) -> tuple[list[str], set[Cell]]:
    """Cells with fewer studies than the others (or than the ruleset's num_studies), or none."""
    studies = runs[runs["status"] != "running"].groupby(["submission", "workload"])["study"]
    counts = studies.nunique()
    most = int(counts.max()) if len(counts) else 0
    expected = runs["num_studies"].max()  # NaN: the ruleset fixes no number of studies
    if np.isfinite(expected):
        most = max(most, int(expected))
    short = counts[counts < most]
    lines = [f"{s} on {w}: {count} of {most} studies" for (s, w), count in short.items()]
    cells = set(short.index)
    for submission in sorted(runs["submission"].unique()):
        ran = set(runs.loc[runs["submission"] == submission, "workload"])
        for workload in sorted(set(runs["workload"]) - ran):
            lines.append(f"{submission} has no runs on {workload}; counted as not reached")
            cells.add((submission, workload))
    return _capped(lines, "cells with missing studies"), cells


def _capped(lines: list[str], what: str, limit: int = 20) -> list[str]:
    """A long list of problems is its first `limit` lines and a count of the rest."""
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... and {len(lines) - limit} more {what}"]


# -- building the groups -------------------------------------------------------------------------
def _trials_text(runs: pd.DataFrame) -> str:
    per_study = runs.groupby(["submission", "workload", "study"])["trial"].nunique()
    low, high = (int(per_study.min()), int(per_study.max())) if len(per_study) else (0, 0)
    return f"{low}" if low == high else f"{low}-{high}"


def _targets(runs: pd.DataFrame) -> dict[str, tuple[str, float, bool]]:
    first = runs.sort_values("run_id").groupby("workload").first()
    return {
        workload: (row["target_metric"], float(row["target_value"]), bool(row["lower_is_better"]))
        for workload, row in first.iterrows()
    }


def benchmark_workloads(
    runs: pd.DataFrame, declared: Sequence[str] | None = None
) -> tuple[list[str] | None, dict[str, str], list[str]]:
    """(the workloads the score averages over, held-out variant -> base, problems).

    The scored set is `declared` (--benchmark-workloads), else what the runs' records declare
    (imported AlgoPerf runs declare their benchmark's base workloads), else None: every workload
    run. Variants come from the records (workload_settings.base_workload)."""
    problems = []
    variants = {
        row.workload: row.base_workload
        for row in runs[["workload", "base_workload"]].drop_duplicates().itertuples()
        if row.base_workload
    }
    if declared is None:
        sets = sorted({s for s in runs["benchmark_workloads"].unique() if s})
        if len(sets) > 1:
            problems.append(
                "the runs declare different benchmark workload sets; scoring over their union: "
                + " | ".join(sets)
            )
        declared = sorted({w for s in sets for w in s.split(",")}) or None
    if declared is not None:
        declared = sorted(set(declared))
        untied = [b for v, b in variants.items() if b not in declared]
        for variant in [v for v, b in variants.items() if b in untied]:
            del variants[variant]
        if untied:
            problems.append(
                "held-out variants of workloads outside the scored set are left out: "
                + ", ".join(sorted(untied))
            )
    return declared, variants, problems


@dataclass
class Choices:
    """What the user picked beyond the scoring settings (the command line's options)."""

    mix_hardware: bool = False
    mix: tuple[str, ...] = ()  # pooling.MIXES pooled anyway (--mix-targets, --mix-budgets)
    by_experiment: bool = False  # one leaderboard per experiment instead of pooling
    submissions: list[str] | None = None  # rows shown, in this order (None: all, by score)
    workloads: list[str] | None = None  # columns shown, in this order (None: all, by name)
    names: dict[str, str] = field(default_factory=dict)  # display names


def build_groups(
    runs: pd.DataFrame,
    settings: scoring.Settings,
    mix_hardware: bool = False,
    declared: Sequence[str] | None = None,
    choices: Choices | None = None,
) -> list[Group]:
    """Score every leaderboard; pooling.PoolingError when sweeps that may not be pooled meet."""
    choices = choices or Choices(mix_hardware=mix_hardware)
    split = pooling.split_groups(runs, choices.mix_hardware, choices.by_experiment)
    names = pooling.group_names([key for key, _ in split])
    groups = []
    for number, ((_, group_runs), name) in enumerate(zip(split, names, strict=True), start=1):
        group_runs, copies = pooling.drop_copies(group_runs)
        pooling.check(group_runs, choices.mix)
        group_runs = label_workloads_by_target(group_runs)
        group = _build_group(number, group_runs, settings, declared, choices)
        group.context.name = name
        if copies:
            group.context.problems.append(copies)
        groups.append(group)
    return groups


def _build_group(
    number: int,
    group_runs: pd.DataFrame,
    settings: scoring.Settings,
    declared: Sequence[str] | None,
    choices: Choices,
) -> Group:
    scored_set, variants, rule_problems = benchmark_workloads(group_runs, declared)
    if scored_set is not None and choices.workloads:  # --workloads narrows a declared set
        scored_set = [w for w in scored_set if w in choices.workloads]
    outside: list[str] = []
    if scored_set is not None:
        counted = set(scored_set) | set(variants)
        outside = sorted(set(group_runs["workload"]) - counted)
        group_runs = group_runs[group_runs["workload"].isin(counted)]
    problems, incomplete = audit(group_runs)
    problems = rule_problems + problems
    if outside:
        problems.append(
            f"left out: runs on {len(outside)} workload(s) outside the scored set "
            f"({', '.join(scored_set or [])}) and not held out: {', '.join(outside)}"
        )
    missing = sorted(set(scored_set or []) - set(group_runs["workload"]))
    if missing:
        problems.append(
            f"no runs on {', '.join(missing)}: counted as not reached for every submission"
        )
    scored = group_runs[group_runs["status"] != "running"]
    group_settings = settings
    if settings.baseline is not None and settings.baseline not in set(scored["submission"]):
        problems.append(f"baseline {settings.baseline} has no finished runs here: no speedups")
        group_settings = scoring.Settings(**{**vars(settings), "baseline": None})
    pooled = "hardware_measured" in group_runs.columns
    machines = group_runs["hardware_measured" if pooled else "hardware"]
    hardware = machines.value_counts().sort_index()
    disturbed = group_runs[group_runs["disturbed"].astype(bool)]
    if len(disturbed):
        problems.append(
            f"{len(disturbed)} disturbed run(s): their times are not a quiet machine's (‡ "
            "where one is a study's best trial; --exclude-disturbed leaves them out, "
            "`python -m harness.sweep` gives the commands that rerun them): "
            + _name_runs(disturbed["run_id"])
        )
    context = tables.TableContext(
        number=number,
        experiment=str(group_runs["experiment_name"].iloc[0]),
        ruleset=str(group_runs["ruleset"].iloc[0]),
        hardware=[(str(name), int(count)) for name, count in hardware.items()],
        n_runs=len(group_runs),
        trials_per_study=_trials_text(scored),
        targets=_targets(group_runs),
        incomplete=incomplete,
        problems=problems,
        ended=ended_runs(group_runs),
        pooled=str(group_runs["hardware"].iloc[0]) if pooled else "",
    )
    if len(hardware) > 1 and not pooled:
        problems.insert(0, "runs from different hardware are mixed (--mix-hardware)")
    board = scoring.score(
        scored,
        group_settings,
        submissions=sorted(group_runs["submission"].unique()),
        workloads=sorted(set(group_runs["workload"]) | set(scored_set or [])),
        scored_workloads=scored_set,
        variants=variants,
    )
    if "disturbed" in board.studies.columns:
        hit = board.studies[board.studies["disturbed"].astype(bool)]
        context.disturbed = set(zip(hit["submission"], hit["workload"], strict=True))
    context.experiments = sorted(group_runs["experiment_name"].astype(str).unique())
    context.experiment = ", ".join(context.experiments)
    context.sweeps = pooling.sweeps_text(group_runs)
    context.names = dict(choices.names)
    context.ranks = {s: i + 1 for i, s in enumerate(board.submissions)}
    board = tables.reorder(board, choices.submissions, choices.workloads)
    return Group(context, group_runs, board)
