"""From a Hydra config to a finished run: build the objects, choose the hyperparameters, decide
whether to start, resume or skip, call the runner, print the one-line summary.

Bad input becomes one clear paragraph (UserError), never a bare traceback. A run that crashes
writes its record with status `failed` and, inside a sweep, does not stop the sweep.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import logging
import os
import random
import shlex
import shutil
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

# harness.config registers the config schema and the `run_subdir` resolver on import: every
# process that runs a task (run.py, a Slurm job unpickling this module) needs them.
from harness import config, environment, preemption, results  # noqa: F401
from harness.errors import UserError
from harness.runner import Runner, RunSettings
from harness.spec import Submission, Workload
from harness.tuning import SearchSpaceError, trial_point, validate_search_space

log = logging.getLogger("harness")


def constructor_arguments(cls: type) -> list[str]:
    """Keyword arguments of `cls` and of the base classes its **kwargs are passed on to."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters
        names += [
            p
            for p, v in params.items()
            if p != "self" and v.kind is not v.VAR_KEYWORD and p not in names
        ]
        if not any(v.kind is v.VAR_KEYWORD for v in params.values()):
            break
    return names


def build(node: DictConfig, what: str) -> Any:
    """Instantiate a `_target_` config, turning unknown or missing keys into a UserError."""
    target = node.get("_target_")
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        hint = ""
        if target is not None and isinstance(cause, TypeError):
            # The hint is best effort; the error below stands on its own.
            with contextlib.suppress(Exception):
                hint = f" Valid settings: {', '.join(constructor_arguments(get_class(target)))}."
        raise UserError(
            f"Cannot build {what} {node.get('name', target)!r}: {cause}.{hint}"
        ) from error


def choose_hyperparameters(cfg: DictConfig, submission: Submission) -> dict[str, Any]:
    """Defaults (+ overrides) for fixed/self; the (study, trial) point for the external ruleset."""
    ruleset = cfg.ruleset
    defaults = dict(getattr(submission, "default_hyperparameters", {}))
    space = dict(getattr(submission, "search_space", {}))
    if cfg.study < 0 or (ruleset.num_studies is not None and cfg.study >= ruleset.num_studies):
        studies = "0, 1, ..." if ruleset.num_studies is None else f"0..{ruleset.num_studies - 1}"
        raise UserError(
            f"study={cfg.study} is outside ruleset {ruleset.name}'s studies {studies} "
            f"(ruleset.num_studies={ruleset.num_studies})"
        )
    if not 0 <= cfg.trial < ruleset.num_trials:
        raise UserError(
            f"trial={cfg.trial} is outside ruleset {ruleset.name}'s "
            f"0..{ruleset.num_trials - 1} (ruleset.num_trials={ruleset.num_trials})"
        )
    try:
        validate_search_space(space, owner=f"submission {submission.name}")
        if not ruleset.tune:
            return defaults
        if not space:
            raise UserError(
                f"ruleset {ruleset.name} tunes hyperparameters but submission "
                f"{submission.name} has an empty search_space"
            )
        return {**defaults, **trial_point(space, cfg.study, cfg.trial)}
    except SearchSpaceError as error:
        raise UserError(str(error)) from error


def prepare(cfg: DictConfig) -> tuple[Workload, Submission, dict[str, Any]]:
    """Everything that can fail because of user input, before any file is written."""
    workload: Workload = build(cfg.workload, "workload")
    submission: Submission = build(cfg.submission, "submission")
    hyperparameters = choose_hyperparameters(cfg, submission)
    try:
        submission.validate_hyperparameters(SimpleNamespace(**hyperparameters))
        # Every name in the search space must be a hyperparameter the submission accepts.
        probe = {**hyperparameters, **trial_point(getattr(submission, "search_space", {}), 0, 0)}
        submission.validate_hyperparameters(SimpleNamespace(**probe))
    except (ValueError, TypeError) as error:
        raise UserError(str(error)) from error
    return workload, submission, hyperparameters


def run_seed(cfg: DictConfig) -> int:
    return cfg.seed if cfg.seed is not None else 1000 * cfg.study + cfg.trial


def objective(record: results.RunRecord) -> float:
    """What a run returns to Hydra's sweepers: time-to-target, inf if never reached."""
    return float("inf") if record.time_to_target is None else float(record.time_to_target)


def is_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def decide_start(run_dir: Path, cfg: DictConfig, seed: int, hyperparameters: dict[str, Any]) -> str:
    """'skip', 'resume' or 'fresh', from what the folder already holds."""
    record = results.read_record(run_dir)
    if record is None or cfg.force:
        return "fresh"
    skip_done = cfg.skip_done if cfg.skip_done is not None else is_sweep()
    if record.finished:
        if not skip_done:
            log.info("replacing the finished run in %s", display_path(run_dir))
            return "fresh"
        held = (record.seed, record.hyperparameters)
        if held != (seed, hyperparameters):
            raise UserError(
                f"{display_path(run_dir)} already holds a finished run with seed {held[0]} and "
                f"hyperparameters {held[1]}; this task has seed {seed} and {hyperparameters}. "
                "To repeat a run over seeds sweep study=0,1,2; set experiment_name=... to keep "
                "both; or force=true to replace it."
            )
        return "skip"
    if record.status == "running" and (run_dir / results.CHECKPOINT_FILE).exists():
        return "resume"
    return "fresh"


def clear_run_files(run_dir: Path) -> None:
    for name in (results.RECORD_FILE, results.EVAL_FILE, results.CHECKPOINT_FILE):
        (run_dir / name).unlink(missing_ok=True)


def display_path(path: Path) -> str:
    """Relative to the working directory when inside it: shorter, and copy-pasteable."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def rerun_command() -> str:
    """The command that reruns this run alone; in a sweep, just this task's overrides."""
    if not HydraConfig.initialized():
        return shlex.join(sys.argv)
    return shlex.join(["python", "run.py", *HydraConfig.get().overrides.task])


def summary_line(record: results.RunRecord, run_dir: Path) -> str:
    metric, target, time_to_target = (
        record.final_validation_metric,
        record.target,
        record.time_to_target,
    )
    parts = [
        f"{record.status:<11}",
        f"time_to_target {'inf' if time_to_target is None else f'{time_to_target:.2f}'} s",
        f"steps_to_target {record.steps_to_target or 'inf'}",
        display_path(run_dir),
    ]
    if target is not None:
        value = "—" if metric is None else f"{metric:.4f}"
        parts.insert(3, f"{target.metric} {value} (target {target.value:g})")
    if record.error:
        parts.insert(-1, f"error: {record.error.splitlines()[-1]}")
    return " | ".join(parts)


def ruleset_settings(cfg: DictConfig) -> results.RulesetSettings:
    return results.RulesetSettings(**OmegaConf.to_container(cfg.ruleset, resolve=True))


def workload_target(workload: Workload) -> results.Target:
    return results.Target(
        metric=f"validation/{workload.target_metric_name}",
        value=workload.validation_target_value,
        lower_is_better=workload.target_metric_lower_is_better,
    )


def standalone_record(workload: Workload, **fields: Any) -> results.RunRecord:
    """The starting record of a Runner used outside the results layout (benchmarks, tests)."""
    return results.RunRecord(
        experiment_name="standalone",
        ruleset=results.RulesetSettings("fixed", False, 1.0, None, 1),
        submission="standalone",
        workload=workload.name,
        study=0,
        trial=0,
        seed=0,
        hyperparameters={},
        target=workload_target(workload),
        **fields,
    )


def run_folder(cfg: DictConfig) -> Path:
    """The run's folder: Hydra's output folder (the same layout) when Hydra runs the task."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return results.run_dir(
        cfg.results_dir,
        cfg.experiment_name,
        cfg.ruleset.name,
        cfg.submission.name,
        cfg.workload.name,
        cfg.study,
        cfg.trial,
    )


def run(cfg: DictConfig) -> results.RunRecord:
    """Run (or skip, or resume) the run `cfg` describes; returns its record."""
    seed = run_seed(cfg)
    workload, submission, hyperparameters = prepare(cfg)
    run_dir = run_folder(cfg)
    start = decide_start(run_dir, cfg, seed, hyperparameters)
    if start == "skip":
        record = results.load_record(run_dir)
        log.info("skip (done, force=true reruns): %s", summary_line(record, run_dir))
        return record
    if start == "fresh":
        clear_run_files(run_dir)

    device = environment.resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)

    record = results.RunRecord(
        experiment_name=cfg.experiment_name,
        ruleset=ruleset_settings(cfg),
        submission=submission.name,
        workload=workload.name,
        study=cfg.study,
        trial=cfg.trial,
        seed=seed,
        hyperparameters=hyperparameters,
        target=workload_target(workload),
        budget_sec=workload.max_allowed_runtime_sec * cfg.ruleset.budget_factor,
        **environment.describe(device),
        started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        command=rerun_command(),
        pid=os.getpid(),  # with host and slurm_job_id: where to look while it runs
    )
    results.write_text(run_dir / results.CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    results.write_json(run_dir / results.HPARAMS_FILE, hyperparameters)
    logger = build(cfg.logger, "logger")
    runner = None
    try:
        workload.setup(device)  # dataset loading: off the clock
        batch_size = int(submission.get_batch_size(workload.name) or workload.default_batch_size)
        record = record.replace(workload_settings=workload.settings(), batch_size=batch_size)
        settings = RunSettings(
            seed=seed,
            budget_sec=record.budget_sec,
            batch_size=batch_size,
            stop_at_target=cfg.stop_at_target,
            max_steps=cfg.max_steps,
            divergence_factor=cfg.divergence_factor,
            checkpoint=cfg.checkpoint,
            progress=cfg.progress,
        )
        logger.start(run_dir, OmegaConf.to_container(cfg, resolve=True), resumed=start == "resume")
        runner = Runner(
            workload,
            submission,
            SimpleNamespace(**hyperparameters),
            settings,
            run_dir,
            record,
            logger,
        )
        if start == "resume":
            log.info("resuming from the checkpoint in %s", run_dir)
        with preemption.signals_checkpoint():
            try:
                record = runner.run()
            except preemption.Preempted as stop:
                log.warning("%s", stop)
                hand_over(stop)
                raise
    except preemption.Preempted:
        raise
    except Exception as error:  # the run failed: say so in its record, keep the sweep going
        if isinstance(error, UserError):
            log.error("run failed: %s", error)
        else:
            log.error("run failed: %s\n%s", error, traceback.format_exc())
        message = f"{type(error).__name__}: {error}"
        if runner is not None:
            record = runner.write_record("failed", message)
        else:
            record = record.replace(status="failed", error=message)
            results.write_record(run_dir, record)
        logger.finish(record)
    if record.status != "failed" and not cfg.keep_checkpoint:
        (run_dir / results.CHECKPOINT_FILE).unlink(missing_ok=True)
    print(summary_line(record, run_dir), flush=True)
    return record


def hand_over(stop: preemption.Preempted) -> None:
    """The checkpoint is saved: now the signal handler we displaced may act (under submitit,
    the signal before the time limit requeues the job and exits). If it declines (submitit: out
    of requeues) the run is still only interrupted, not failed: its checkpoint resumes it."""
    try:
        preemption.hand_over(stop.signum)
    except Exception as error:
        log.error("not requeued: %s", error)


def _hydra_run_dir() -> Path | None:
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def _rejected_record(cfg: DictConfig, message: str) -> None:
    """A sweep task whose config was rejected: its record says why (no target, no hardware)."""
    run_dir = _hydra_run_dir()
    if run_dir is None:
        return
    record = results.RunRecord(
        experiment_name=cfg.experiment_name,
        ruleset=ruleset_settings(cfg),
        submission=str(cfg.submission.get("name")),
        workload=str(cfg.workload.get("name")),
        study=cfg.study,
        trial=cfg.trial,
        seed=run_seed(cfg),
        hyperparameters={},
        status="failed",
        error=f"UserError: {message}",
        command=rerun_command(),
    )
    results.write_record(run_dir, record)


def _remove_unused_run_dir(cfg: DictConfig) -> None:
    """Hydra creates the run folder before the task starts; drop it if the run was rejected."""
    run_dir = _hydra_run_dir()
    if run_dir is None or (run_dir / results.RECORD_FILE).exists():
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    root = Path(cfg.results_dir).resolve()
    for parent in run_dir.parents:  # empty folders of the layout, up to results_dir
        if parent == root or root not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def main(cfg: DictConfig) -> float | None:
    """Hydra task function. Returns time-to-target (inf if not reached) for sweepers."""
    try:
        record = run(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        if is_sweep():  # one bad task must not stop the sweep; its record says why
            _rejected_record(cfg, str(error))
            return None
        _remove_unused_run_dir(cfg)
        sys.exit(2)
    except preemption.Preempted as stop:
        print(f"{stop}. Run the same command again to resume.", file=sys.stderr, flush=True)
        sys.exit(3)
    if record.status == "failed" and not is_sweep():
        sys.exit(1)
    return objective(record)
