"""comparison.md: every run's outcome per workload, without scoring (docs/comparison.md is one).

Per workload and submission: how many studies reached the target (k/n), the median
time-to-target over all n studies with its range, and the median steps-to-target. A study that
missed the target (not reached, diverged or failed) counts as infinity, as in AlgoPerf, so a
median over mostly-missed studies is infinite: misses stay misses. Runs from different hardware
are never mixed: each hardware fingerprint gets its own section. Runs still running are left
out (the report lists them). A section per leaderboard (ruleset, hardware), from
its runs and best trials; never reads files itself.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping

import pandas as pd

REGENERATE = (
    "python run.py experiment=comparison\n"
    "python -m harness.report results/comparison --no-figures\n"
    "cp results/comparison/report/comparison.md docs/comparison.md"
)
MISSES = ("not_reached", "diverged", "failed")


def format_seconds(value: float) -> str:
    if math.isinf(value):
        return "∞"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def format_steps(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.0f}"


def _times(studies: pd.DataFrame) -> list[float]:
    """Time-to-target per study; a study whose best trial failed is a miss whatever it recorded."""
    failed = studies["status"] == "failed"
    return [math.inf if f else t for t, f in zip(studies["time_to_target"], failed, strict=True)]


def cell_row(submission: str, studies: pd.DataFrame) -> dict:
    """One table row: a submission's studies on one workload (each its best trial)."""
    times = _times(studies)
    steps = [
        math.inf if math.isinf(t) or math.isnan(s) else s
        for t, s in zip(times, studies["steps_to_target"], strict=True)
    ]
    misses = studies.loc[studies["status"].isin(MISSES), "status"].value_counts()
    median_time = statistics.median(times)
    return {
        "submission": submission,
        "reached": sum(not math.isinf(t) for t in times),
        "n": len(studies),
        "median_time": median_time,
        "time": f"{format_seconds(median_time)} [{format_seconds(min(times))}–"
        f"{format_seconds(max(times))}]",
        "steps": format_steps(statistics.median(steps)),
        "misses": ", ".join(
            f"{count} {status.replace('_', ' ')}" for status, count in sorted(misses.items())
        ),
    }


def workload_table(studies: pd.DataFrame, names: Mapping[str, str] | None = None) -> list[str]:
    """A workload's rows, best first; `names` gives display names (--names)."""
    names = names or {}
    rows = [cell_row(names.get(name, name), group) for name, group in studies.groupby("submission")]
    rows.sort(key=lambda row: (-row["reached"] / row["n"], row["median_time"], row["submission"]))
    lines = [
        "| submission | reached | time to target, s: median [min–max] | steps to target "
        "(median) | misses |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['submission']} | {row['reached']}/{row['n']} | {row['time']} | {row['steps']} "
        f"| {row['misses']} |"
        for row in rows
    ]
    return lines


def describe_target(runs: pd.DataFrame) -> str:
    """A workload's target and budget over its runs (one leaderboard's: same target). Scaled
    budgets (docs/design.md, "Measurement") differ from run to run by the machine's speed index,
    so their range is given."""
    first = runs.iloc[0]
    direction = "≤" if first["lower_is_better"] else "≥"
    low, high = runs["budget_sec"].min(), runs["budget_sec"].max()
    budget = f"budget {format_seconds(low)} s of submission time"
    if format_seconds(low) != format_seconds(high):
        budget = (
            f"budget {format_seconds(low)}–{format_seconds(high)} s of submission time (each run's "
            "is scaled by the speed index it measured, so that all allow the same number of steps)"
        )
    return f"target {first['target_metric']} {direction} {first['target_value']:g}, {budget}"


def _packages_text(packages_json: str) -> str:
    packages = json.loads(packages_json or "{}")
    return ", ".join(f"{name} {packages[name]}" for name in sorted(packages)) or "unknown"


def group_section(
    title: str,
    runs: pd.DataFrame,
    studies: pd.DataFrame,
    names: Mapping[str, str] | None = None,
) -> list[str]:
    """One leaderboard's runs (`runs`, load.py's table) and each study's best trial (`studies`,
    scoring.best_trials), with workloads named as on the leaderboard (or by `names`)."""
    names = names or {}
    runs = runs[runs["status"] != "running"]
    studies = studies.merge(runs[["run_id", "status"]], on="run_id", how="left")
    dates = sorted(str(started)[:10] or "?" for started in runs["started_at"])
    lines = [
        f"## {title}",
        "",
        f"- runs: {len(runs)}, started {dates[0]} to {dates[-1]}",
        f"- hardware: {', '.join(sorted(runs['hardware'].unique()))}",
        f"- hosts: {', '.join(sorted({h or '?' for h in runs['host']}))}",
        f"- packages: {_packages_text(runs['packages'].iloc[0])}",
        f"- commits: {', '.join(sorted({c or '?' for c in runs['git_commit']}))}",
        "",
    ]
    for workload, group in studies.groupby("workload", sort=True):
        lines += [
            f"### {names.get(workload, workload)}",
            "",
            f"{describe_target(runs[runs['workload'] == workload])}.",
            "",
            *workload_table(group, names),
            "",
        ]
    return lines


def render(
    sections: list[tuple[str, pd.DataFrame, pd.DataFrame]],
    source: str,
    date: str,
    names: Mapping[str, str] | None = None,
) -> str:
    """comparison.md: a section per leaderboard, (title, runs, best trials) each; `names` gives
    display names (--names)."""
    lines = [
        "# Comparison: every submission with its defaults",
        "",
        f"Generated on {date} from `{source}` by:",
        "",
        "```bash",
        REGENERATE,
        "```",
        "",
        "Each row is one submission on one workload over n studies (seeds 1000 x study); a "
        "study counts with its best trial. *reached* is how many studies reached the validation "
        "target within the budget; time to target is submission time (evaluation off the clock) "
        "at the first evaluation that met the target, with a missed study counted as ∞ (so the "
        "median is ∞ when most studies missed); steps are global steps at that evaluation. The "
        "defaults come from each submission's YAML (literature values, not tuned to these "
        "workloads); see `conf/submission/`. Runs of different rulesets or hardware are "
        "never mixed; experiments and results folders are pooled when their targets and "
        "budgets agree. To run part of the sweep, add overrides to the first "
        "command, e.g. `submission=adamw,lion workload=digits study=0`.",
        "",
    ]
    for title, runs, studies in sections:
        lines += group_section(title, runs, studies, names)
    return "\n".join(lines).rstrip() + "\n"
