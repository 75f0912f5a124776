"""Synthetic run folders in the real results format (docs/design.md, "Results"), with
times-to-target chosen by the caller, so scoring and report tests know the answer in advance;
`legacy=True` writes record format 1 (ruleset settings only in config.yaml), as runs of older
versions did. Also used by benchmarks/report_scale.py. Never used by real runs.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import yaml

from harness import results

HARDWARE = "cpu:Synthetic CPU x4 threads"
RULESETS = {  # as in conf/ruleset/*.yaml
    "external": {
        "name": "external",
        "tune": True,
        "budget_factor": 1.0,
        "num_studies": 3,
        "num_trials": 5,
    },
    "self": {
        "name": "self",
        "tune": False,
        "budget_factor": 1.5,
        "num_studies": 3,
        "num_trials": 1,
    },
    "fixed": {
        "name": "fixed",
        "tune": False,
        "budget_factor": 1.0,
        "num_studies": None,
        "num_trials": 1,
    },
}
# A small grid of known times for report tests: (submission, workload) -> each study's best
# trial's time-to-target, None = not reached.
GRID_TIMES = {
    ("adamw", "digits"): [10.0, 12.0, 11.0],
    ("lion", "digits"): [8.0, None, 9.0],
    ("sgd_nesterov", "digits"): [None, None, 30.0],
    ("adamw", "friedman"): [20.0, 22.0, 21.0],
    ("lion", "friedman"): [40.0, 35.0, 50.0],
    ("sgd_nesterov", "friedman"): [25.0, 19.0, 30.0],
}
WORKLOAD_TARGETS = {  # metric, target, lower is better
    "digits": ("validation/accuracy", 0.98, False),
    "friedman": ("validation/mse", 1.2, True),
}


def target_of(workload: str) -> tuple[str, float, bool]:
    return WORKLOAD_TARGETS.get(workload, ("validation/loss", 1.0, True))


def eval_rows(
    time_to_target: float | None, n_evals: int, budget: float, workload: str
) -> list[dict[str, float]]:
    """Evaluations whose metric first meets the target exactly at `time_to_target` (the last
    row: the run stops at the target) or never, running to the budget; 10 steps a second."""
    metric, target, lower = target_of(workload)
    reached = time_to_target is not None and math.isfinite(time_to_target)
    end = time_to_target if reached else budget
    step_every = max(1, round(10 * end / n_evals))
    rows = []
    for k in range(1, n_evals + 1):
        fraction = k / n_evals
        # Approaches the target; meets it only at the last row of a run that reaches it.
        distance = (1.0 - fraction) if reached else (1.0 - 0.5 * fraction)
        value = target * (1.0 + 2.0 * distance) if lower else target * (1.0 - 0.5 * distance)
        rows.append(
            {
                "global_step": k * step_every,
                "accumulated_submission_time": end * fraction,
                "accumulated_eval_time": 0.1 * k,
                "accumulated_logging_time": 0.01 * k,
                "preemption_count": 0,
                "train/loss": 1.0 / k,
                metric: value,
            }
        )
    return rows


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))  # np.float64 too


def eval_csv(rows: list[dict[str, float]]) -> str:
    columns = results.eval_columns(rows)
    lines = [",".join(columns)]
    lines += [",".join(_number(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def write_run(
    root: Path,
    submission: str,
    workload: str,
    study: int,
    trial: int,
    time_to_target: float | None,
    *,
    ruleset: str = "external",
    experiment: str = "synthetic",
    hardware: str = HARDWARE,
    status: str | None = None,
    n_evals: int = 8,
    budget: float = 1000.0,
    legacy: bool = False,
    disturbed: bool = False,
    speed_index: float | None = None,
    reference_speed_index: float | None = None,
) -> Path:
    """One run folder; status defaults to reached / not_reached from `time_to_target`."""
    run_dir = root / experiment / results.run_subdir(ruleset, submission, workload, study, trial)
    run_dir.mkdir(parents=True, exist_ok=True)
    metric, target, lower = target_of(workload)
    rows = (
        []
        if status in ("failed", "running") and time_to_target is None
        else eval_rows(time_to_target, n_evals, budget, workload)
    )
    reached = time_to_target is not None
    hyperparameters = {"learning_rate": 10.0 ** -(1 + trial % 3)}
    record = results.RunRecord(
        experiment_name=experiment,
        ruleset=results.RulesetSettings(**RULESETS[ruleset]),
        submission=submission,
        workload=workload,
        study=study,
        trial=trial,
        seed=1000 * study + trial,
        hyperparameters=hyperparameters,
        target=results.Target(metric, target, lower),
        budget_sec=budget,
        workload_settings={"max_runtime_sec": budget},
        status=status or ("reached" if reached else "not_reached"),
        time_to_target=None if time_to_target is None else float(time_to_target),
        steps_to_target=rows[-1]["global_step"] if reached and rows else None,
        final_validation_metric=rows[-1][metric] if rows else None,
        global_step=rows[-1]["global_step"] if rows else 0,
        n_evaluations=len(rows),
        error="RuntimeError: synthetic" if status == "failed" else None,
        hardware=hardware,
        command="python run.py "
        + " ".join(
            shlex.quote(f"{key}={value}")
            for key, value in (
                ("submission", submission),
                ("workload", workload),
                ("ruleset", ruleset),
                ("experiment_name", experiment),
                ("study", study),
                ("trial", trial),
            )
        ),
        disturbed=disturbed,
        disturbed_reason="synthetic disturbance" if disturbed else None,
        speed_index=None
        if speed_index is None
        else {
            "unit": "reference passes/s",
            "start": speed_index,
            "min": speed_index,
            "max": speed_index,
            "reference": reference_speed_index,
        },
    )
    config = {
        "workload": {"name": workload},
        "submission": {"name": submission},
        "ruleset": RULESETS[ruleset],
        "logger": {"_target_": "harness.loggers.NullLogger"},
        "experiment_name": experiment,
        "study": study,
        "trial": trial,
    }
    (run_dir / results.CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
    (run_dir / results.HPARAMS_FILE).write_text(json.dumps(hyperparameters))
    if rows:
        (run_dir / results.EVAL_FILE).write_text(eval_csv(rows))
    if legacy:
        if ruleset == "fixed":  # format 1's "no fixed number of studies"
            config["ruleset"] = {**RULESETS[ruleset], "num_studies": 1000000}
            (run_dir / results.CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
        (run_dir / results.RECORD_FILE).write_text(json.dumps(legacy_record(record), indent=2))
    else:
        results.write_record(run_dir, record)
    return run_dir


def legacy_record(record: results.RunRecord) -> dict:
    """`record` as format 1 wrote it: the ruleset a name, the target with the workload's
    settings, no record_format."""
    data = record.to_json()
    data["ruleset"] = record.ruleset.name
    data["target"] = {
        "workload": record.workload,
        "target_metric": record.target.metric,
        "target_value": record.target.value,
        "lower_is_better": record.target.lower_is_better,
        **record.workload_settings,
    }
    for key in ("record_format", "workload_settings", "n_evaluations"):
        del data[key]
    return data


def write_study_grid(
    root: Path, times: dict[tuple[str, str], list[float | None]], **options
) -> None:
    """times[(submission, workload)][study] = that study's time (its trial 0 reaches it; the
    other trials of an external study are slower or miss)."""
    ruleset = options.get("ruleset", "external")
    trials = RULESETS[ruleset]["num_trials"]
    for (submission, workload), per_study in times.items():
        for study, best in enumerate(per_study):
            for trial in range(trials):
                slower = None if best is None or trial % 2 else best * (1.5 + trial)
                write_run(
                    root,
                    submission,
                    workload,
                    study,
                    trial,
                    best if trial == 0 else slower,
                    **options,
                )
