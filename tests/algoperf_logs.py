"""Small logs in AlgoPerf's real layout and CSV format, and a targets file, for the import tests.

AlgoPerf writes `<ruleset>_tuning/<submission>/study_<k>/<workload>_<framework>/trial_<j>/
eval_measurements.csv` with its columns in alphabetical order, `score` equal to
`accumulated_submission_time`, and test/train/validation metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

# A toy benchmark: three base workloads (gamma is declared but nobody runs it), one held-out
# variant of alpha, and one variant that is not held out.
TARGETS = {
    "benchmark_version": "9.9",
    "base_workloads": ["alpha", "beta", "gamma"],
    "held_out_workloads": ["alpha_wide"],
    "workloads": {
        "alpha": {
            "target_metric_name": "accuracy",
            "validation_target_value": 0.8,
            "step_hint": 100,
        },
        "alpha_wide": {
            "target_metric_name": "accuracy",
            "validation_target_value": 0.75,
            "step_hint": 100,
        },
        "alpha_deep": {
            "target_metric_name": "accuracy",
            "validation_target_value": 0.7,
            "step_hint": 100,
        },
        "beta": {"target_metric_name": "loss", "validation_target_value": 0.5, "step_hint": 50},
        "gamma": {"target_metric_name": "wer", "validation_target_value": 0.1, "step_hint": 10},
    },
}


def write_targets(path: Path, targets: dict | None = None) -> Path:
    path.write_text(json.dumps(targets or TARGETS), encoding="utf-8")
    return path


def eval_csv(metric: str, values: list[float], seconds_per_eval: float, steps_per_eval: int) -> str:
    """One trial's eval_measurements.csv as AlgoPerf writes it (NaN written as 'nan')."""
    columns = [
        "accumulated_eval_time",
        "accumulated_logging_time",
        "accumulated_submission_time",
        "global_step",
        "preemption_count",
        "score",
        f"train/{metric}",
        "total_duration",
        f"validation/{metric}",
        "validation/num_examples",
    ]
    lines = [",".join(columns)]
    for k, value in enumerate(values, start=1):
        submission_time = seconds_per_eval * k
        row = [
            2.0 * k,
            0.0,
            submission_time,
            steps_per_eval * k,
            0,
            submission_time,
            value,
            submission_time + 2.0 * k,
            value,
            1000,
        ]
        lines.append(",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in row))
    return "\n".join(lines) + "\n"


def write_trial(
    logs: Path,
    submission: str,
    study: int,
    workload: str,
    trial: int,
    values: list[float],
    *,
    ruleset_folder: str | None = "external_tuning",
    framework: str = "jax",
    seconds_per_eval: float = 10.0,
    steps_per_eval: int = 100,
) -> Path:
    metric = TARGETS["workloads"].get(workload, {"target_metric_name": "accuracy"})[
        "target_metric_name"
    ]
    folder = logs
    if ruleset_folder:
        folder = folder / ruleset_folder
    folder = folder / submission / f"study_{study}" / f"{workload}_{framework}" / f"trial_{trial}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "eval_measurements.csv"
    path.write_text(eval_csv(metric, values, seconds_per_eval, steps_per_eval), encoding="utf-8")
    return path
