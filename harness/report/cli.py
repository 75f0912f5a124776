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
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness import results
from harness.report import comparison, figure_data, html, load, pooling, scoring
from harness.report.grouping import Choices, Group, build_groups
from harness.report.writers import (
    compare_names_problem,
    compare_paragraphs,
    figure_jobs,
    forget_stale_outputs,
    start_figures,
    write_figures,
    write_statistics,
    write_tables,
)

# Columns of leaderboard.tex that fit one column of a two-column paper (3.3 in) at \small
# with intervals: submission, score, speedup and two workloads, measured with pdflatex.
ONE_COLUMN_LIMIT = 5
PRINTED: list[str] = []  # this report's warnings, for report.html


def warn(message: str) -> None:
    PRINTED.append(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)


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
