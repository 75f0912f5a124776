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

from harness import environment, preemption, results
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
    if not 0 <= cfg.study < ruleset.num_studies:
        raise UserError(
            f"study={cfg.study} is outside ruleset {ruleset.name}'s "
            f"0..{ruleset.num_studies - 1} (ruleset.num_studies={ruleset.num_studies})"
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


def objective(record: dict[str, Any]) -> float:
    """What a run returns to Hydra's sweepers: time-to-target, inf if never reached."""
    time_to_target = record.get("time_to_target")
    return float("inf") if time_to_target is None else float(time_to_target)


def is_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def decide_start(run_dir: Path, cfg: DictConfig, seed: int, hyperparameters: dict[str, Any]) -> str:
    """'skip', 'resume' or 'fresh', from what the folder already holds."""
    record = results.read_record(run_dir)
    if record is None or cfg.force:
        return "fresh"
    skip_done = cfg.skip_done if cfg.skip_done is not None else is_sweep()
    if record.get("status") in results.DONE_STATUSES:
        if not skip_done:
            log.info("replacing the finished run in %s", display_path(run_dir))
            return "fresh"
        held = (record.get("seed"), record.get("hyperparameters"))
        if held != (seed, hyperparameters):
            raise UserError(
                f"{display_path(run_dir)} already holds a finished run with seed {held[0]} and "
                f"hyperparameters {held[1]}; this task has seed {seed} and {hyperparameters}. "
                "To repeat a run over seeds sweep study=0,1,2; set experiment_name=... to keep "
                "both; or force=true to replace it."
            )
        return "skip"
    if record.get("status") == "running" and (run_dir / results.CHECKPOINT_FILE).exists():
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


def slurm_job_id() -> str | None:
    """The job as squeue, scontrol and scancel name it: 123_4 for task 4 of job array 123 (its
    own SLURM_JOB_ID alone may equal 123, which names the whole array)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def rerun_command() -> str:
    """The command that reruns this run alone; in a sweep, just this task's overrides."""
    if not HydraConfig.initialized():
        return shlex.join(sys.argv)
    return shlex.join(["python", "run.py", *HydraConfig.get().overrides.task])


def summary_line(record: dict[str, Any], run_dir: Path) -> str:
    target = record["target"]
    metric = record.get("final_validation_metric")
    time_to_target = record.get("time_to_target")
    parts = [
        f"{record['status']:<11}",
        f"time_to_target {'inf' if time_to_target is None else f'{time_to_target:.2f}'} s",
        f"steps_to_target {record.get('steps_to_target') or 'inf'}",
        f"{target['target_metric']} {'—' if metric is None else f'{metric:.4f}'} "
        f"(target {target['target_value']:g})",
        display_path(run_dir),
    ]
    if record.get("error"):
        parts.insert(4, f"error: {record['error'].splitlines()[-1]}")
    return " | ".join(parts)


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Run (or skip, or resume) the run `cfg` describes; returns its record."""
    seed = run_seed(cfg)
    workload, submission, hyperparameters = prepare(cfg)
    run_dir = (
        Path(HydraConfig.get().runtime.output_dir)
        if HydraConfig.initialized()
        else Path(
            cfg.results_dir,
            cfg.experiment_name,
            results.run_subdir(
                cfg.ruleset.name, submission.name, workload.name, cfg.study, cfg.trial
            ),
        )
    )
    start = decide_start(run_dir, cfg, seed, hyperparameters)
    if start == "skip":
        record = results.read_record(run_dir)
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

    record_base = {
        "experiment_name": cfg.experiment_name,
        "ruleset": cfg.ruleset.name,
        "submission": submission.name,
        "workload": workload.name,
        "study": cfg.study,
        "trial": cfg.trial,
        "seed": seed,
        "hyperparameters": hyperparameters,
        "target": None,
        **environment.describe(device),
        "slurm_job_id": slurm_job_id(),
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": rerun_command(),
        "pid": os.getpid(),  # with host and slurm_job_id: where to look while it runs
    }
    results.write_text(run_dir / results.CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    results.write_json(run_dir / results.HPARAMS_FILE, hyperparameters)
    logger = build(cfg.logger, "logger")
    runner = None
    try:
        workload.setup(device)  # dataset loading: off the clock
        record_base["target"] = workload.describe()
        batch_size = submission.get_batch_size(workload.name) or workload.default_batch_size
        settings = RunSettings(
            seed=seed,
            budget_sec=workload.max_allowed_runtime_sec * cfg.ruleset.budget_factor,
            batch_size=int(batch_size),
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
            record_base,
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
        record = (
            runner.write_record("failed", message)
            if runner is not None
            else _failed_record(run_dir, record_base, message)
        )
        logger.finish(record)
    if record["status"] != "failed" and not cfg.keep_checkpoint:
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


def _failed_record(run_dir: Path, record_base: dict[str, Any], message: str) -> dict[str, Any]:
    record = {
        **record_base,
        "status": "failed",
        "reached": False,
        "time_to_target": None,
        "steps_to_target": None,
        "final_validation_metric": None,
        "global_step": 0,
        "preemption_count": 0,
        "error": message,
    }
    if record["target"] is None:
        record["target"] = {"target_metric": "?", "target_value": float("nan")}
    results.write_json(run_dir / results.RECORD_FILE, record)
    return record


def _hydra_run_dir() -> Path | None:
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def _rejected_record(cfg: DictConfig, message: str) -> None:
    run_dir = _hydra_run_dir()
    if run_dir is None:
        return
    results.write_json(
        run_dir / results.RECORD_FILE,
        {
            "experiment_name": cfg.experiment_name,
            "ruleset": cfg.ruleset.name,
            "submission": cfg.submission.get("name"),
            "workload": cfg.workload.get("name"),
            "study": cfg.study,
            "trial": cfg.trial,
            "status": "failed",
            "reached": False,
            "time_to_target": None,
            "steps_to_target": None,
            "error": f"UserError: {message}",
        },
    )


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
    if record["status"] == "failed" and not is_sweep():
        sys.exit(1)
    return objective(record)
