"""`python -m harness.report RESULTS_DIR`: leaderboards, tables and figures for a paper.

Loads every run (load.py), splits them into groups that may be compared (same experiment,
ruleset and hardware), reports what is incomplete, scores each group (scoring.py) and writes
tables (tables.py, comparison.py) and figures (figures.py) into RESULTS_DIR/report. Never trains
and never writes into a run folder.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness import results
from harness.report import comparison, figures, load, scoring, stats, tables

RUN_LIST_LIMIT = 5  # run folders named in one warning line; the rest are counted


@dataclass
class Group:
    """One leaderboard: runs that may be compared, their score, and what is missing."""

    context: tables.TableContext
    runs: pd.DataFrame  # every run of the group, finished or not
    board: scoring.Leaderboard


def warn(message: str) -> None:
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


def split_groups(runs: pd.DataFrame, mix_hardware: bool) -> list[pd.DataFrame]:
    keys = ["experiment_name", "ruleset"] + ([] if mix_hardware else ["hardware"])
    return [label_workloads_by_target(group) for _, group in runs.groupby(keys, sort=True)]


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


def build_groups(
    runs: pd.DataFrame,
    settings: scoring.Settings,
    mix_hardware: bool = False,
    declared: Sequence[str] | None = None,
) -> list[Group]:
    groups = []
    for number, group_runs in enumerate(split_groups(runs, mix_hardware), start=1):
        scored_set, variants, rule_problems = benchmark_workloads(group_runs, declared)
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
        groups.append(Group(context, group_runs, board))
    return groups


# -- writing -------------------------------------------------------------------------------------
def write_tables(groups: list[Group], out: Path) -> list[Path]:
    header = (
        "# Leaderboards\n\n"
        "Generated by `python -m harness.report`. Runs on different hardware, rulesets or "
        "experiments are never scored together.\n\n"
    )
    markdown = header + "\n".join(tables.markdown(g.board, g.context) for g in groups)
    latex = "\n".join(tables.latex(g.board, g.context) for g in groups)
    leaderboard = pd.concat([tables.leaderboard_rows(g.board, g.context) for g in groups])
    times = pd.concat([tables.time_to_target_rows(g.board, g.context) for g in groups])
    studies = pd.concat(
        [g.board.studies.assign(leaderboard=g.context.number) for g in groups], ignore_index=True
    )
    paths = [out / n for n in ("leaderboard.md", "leaderboard.tex")]
    results.write_text(paths[0], markdown)
    results.write_text(paths[1], latex)
    for name, frame in (
        ("leaderboard.csv", leaderboard),
        ("time_to_target.csv", times),
        ("best_trials.csv", studies),
    ):
        results.write_text(out / name, frame.to_csv(index=False))
        paths.append(out / name)
    return paths


def write_figures(
    groups: list[Group], evaluations: pd.DataFrame, out: Path
) -> tuple[list[Path], list[str]]:
    looks = figures.submission_looks([s for g in groups for s in g.board.submissions])
    paths, problems = [], []
    for group in groups:
        board, context = group.board, group.context
        suffix = "" if len(groups) == 1 else f"_{context.number}"
        caption = figures.Caption(
            hardware=" + ".join(name for name, _ in context.hardware),
            detail=f"{context.experiment}/{context.ruleset} · {context.studies_text(board)}",
        )
        data = figures.FigureData(board, evaluations, context.targets, looks, caption)
        made = {name: draw(data) for name, draw in figures.FIGURES.items()}
        for name, fig in made.items():
            problems += [f"{name}{suffix}: {p}" for p in figures.layout_problems(fig)]
            paths += figures.save(fig, out, name + suffix)
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


def compare_names_problem(runs: pd.DataFrame, names: Sequence[str], results_dir: Path) -> str:
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


# -- command line --------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("results_dir", type=Path, help="a folder of runs, e.g. results/demo")
    parser.add_argument("--out", type=Path, help="report folder (default: RESULTS_DIR/report)")
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
    args = parser.parse_args(argv)
    if args.tau_max <= 1 or not 0 < args.confidence < 1 or args.resamples < 1:
        parser.error("need --tau-max > 1, 0 < --confidence < 1 and --resamples >= 1")
    if args.normalize and args.unit == "steps":
        parser.error("--normalize converts seconds; steps need no conversion: use one of them")
    return args


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.results_dir.is_dir():
        print(f"error: {args.results_dir} is not a folder", file=sys.stderr)
        return 2
    loaded = load_runs(args.results_dir, use_cache=not args.no_cache)
    if loaded is None:
        return 1
    runs = loaded.runs
    if args.exclude_disturbed:
        disturbed = runs["disturbed"].astype(bool)
        if disturbed.any():
            warn(f"left out {int(disturbed.sum())} disturbed run(s) (--exclude-disturbed)")
        runs = runs[~disturbed]
        if runs.empty:
            print("error: every run is disturbed; nothing is left to score", file=sys.stderr)
            return 1
    if args.compare and (problem := compare_names_problem(runs, args.compare, args.results_dir)):
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
    groups = build_groups(runs, settings, mix_hardware=args.mix_hardware, declared=declared)
    if len(groups) > 1:
        warn(
            f"{len(groups)} separate leaderboards (different experiments, rulesets or hardware"
            + ("" if args.mix_hardware else "; --mix-hardware scores hardware together")
            + ")"
        )
    out = args.out or args.results_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    written = write_tables(groups, out)
    written += write_statistics(groups, out)
    sections = [(g.context.title(), g.runs, g.board.studies) for g in groups]
    written.append(out / "comparison.md")
    results.write_text(
        written[-1],
        comparison.render(sections, str(args.results_dir), datetime.date.today().isoformat()),
    )
    if not args.no_figures:
        paths, layout = write_figures(groups, loaded.evaluations, out)
        written += paths
        for problem in layout:
            warn(f"figure layout: {problem}")
    for group in groups:
        for problem in group.context.problems:
            warn(f"leaderboard {group.context.number}: {problem}")
    if args.compare:
        paragraphs = compare_paragraphs(groups, *args.compare)
        if not paragraphs:
            print(
                f"error: {' and '.join(args.compare)} have no finished studies on a common "
                "workload of one leaderboard (same experiment, ruleset and hardware), so there "
                "is nothing to compare; see leaderboard.md for what each ran.",
                file=sys.stderr,
            )
            return 2
        print("\n\n".join(paragraphs))
    else:
        print((out / "leaderboard.md").read_text(encoding="utf-8"))
    print(f"wrote {len(written)} files to {out}")
    incomplete = any(g.context.incomplete for g in groups)
    return 1 if args.strict and incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
