"""`python -m harness.report RESULTS_DIR [RESULTS_DIR ...]`: leaderboards, tables and figures.

Loads every run of one or more results folders (load.py), splits them into leaderboards that
may be compared (same ruleset and hardware; experiments and folders pool when pooling.py finds
them compatible), reports what is incomplete, scores each leaderboard (scoring.py) and writes
tables (tables.py, hyperparameters.py, comparison.py) and figures (figures.py) into the report
folder. Never trains and never writes into a run folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness import results
from harness.report import (
    comparison,
    figure_data,
    html,
    hyperparameters,
    load,
    pooling,
    scoring,
    stats,
    tables,
)

RUN_LIST_LIMIT = 5  # run folders named in one warning line; the rest are counted
# Columns of leaderboard.tex that fit one column of a two-column paper (3.3 in) at \small
# with intervals: submission, score, speedup and two workloads, measured with pdflatex.
ONE_COLUMN_LIMIT = 5
PRINTED: list[str] = []  # this report's warnings, for report.html


@dataclass
class Group:
    """One leaderboard: runs that may be compared, their score, and what is missing."""

    context: tables.TableContext
    runs: pd.DataFrame  # every run of the group, finished or not
    board: scoring.Leaderboard


def warn(message: str) -> None:
    PRINTED.append(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)


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


# -- writing -------------------------------------------------------------------------------------
def write_tables(groups: list[Group], out: Path, wide: bool = False) -> list[Path]:
    several = len(groups) > 1
    header = (
        "# Leaderboards\n\n"
        "Generated by `python -m harness.report`. "
        + (
            f"{len(groups)} leaderboards: runs of different rulesets"
            + ("" if len({g.context.hardware_text() for g in groups}) < 2 else " or hardware")
            + " are never scored together. "
            if several
            else ""
        )
        + tables.method_text(groups[0].board.settings)
        + "\n\n"
    )
    markdown = header + "\n".join(tables.markdown(g.board, g.context) for g in groups)
    latex = "\n".join(tables.latex(g.board, g.context, wide) for g in groups)
    leaderboard = pd.concat([tables.leaderboard_rows(g.board, g.context) for g in groups])
    times = pd.concat([tables.time_to_target_rows(g.board, g.context) for g in groups])
    best = [hyperparameters.best_trial_rows(g.board, g.runs) for g in groups]
    studies = pd.concat(
        [
            rows.assign(leaderboard=g.context.number, leaderboard_name=g.context.name)
            for rows, g in zip(best, groups, strict=True)
        ],
        ignore_index=True,
    )
    paths = [out / n for n in ("leaderboard.md", "leaderboard.tex")]
    results.write_text(paths[0], markdown)
    results.write_text(paths[1], latex)
    paths += write_hyperparameters(groups, best, out, wide)
    for name, frame in (
        ("leaderboard.csv", leaderboard),
        ("time_to_target.csv", times),
        ("best_trials.csv", studies),
        (
            "best_hyperparameters.csv",
            pd.concat(
                [
                    hyperparameters.csv_rows(rows, g.context)
                    for rows, g in zip(best, groups, strict=True)
                ],
                ignore_index=True,
            ),
        ),
    ):
        results.write_text(out / name, frame.to_csv(index=False))
        paths.append(out / name)
    return paths


def write_hyperparameters(
    groups: list[Group], best: list[pd.DataFrame], out: Path, wide: bool
) -> list[Path]:
    markdown = "# Best hyperparameters\n\n" + "\n".join(
        hyperparameters.markdown(g.board, g.context, rows)
        for g, rows in zip(groups, best, strict=True)
    )
    latex = "\n".join(
        hyperparameters.latex(g.board, g.context, rows, wide)
        for g, rows in zip(groups, best, strict=True)
    )
    paths = [out / "best_hyperparameters.md", out / "best_hyperparameters.tex"]
    results.write_text(paths[0], markdown)
    results.write_text(paths[1], latex)
    return paths


def figure_jobs(
    groups: list[Group], evaluations: pd.DataFrame, style: figure_data.Style | None = None
) -> list[figure_data.Job]:
    """Every figure of FIGURES for every leaderboard, with the evaluations it draws only."""
    style = style or figure_data.Style()
    looks = figure_data.submission_looks([s for g in groups for s in g.board.submissions])
    drawn = evaluations["run_id"].isin(
        set(pd.concat([g.board.studies["run_id"] for g in groups]).dropna().astype(str))
    )
    evaluations = evaluations[drawn.to_numpy()]
    jobs = []
    for group in groups:
        board, context = group.board, group.context
        suffix = f"_{context.name}" if context.name else ""
        caption = figure_data.Caption(
            hardware=context.hardware_text(),
            detail=f"Experiment {context.experiment}, ruleset {context.ruleset}; "
            f"{context.studies_text(board)}",
        )
        budgets = group.runs.groupby("workload")["budget_sec"].max().to_dict()
        names = {s: context.display_name(s) for s in board.submissions}
        data = figure_data.FigureData(
            board,
            evaluations,
            context.targets,
            looks,
            caption,
            budgets=budgets,
            names=names,
            style=style,
        )
        jobs += [(name, name + suffix, data) for name in figure_data.FIGURE_NAMES]
    return jobs


def start_figures(
    jobs: list[figure_data.Job], out: Path, pool: figure_data.Workers | None
) -> list | None:
    """The figures' drawing under way in `pool` (None: none, they are drawn by write_figures)."""
    return None if pool is None else figure_data.submit(jobs, out, pool)


def write_figures(
    jobs: list[figure_data.Job], out: Path, started: list | None = None
) -> tuple[list[Path], list[str]]:
    """Every job drawn, checked and saved (PDF, PNG; here, or by the workers `started` says),
    and its caption file."""
    if started is None:
        from harness.report import figures  # matplotlib: only where figures are drawn

        drawn = [figures.render(name, filename, data, out) for name, filename, data in jobs]
    else:
        drawn = [future.result() for future in started]
    paths, problems = [], []
    for (_, filename, _), (saved, found) in zip(jobs, drawn, strict=True):
        problems += [f"{filename}: {p}" for p in found]
        paths += saved
    return paths, problems


def write_statistics(groups: list[Group], out: Path) -> list[Path]:
    """statistics.md and pairwise.csv: every pair of submissions, per workload and overall."""
    text, frames = stats.header(groups[0].board.settings.confidence), []
    for group in groups:
        pairs, aggregates = stats.of_leaderboard(group.board)
        text += stats.markdown(group.context.title(), group.board, pairs, aggregates) + "\n"
        pairs.insert(0, "leaderboard", group.context.number)
        frames.append(pairs)
    paths = [out / "statistics.md", out / "pairwise.csv"]
    results.write_text(paths[0], text)
    results.write_text(paths[1], pd.concat(frames, ignore_index=True).to_csv(index=False))
    return paths


def compare_names_problem(runs: pd.DataFrame, names: Sequence[str], results_dir: str) -> str:
    """One paragraph when --compare names a submission without runs here (or one twice)."""
    known = sorted(runs["submission"].unique())
    unknown = [n for n in names if n not in known]
    if not unknown and names[0] != names[1]:
        return ""
    what = (
        f"names {', '.join(unknown)}, which has no runs under {results_dir}"
        if unknown
        else "names the same submission twice"
    )
    return (
        f"error: --compare {what}. Give two different submissions of these: "
        f"{', '.join(known)} (e.g. --compare {known[0]} {known[-1]})."
    )


def compare_paragraphs(groups: list[Group], a: str, b: str) -> list[str]:
    """The --compare paragraph of each leaderboard where both have finished studies."""
    paragraphs = []
    for group in groups:
        s = group.board.settings
        rows = stats.compare(
            group.board.studies,
            a,
            b,
            group.board.workloads,
            s.n_resamples,
            s.confidence,
            s.seed,
            pooled=group.board.scored_workloads,
        )
        if rows.empty or stats.OVERALL not in set(rows["workload"]):
            continue
        head = f"{group.context.title()}: " if len(groups) > 1 else ""
        paragraphs.append(head + stats.paragraph(rows, s.confidence, s.n_resamples))
    return paragraphs


OUTPUTS = ".report_outputs.json"  # in the report folder: the files the last report wrote


def forget_stale_outputs(out: Path, written: Sequence[Path]) -> int:
    """Remove what an earlier report wrote into `out` and this one did not (a figure of a
    leaderboard that no longer exists would otherwise sit beside the new ones, looking
    current); never a file the report did not write itself. Returns how many it removed."""
    names = sorted({Path(p).name for p in written if Path(p).parent == out})
    try:
        before = json.loads((out / OUTPUTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = []
    stale = [n for n in before if isinstance(n, str) and n not in names and "/" not in n]
    for name in stale:
        (out / name).unlink(missing_ok=True)
    results.write_json(out / OUTPUTS, names)
    return len(stale)


# -- command line --------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.report", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "results_dirs",
        type=Path,
        nargs="*",  # checked below, so that a folder taken by --names gets a clear message
        metavar="RESULTS_DIR",
        help="one or more folders of runs, e.g. results/demo, or results/baselines results/ours "
        "to pool two sweeps into one report",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="report folder (default with one RESULTS_DIR: RESULTS_DIR/report; required with "
        "several)",
    )
    parser.add_argument(
        "--names",
        nargs="+",
        default=[],
        metavar="NAME=DISPLAY",
        help='display names in every table, e.g. --names adamw=AdamW "signsgd=SignSGD (ours)" '
        "(submissions or workloads)",
    )
    parser.add_argument(
        "--submissions",
        metavar="A,B,C",
        help="only these submissions, in this row order (default: all, best score first); the "
        "scores rank them among themselves",
    )
    parser.add_argument(
        "--workloads",
        metavar="X,Y",
        help="only these workloads, in this column order (default: all, by name); the scores "
        "average over them",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="LaTeX tables as table* (full text width of a two-column paper; default: one column)",
    )
    parser.add_argument(
        "--baseline", default="adamw", help="submission for speedups ('none': no speedups)"
    )
    parser.add_argument(
        "--algoperf",
        action="store_true",
        help="score by AlgoPerf's rules exactly: its discretisation of the integral (100 taus, "
        "trapezoid rule; both are in leaderboard.csv) and its best trial (--best-trial "
        "algoperf)",
    )
    parser.add_argument(
        "--best-trial",
        choices=scoring.BEST_TRIAL_RULES,
        help="a study's best trial: the fastest to the target (default), or AlgoPerf's rule, "
        "the earliest evaluation that met it (default with --algoperf)",
    )
    parser.add_argument(
        "--benchmark-workloads",
        metavar="NAMES",
        help="comma-separated workloads the score averages over (default: what the records "
        "declare, else every workload run); a listed workload nobody ran counts as not reached",
    )
    parser.add_argument("--tau-max", type=float, default=scoring.TAU_MAX)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument(
        "--mix-hardware", action="store_true", help="score runs from different hardware together"
    )
    parser.add_argument(
        "--mix-targets",
        action="store_true",
        help="pool sweeps whose targets differ (each target its own column) instead of refusing",
    )
    parser.add_argument(
        "--mix-budgets",
        action="store_true",
        help="pool sweeps whose budgets (max runtime, step hint) differ instead of refusing",
    )
    parser.add_argument(
        "--by-experiment",
        action="store_true",
        help="one leaderboard per experiment instead of pooling the experiments of a ruleset",
    )
    parser.add_argument(
        "--exclude-disturbed",
        action="store_true",
        help="leave out runs marked disturbed (their times are not a quiet machine's)",
    )
    parser.add_argument(
        "--unit",
        choices=("seconds", "steps"),
        default="seconds",
        help="rank by time-to-target in seconds (default) or by steps-to-target, the view "
        "that does not depend on the hardware",
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="express times in reference units (seconds x the run's speed index / the "
        "workload's reference index), so that runs from machines of different speeds pool "
        "into one leaderboard",
    )
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument(
        "--style",
        choices=("paper", "slides"),
        default="paper",
        help="figure sizes and fonts: a two-column paper (default) or slides",
    )
    parser.add_argument(
        "--width",
        type=float,
        help="width of every figure in inches (default: 3.25 for the profile and 6.75 for the "
        "panel grids with --style paper, the column and text widths of a two-column paper)",
    )
    parser.add_argument(
        "--font",
        default="sans-serif",
        help="font family of the figures: sans-serif (default), serif, times (Times-like, "
        "bundled), or any installed family, to match the paper",
    )
    parser.add_argument("--no-html", action="store_true", help="do not write report.html")
    parser.add_argument("--no-cache", action="store_true", help="ignore the parquet cache")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any study is incomplete")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="print, in one paragraph a paper can quote, whether submission A reaches the "
        "targets faster than B: probability with a bootstrap interval, a paired test, and the "
        "studies needed to separate them (statistics.md and pairwise.csv hold every pair)",
    )
    args = parser.parse_intermixed_args(argv)  # folders may follow options
    if args.tau_max <= 1 or not 0 < args.confidence < 1 or args.resamples < 1:
        parser.error("need --tau-max > 1, 0 < --confidence < 1 and --resamples >= 1")
    if args.width is not None and not 1.5 <= args.width <= 20:
        parser.error(f"--width {args.width:g}: give the figure width in inches, 1.5 to 20")
    try:
        figure_data.check_font(args.font)
    except figure_data.UnknownFont as error:
        parser.error(str(error))
    if args.normalize and args.unit == "steps":
        parser.error("--normalize converts seconds; steps need no conversion: use one of them")
    bad = [pair for pair in args.names if "=" not in pair or not pair.split("=", 1)[0]]
    if bad:
        parser.error(
            f"--names takes NAME=DISPLAY pairs; {bad[0]!r} is not one (put the results folders "
            "before --names)"
        )
    if not args.results_dirs:
        parser.error("give at least one results folder, e.g. results/demo")
    if len(args.results_dirs) > 1 and args.out is None:
        parser.error(
            f"{len(args.results_dirs)} results folders are pooled into one report: say where it "
            "goes with --out DIR (nothing is written into the results folders)"
        )
    return args


def name_list(text: str | None) -> list[str] | None:
    """'a, b,c' -> ['a', 'b', 'c']; None when the option was not given."""
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def choose(runs: pd.DataFrame, args: argparse.Namespace) -> Choices:
    """The options that pick and name rows and columns; ValueError (the message for the user)
    for a name no run has, so a typo never empties a table silently."""
    submissions, workloads = name_list(args.submissions), name_list(args.workloads)
    names = dict(pair.split("=", 1) for pair in args.names)
    for option, picked, column in (
        ("--submissions", submissions, "submission"),
        ("--workloads", workloads, "workload"),
    ):
        known = sorted(runs[column].astype(str).unique())
        unknown = [n for n in picked or [] if n not in known]
        if unknown or picked == []:
            raise ValueError(
                f"{option}: no runs of {', '.join(unknown) or 'anything'}; the runs have "
                f"{column}s {', '.join(known)}"
            )
    known = set(runs["submission"].astype(str)) | set(runs["workload"].astype(str))
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"--names: no submission or workload is called {', '.join(unknown)}; the runs have "
            f"submissions {', '.join(sorted(set(runs['submission'])))} and workloads "
            f"{', '.join(sorted(set(runs['workload'])))}"
        )
    mix = tuple(m for m in pooling.MIXES if getattr(args, f"mix_{m}"))
    return Choices(
        mix_hardware=args.mix_hardware,
        mix=mix,
        by_experiment=args.by_experiment,
        submissions=submissions,
        workloads=workloads,
        names=names,
    )


def load_runs(results_dir: Path, use_cache: bool) -> load.Results | None:
    loaded = load.load(results_dir, use_cache=use_cache)
    for run_id, reason in loaded.skipped:
        warn(f"skipping {results_dir / run_id}: {reason}")
    for message in loaded.warnings:
        warn(message)
    if loaded.runs.empty:
        if loaded.skipped:
            print(
                f"error: none of the {len(loaded.skipped)} run folder(s) under {results_dir} "
                "could be read (see the warnings above)",
                file=sys.stderr,
            )
        else:
            print(
                f"error: no runs under {results_dir}: a run is a folder holding record.json, "
                "as in <results>/<experiment>/<ruleset>/<submission>/<workload>/study_<k>/"
                "trial_<j>/ (run `python run.py ...` first)",
                file=sys.stderr,
            )
        return None
    return loaded


def why_separate(groups: list[Group], by_experiment: bool) -> str:
    """'fixed, self: different rulesets are different games' and the like."""
    reasons = []
    if len({g.context.ruleset for g in groups}) > 1:
        reasons.append("different rulesets are different games")
    if len({g.context.hardware_text() for g in groups}) > 1:
        reasons.append("different hardware: --mix-hardware pools it")
    if by_experiment:
        reasons.append("--by-experiment keeps experiments apart")
    return ", ".join(g.context.name for g in groups) + ": " + "; ".join(reasons)


def load_all(folders: Sequence[Path], use_cache: bool) -> load.Results | None:
    """Every run of every folder (pooling.combine); None after an error message."""
    loaded = []
    for folder in folders:
        one = load_runs(folder, use_cache)
        if one is None:
            return None
        loaded.append((folder, one))
    return pooling.combine(loaded)


def main(argv: list[str] | None = None, parallel: bool = False) -> int:
    """The report. `parallel`: figures are drawn in worker processes, started before the runs
    are loaded so that they import matplotlib on the core loading leaves idle. Safe only in a
    program of its own (`python -m harness.report`): spawned workers re-import the caller's
    main module, and a script or notebook calling main() is not guarded."""
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # for report.html's provenance
    PRINTED.clear()
    folders = args.results_dirs
    for folder in folders:
        if not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return 2
    try:
        pooling.check_folders(folders)
    except pooling.PoolingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pool = figure_data.start_workers() if parallel and not args.no_figures else None
    try:
        return _load_and_report(args, folders, pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _load_and_report(args, folders: list[Path], pool: figure_data.Workers | None) -> int:
    loaded = load_all(folders, use_cache=not args.no_cache)
    if loaded is None:
        return 1
    runs = loaded.runs
    try:
        choices = choose(runs, args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if choices.submissions:
        runs = runs[runs["submission"].isin(choices.submissions)]
    if choices.workloads:
        runs = runs[runs["workload"].isin(choices.workloads)]
    if args.exclude_disturbed:
        disturbed = runs["disturbed"].astype(bool)
        if disturbed.any():
            warn(f"left out {int(disturbed.sum())} disturbed run(s) (--exclude-disturbed)")
        runs = runs[~disturbed]
        if runs.empty:
            print("error: every run is disturbed; nothing is left to score", file=sys.stderr)
            return 1
    if args.compare and (
        problem := compare_names_problem(runs, args.compare, ", ".join(map(str, folders)))
    ):
        print(problem, file=sys.stderr)
        return 2
    unit = "reference" if args.normalize else args.unit
    try:
        runs = scoring.in_unit(runs, unit)
    except scoring.NoReference as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = scoring.Settings(
        method="algoperf" if args.algoperf else "exact",
        tau_max=args.tau_max,
        n_resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
        baseline=None if args.baseline.lower() == "none" else args.baseline,
        unit=unit,
        best_trial=args.best_trial or ("algoperf" if args.algoperf else "fastest"),
    )
    declared = None
    if args.benchmark_workloads:
        declared = [w.strip() for w in args.benchmark_workloads.split(",") if w.strip()]
    return _report(args, folders, loaded, runs, settings, declared, choices, pool)


def _report(args, folders, loaded, runs, settings, declared, choices, pool) -> int:
    """The report of `runs` once loaded and chosen: score, write tables and figures."""
    try:
        groups = build_groups(runs, settings, declared=declared, choices=choices)
    except pooling.PoolingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(groups) > 1:
        warn(f"{len(groups)} separate leaderboards ({why_separate(groups, args.by_experiment)})")
    for group in groups:
        if group.context.pooled_text():
            print(f"leaderboard {group.context.label()}: {group.context.pooled_text()}")
    out = args.out or folders[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    jobs, started = [], None
    if not args.no_figures:  # drawn by the workers while this process writes the tables
        style = figure_data.Style(args.style, args.width, args.font)
        jobs = figure_jobs(groups, loaded.evaluations, style)
        started = start_figures(jobs, out, pool)
    written = write_tables(groups, out, wide=args.wide)
    for group in groups:
        columns = 2 + (group.board.speedup is not None) + len(group.board.workloads)
        if not args.wide and columns > ONE_COLUMN_LIMIT:
            warn(
                f"leaderboard.tex ({group.context.label()}): {columns} columns are likely wider "
                "than one column of a two-column paper; --wide makes it a table* (full width)"
            )
    written += write_statistics(groups, out)
    sections = [(g.context.title(), g.runs, g.board.studies) for g in groups]
    written.append(out / "comparison.md")
    source = ", ".join(folder.as_posix() for folder in folders)
    results.write_text(
        written[-1],
        comparison.render(sections, source, datetime.date.today().isoformat(), names=choices.names),
    )
    if not args.no_figures:
        paths, layout = write_figures(jobs, out, started)
        written += paths
        for problem in layout:
            warn(f"figure layout: {problem}")
    for group in groups:
        for problem in group.context.problems:
            warn(f"leaderboard {group.context.label()}: {problem}")
    if not args.no_html:
        written.append(html.write(out, groups, loaded, written, PRINTED, args.argv))
    if args.compare:
        paragraphs = compare_paragraphs(groups, *args.compare)
        if not paragraphs:
            print(
                f"error: {' and '.join(args.compare)} have no finished studies on a common "
                "workload of one leaderboard (same ruleset and hardware), so there is nothing "
                "to compare; see leaderboard.md for what each ran.",
                file=sys.stderr,
            )
            return 2
        print("\n\n".join(paragraphs))
    else:
        print((out / "leaderboard.md").read_text(encoding="utf-8"))
    removed = forget_stale_outputs(out, written)
    stale = f", removed {removed} an earlier report wrote" if removed else ""
    print(f"wrote {len(written)} files to {out}{stale}")
    incomplete = any(g.context.incomplete for g in groups)
    return 1 if args.strict and incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
