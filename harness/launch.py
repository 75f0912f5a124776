"""From a Hydra config to a finished run: build the objects, choose the hyperparameters, decide
whether to start, resume or skip, call the runner, print the one-line summary.

Bad input becomes one clear paragraph (UserError), never a bare traceback. A run that crashes
writes its record with status `failed` and, inside a sweep, does not stop the sweep.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import errno
import inspect
import logging
import os
import random
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
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue

# harness.config registers the config schema and the `run_subdir` resolver on import: every
# process that runs a task (run.py, a Slurm job unpickling this module) needs them.
from harness import (  # noqa: F401
    config,
    distributed,
    environment,
    lifecycle,
    preemption,
    provenance,
    results,
)
from harness.errors import UserError
from harness.loggers import NullLogger
from harness.ranks import is_secondary_rank, launched_ranks
from harness.runner import Runner, RunSettings
from harness.spec import Submission, Workload
from harness.tuning import (
    SearchSpaceError,
    copy_search_space,
    trial_point,
    validate_search_space,
)

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
    except MissingMandatoryValue as error:  # a `???` in the YAML that the command line must set
        key = error.full_key or "?"
        raise UserError(
            f"Cannot build {what} {node.get('name', target)!r}: {key} is required (it is ??? "
            f"in its YAML). Add {key}=VALUE to the command line."
        ) from error
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):  # the class's own one-paragraph message
            raise error.__cause__ from None
        unimportable = _import_failure(error)
        if unimportable is not None:
            raise UserError(
                f"Cannot build {what} {node.get('name', target)!r}: {unimportable}. If it is "
                "your own code, name the folder that holds its module in OPTBENCH_USER_CONFIG "
                "(OPTBENCH_USER_CONFIG=/path/to/folder python run.py ...; it may hold your "
                "submission/*.yaml too), put that folder on Python's path (PYTHONPATH=...), or "
                "install its package into this environment (pip install -e /path/to/package); "
                "otherwise check the spelling of the _target_."
            ) from error
        cause = error.__cause__ or error
        hint = ""
        if target is not None and isinstance(cause, TypeError):
            # The hint is best effort; the error below stands on its own.
            with contextlib.suppress(Exception):
                hint = f" Valid settings: {', '.join(constructor_arguments(get_class(target)))}."
        raise UserError(
            f"Cannot build {what} {node.get('name', target)!r}: {cause}.{hint}"
        ) from error


def _import_failure(error: BaseException) -> str | None:
    """ "the class myopt.X (submission.optimizer._target_) cannot be imported: No module named
    'myopt'" when a `_target_` failed to import; None for any other failure."""
    chain, cause = [], error
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__
    root = chain[-1]
    if not isinstance(root, ImportError) or not isinstance(error, InstantiationException):
        return None
    message = str(error)
    target = message.split("'")[1] if message.startswith("Error locating target '") else "?"
    where = message.partition("full_key: ")[2].strip()
    key = f" ({where}._target_)" if where else ""
    return f"the class {target}{key} cannot be imported: {root}"


def check_study_and_trial(cfg: DictConfig) -> None:
    ruleset = cfg.ruleset
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


def search_point(cfg: DictConfig, submission: Submission) -> dict[str, Any]:
    """The (study, trial) point of the search space under a tuning ruleset; {} otherwise."""
    space = copy_search_space(getattr(submission, "search_space", None))
    try:
        validate_search_space(space, owner=f"submission {submission.name}")
        if not cfg.ruleset.tune:
            return {}
        if not space:
            raise UserError(
                f"ruleset {cfg.ruleset.name} tunes hyperparameters but submission "
                f"{submission.name} has an empty search_space"
            )
        return trial_point(space, cfg.study, cfg.trial, owner=f"submission {submission.name}")
    except SearchSpaceError as error:
        raise UserError(str(error)) from error


def choose_hyperparameters(cfg: DictConfig, submission: Submission) -> dict[str, Any]:
    """The defaults (with overrides), then the search point on top (a point's key comes later,
    so it wins over a default it aliases: one_minus_beta1 over beta1); effective values."""
    defaults = dict(getattr(submission, "default_hyperparameters", {}))
    point = search_point(cfg, submission)
    merged = {key: value for key, value in defaults.items() if key not in point}
    return submission.effective_hyperparameters({**merged, **point})


def submission_name(cfg: DictConfig) -> str:
    """The name a run is filed under: the submission's, with its averaging's suffix (`+ema`),
    as conf/config.yaml spells the run folder."""
    averaging = cfg.submission.get("averaging") or {}
    return f"{cfg.submission.get('name')}{averaging.get('suffix', '')}"


def build_submission(cfg: DictConfig) -> Submission:
    """The submission, wrapped by its weight averaging (`submission.averaging`, a config group:
    submissions/averaging.py) when one is chosen; the submission's class never sees it."""
    averaging_node = cfg.submission.get("averaging")
    if averaging_node is None:
        return build(cfg.submission, "submission")
    copied = copy.deepcopy(cfg)  # the submission's own interpolations still resolve in it
    with open_dict(copied.submission):
        del copied.submission["averaging"]
    submission: Submission = build(copied.submission, "submission")
    return build(averaging_node, "submission.averaging").wrap(submission)


def prepare(cfg: DictConfig) -> tuple[Workload, Submission, dict[str, Any]]:
    """Everything that can fail because of user input, before any file is written."""
    check_study_and_trial(cfg)
    workload: Workload = build(cfg.workload, "workload")
    submission = build_submission(cfg)
    hyperparameters = choose_hyperparameters(cfg, submission)
    check_batch_size(submission, workload)
    try:
        submission.validate_hyperparameters(SimpleNamespace(**hyperparameters), workload)
        # Every name in the search space must be a hyperparameter the submission accepts.
        space = copy_search_space(getattr(submission, "search_space", None))
        probe = {**hyperparameters, **trial_point(space, 0, 0)}
        submission.validate_hyperparameters(SimpleNamespace(**probe))
    except (ValueError, TypeError) as error:
        raise UserError(str(error)) from error
    return workload, submission, hyperparameters


def check_batch_size(submission: Submission, workload: Workload) -> None:
    """A submission's batch size is a positive integer, or None for the workload's."""
    size = submission.get_batch_size(workload.name)
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise UserError(
            f"submission {submission.name}: batch size {size!r} for {workload.name} is not a "
            "positive integer. Set submission.batch_size to a positive integer, or to null for "
            f"the workload's own ({workload.default_batch_size})."
        )


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """What determines the run's result (harness/lifecycle.py), from its resolved config (a
    sweep's composed task config also holds Hydra's own node, which the job does not see)."""
    task = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    return lifecycle.identity(OmegaConf.to_yaml(task, resolve=True))


def run_seed(cfg: DictConfig) -> int:
    return cfg.seed if cfg.seed is not None else 1000 * cfg.study + cfg.trial


def objective(record: results.RunRecord) -> float:
    """What a run returns to Hydra's sweepers: time-to-target, inf if never reached."""
    return float("inf") if record.time_to_target is None else float(record.time_to_target)


def is_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def rerun_command() -> str:
    """The command that reruns this run alone, from any shell (harness/provenance.py)."""
    return provenance.rerun_command()


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
        results.display_path(run_dir),
    ]
    if target is not None:
        value = "—" if metric is None else f"{metric:.4f}"
        parts.insert(3, f"{target.metric} {value} (target {target.value:g})")
    if record.error:
        parts.insert(-1, f"error: {record.error.splitlines()[-1]}")
    if record.disturbed:
        parts.insert(-1, f"DISTURBED: {record.disturbed_reason}")
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
        submission_name(cfg),
        cfg.workload.name,
        cfg.study,
        cfg.trial,
    )


def run(cfg: DictConfig) -> results.RunRecord:
    """Run, resume or skip the run `cfg` describes; returns its record.

    Everything the user gave is checked before the run folder is touched (prepare, then
    lifecycle.check_writable); then, holding the folder's lock, lifecycle.plan decides from what
    the folder holds, and a finished result is only ever replaced by one that has finished.

    In a data-parallel run (several processes, docs/design.md "Distributed runs") rank 0 alone
    holds the lock and decides; the other ranks follow its decision (`follow`)."""
    world, device = join(cfg)
    workload, submission, hyperparameters = prepare(cfg)
    check_data_parallel(submission, workload, world)
    if not world.is_writer:
        return follow(cfg, world, device, workload, submission, hyperparameters)
    run_dir = run_folder(cfg)
    identity = run_identity(cfg)
    skip_done = cfg.skip_done if cfg.skip_done is not None else is_sweep()
    with tell_followers(world) as tell:
        lifecycle.check_writable(run_dir)
        with lifecycle.RunLock(run_dir):
            plan = plan_under_lock(cfg, run_dir, identity, skip_done, world)
            tell(plan)
            return carry_out(
                cfg, plan, run_dir, world, device, workload, submission, hyperparameters, identity
            )


def plan_under_lock(
    cfg: DictConfig,
    run_dir: Path,
    identity: dict[str, Any],
    skip_done: bool,
    world: distributed.World,
) -> lifecycle.Plan:
    """What this attempt does with the run folder (call it holding the folder's lock)."""
    lifecycle.remove_leftover_temporaries(run_dir)
    plan = lifecycle.plan(
        run_dir,
        identity,
        force=cfg.force,
        skip_done=skip_done,
        load_checkpoint=results.load_checkpoint,
    )
    written_by = (plan.checkpoint or {}).get("world_size", 1)
    if plan.checkpoint is not None and written_by != world.size:
        command = (
            f"torchrun --nproc_per_node={written_by} run.py ..."
            if written_by > 1
            else "python run.py ..."
        )
        raise UserError(
            f"{results.display_path(plan.folder)} holds the checkpoint of this run trained by "
            f"{written_by} process(es), and this attempt has {world.size}: the clock of one run "
            f"must measure one machine. Resume it with {written_by} process(es) ({command}), "
            "or choose another experiment_name to start a new run."
        )
    return plan


def carry_out(
    cfg: DictConfig,
    plan: lifecycle.Plan,
    run_dir: Path,
    world: distributed.World,
    device: torch.device | None,
    workload: Workload,
    submission: Submission,
    hyperparameters: dict[str, Any],
    identity: dict[str, Any],
) -> results.RunRecord:
    """Rank 0 (or the one process), holding the lock: skip, or train and promote a finished
    replacement."""
    for note in plan.notes:
        log.info("%s", note)
    if plan.action == "skip":
        record = results.load_record(run_dir)
        log.info("skip (done, force=true reruns): %s", summary_line(record, run_dir))
        return record
    record = attempt(cfg, workload, submission, hyperparameters, identity, plan, world, device)
    if plan.action == "replace" and record.finished:
        kept = lifecycle.promote(run_dir)
        log.info("replaced the finished run in %s; the earlier result is in %s", run_dir, kept)
    elif plan.action == "replace":
        log.warning(
            "the finished result in %s is kept: this attempt ended %s (its files are in %s)",
            results.display_path(run_dir),
            record.status,
            results.display_path(plan.folder),
        )
    print(summary_line(record, run_dir), flush=True)
    return record


# -- data-parallel runs (docs/design.md, "Distributed runs") -------------------------------------
def join(cfg: DictConfig) -> tuple[distributed.World, torch.device | None]:
    """Join the run's process group when this process is one of several (before the submission
    is built: an AlgoPerf file asks pytorch_setup() when it is imported). One process: the
    single world, and the device is resolved later, by `attempt`."""
    if launched_ranks() is None:
        return distributed.SINGLE, None
    try:
        device = environment.resolve_device(cfg.device)
    except ValueError as error:
        raise UserError(str(error)) from error
    world, device = distributed.setup(device)
    if not world.is_writer:  # rank 0 tells what happens; the others speak only of errors
        log.setLevel(logging.ERROR)
    return world, device


def check_data_parallel(
    submission: Submission, workload: Workload, world: distributed.World
) -> None:
    """A data-parallel run needs a submission that works under it and a global batch that
    splits evenly over the ranks; else one paragraph, before any file is written."""
    if not world.distributed:
        return
    refusal = getattr(submission, "data_parallel_refusal", None)
    if refusal:
        raise UserError(
            f"submission {submission.name} cannot run data-parallel over {world.size} processes: "
            f"{refusal.strip()} (its YAML says so with data_parallel_refusal). Run it in one "
            "process (python run.py ..., without torchrun or hydra.launcher.tasks_per_node), "
            "or choose a submission that supports data parallelism."
        )
    batch_size = submission.get_batch_size(workload.name) or workload.default_batch_size
    if batch_size % world.size:
        raise UserError(
            f"the global batch of {batch_size} examples ({submission.name} on {workload.name}) "
            f"does not split evenly over {world.size} processes, so the ranks' shards would "
            "differ in size and the averaged gradient would not be the batch's. Choose a number "
            f"of processes that divides {batch_size}, or set submission.batch_size to a "
            f"multiple of {world.size}."
        )


class RankZeroStopped(UserError):
    """Rank 0 refused the run; the other ranks stop with it (rank 0 says why)."""


@contextlib.contextmanager
def tell_followers(world: distributed.World):
    """Rank 0 sends the other ranks its plan (what the folder's lock decided) with `tell`, or,
    when it fails before that, the reason, so that no rank waits for it forever."""
    told = []

    def tell(plan: lifecycle.Plan) -> None:
        message = (plan.action, str(plan.folder), plan.checkpoint is not None)
        distributed.from_rank0(world, message)
        told.append(message)

    try:
        yield tell
    except BaseException as error:
        if world.distributed and not told:
            distributed.from_rank0(world, ("stop", str(error), False))
        raise


def follow(
    cfg: DictConfig,
    world: distributed.World,
    device: torch.device | None,
    workload: Workload,
    submission: Submission,
    hyperparameters: dict[str, Any],
) -> results.RunRecord:
    """A rank other than 0: do what rank 0 decided. It trains in the same folder (resuming from
    the checkpoint rank 0 found there) but writes nothing."""
    action, folder, resume = distributed.from_rank0(world, None)
    if action == "stop":
        raise RankZeroStopped(f"rank {world.rank}: stopped with rank 0 (see its message above)")
    if action == "skip":
        return results.load_record(Path(folder))
    checkpoint = results.load_checkpoint(Path(folder) / results.CHECKPOINT_FILE) if resume else None
    plan = lifecycle.Plan(action, Path(folder), checkpoint)
    identity = run_identity(cfg)
    return attempt(cfg, workload, submission, hyperparameters, identity, plan, world, device)


def attempt(
    cfg: DictConfig,
    workload: Workload,
    submission: Submission,
    hyperparameters: dict[str, Any],
    identity: dict[str, Any],
    plan: lifecycle.Plan,
    world: distributed.World = distributed.SINGLE,
    device: torch.device | None = None,
) -> results.RunRecord:
    """Train in `plan.folder`, from `plan.checkpoint` if there is one; returns the record.
    Every rank of a data-parallel run trains; only rank 0 (`world.is_writer`) writes."""
    folder, resumed = plan.folder, plan.checkpoint is not None
    seed = run_seed(cfg)
    device = environment.resolve_device(cfg.device) if device is None else device
    threads, source = (
        (cfg.threads, "threads=") if cfg.threads is not None else environment.default_threads()
    )
    torch.set_num_threads(threads)
    cpus = environment.allotted_cpus()
    if threads > cpus:
        log.warning(
            "%d threads on %d allotted CPU(s) (%s): the threads will compete for the CPUs and "
            "slow each other down; set threads=%d",
            threads,
            cpus,
            source,
            cpus,
        )
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)

    point = search_point(cfg, submission)
    record = results.RunRecord(
        experiment_name=cfg.experiment_name,
        ruleset=ruleset_settings(cfg),
        submission=submission.name,
        workload=workload.name,
        study=cfg.study,
        trial=cfg.trial,
        seed=seed,
        hyperparameters=hyperparameters,
        search_point=point,
        fingerprint=lifecycle.fingerprint(identity),
        target=workload_target(workload),
        budget_sec=workload.max_allowed_runtime_sec * cfg.ruleset.budget_factor,
        **where_it_ran(device, world),
        started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        command=rerun_command(),
        pid=os.getpid(),  # with host and slurm_job_id: where to look while it runs
        # An AlgoPerf submission file: its path and sha256 (submissions/algoperf.py).
        submission_file=getattr(submission, "submission_file", None),
        external_code=provenance.external_code(cfg),
    )
    if not resumed and world.is_writer:
        results.write_text(folder / results.CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
        results.write_json(folder / results.HPARAMS_FILE, hyperparameters)
    logger = build(cfg.logger, "logger") if world.is_writer else NullLogger()
    runner = None
    try:
        workload.setup(device)  # dataset loading: off the clock
        batch_size = submission.get_batch_size(workload.name) or workload.default_batch_size
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
        logger.start(folder, logged_config(cfg, hyperparameters, point), resumed=resumed)
        runner = Runner(
            workload,
            submission,
            SimpleNamespace(**hyperparameters),
            settings,
            folder,
            record,
            logger,
            checkpoint=plan.checkpoint,
            world=world,
        )
        if resumed:
            log.info("resuming from the checkpoint in %s", results.display_path(folder))
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
        message = failure_message(error, folder)
        if isinstance(error, (UserError, OSError)):
            log.error("run failed: %s", message)
        else:  # a crash in a submission's or workload's code: its author needs the traceback,
            # in the log and in the record (which ends, like the traceback, with the error).
            message = traceback.format_exc().rstrip()
            log.error("run failed:\n%s", message)
        try:
            if runner is not None:
                record = runner.write_record("failed", message)
            else:
                record = record.replace(status="failed", error=message)
                if world.is_writer:
                    results.write_record(folder, record)
        except OSError as unwritable:  # a full disk: the record stays as last written
            raise UserError(
                f"{message}; the run's record could not be updated either "
                f"({failure_message(unwritable, folder)}). Its last checkpoint is intact: free "
                "some space and run the same command to resume."
            ) from error
        logger.finish(record)
    if record.status != "failed" and not cfg.keep_checkpoint and world.is_writer:
        (folder / results.CHECKPOINT_FILE).unlink(missing_ok=True)
    return record


def where_it_ran(device: torch.device, world: distributed.World) -> dict[str, Any]:
    """Where the run ran (environment.describe), with the number of processes: a run over 8
    GPUs is another machine than one over 1, so its hardware fingerprint says so and the report
    never ranks the two in one leaderboard."""
    described = environment.describe(device)
    if world.distributed:
        described["hardware"] = f"{described['hardware']} x{world.size} processes"
    return {**described, "world_size": world.size, "backend": world.backend}


def failure_message(error: BaseException, folder: Path) -> str:
    """What a failed record and the terminal say; a full disk in the words a user looks for."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"no space left on device: {error.filename or folder}"
    return f"{type(error).__name__}: {error}"


def logged_config(
    cfg: DictConfig, hyperparameters: dict[str, Any], point: dict[str, Any]
) -> dict[str, Any]:
    """The resolved config for an experiment tracker, with the hyperparameters the run used
    (the YAML's defaults are not what an external-tuning trial trains with)."""
    logged = OmegaConf.to_container(cfg, resolve=True)
    logged["submission"]["hyperparameters"] = dict(hyperparameters)
    logged["submission"]["search_point"] = dict(point)
    return logged


def preflight(cfg: DictConfig, run_dir: Path) -> tuple[str, str | None]:
    """A sweep task, looked at before the sweep launches: ("done", None) when it would only
    skip its finished run; ("conflict", what differs) when its folder holds a run made with other
    settings and force is off; ("run", None) otherwise, including a task whose config is
    rejected (it says why in its record when it runs). Reads records and configs only."""
    try:
        prepare(cfg)
    except UserError:
        return "run", None
    identity = run_identity(cfg)
    if not cfg.force:
        differs = lifecycle.conflict(run_dir, identity)
        if differs is not None:
            return "conflict", differs
    skip_done = cfg.skip_done if cfg.skip_done is not None else True  # what -m means
    done = lifecycle.finished_fingerprint(run_dir) == lifecycle.fingerprint(identity)
    return ("done" if done and skip_done and not cfg.force else "run"), None


def conflicts_paragraph(conflicts: list[tuple[Path, str]]) -> str:
    """One paragraph for the runs of a sweep that hold results made with other settings."""
    shown = "\n".join(
        f"  {results.display_path(run_dir)}: {what}" for run_dir, what in conflicts[:10]
    )
    more = f"\n  ... and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
    return (
        f"{len(conflicts)} run(s) of this sweep already hold results or checkpoints made with "
        f"other settings, so nothing was launched:\n{shown}{more}\nA sweep never replaces "
        "them silently. Run it with force=true to replace them (earlier results are kept in "
        "each run's .replaced/ folder), or choose another experiment_name to keep both."
    )


def hand_over(stop: preemption.Preempted) -> None:
    """The checkpoint is saved: now the signal handler we displaced may act (under submitit,
    the signal before the time limit requeues the job and exits). If it declines (submitit: out
    of requeues) the run is still only interrupted, not failed: its checkpoint resumes it."""
    try:
        preemption.hand_over(stop.signum)
    except Exception as error:
        log.error("not requeued: %s", error)


def _rejected_record(cfg: DictConfig, message: str) -> None:
    """A sweep task rejected before it started: a record that says why, in a folder that holds
    no record yet (a rejected task never touches an earlier run's files). It has a target when
    the workload could be built, and the hardware of this machine, so it counts as a miss."""
    run_dir = run_folder(cfg)
    if not _unused(run_dir):
        return
    target = hardware = None
    with contextlib.suppress(Exception):  # best effort: the record stands without them
        target = workload_target(build(cfg.workload, "workload"))
    with contextlib.suppress(Exception):
        hardware = environment.describe(environment.resolve_device(cfg.device))
    record = results.RunRecord(
        experiment_name=cfg.experiment_name,
        ruleset=ruleset_settings(cfg),
        submission=submission_name(cfg),
        workload=str(cfg.workload.get("name")),
        study=cfg.study,
        trial=cfg.trial,
        seed=run_seed(cfg),
        hyperparameters={},
        target=target,
        status="failed",
        error=f"UserError: {message}",
        command=rerun_command(),
        **(hardware or {}),
    )
    with contextlib.suppress(OSError):  # an unwritable folder is what was rejected, maybe
        results.write_record(run_dir, record)


# What Hydra (and our lock) put into a run folder before the task function decides anything.
BEFORE_THE_TASK = {".hydra", lifecycle.LOCK_FILE, "run.log"}


def _unused(run_dir: Path) -> bool:
    """Whether the folder holds nothing but what Hydra and the lock put there."""
    return not run_dir.is_dir() or all(e.name in BEFORE_THE_TASK for e in run_dir.iterdir())


def _remove_unused_run_dir(cfg: DictConfig) -> None:
    """Hydra creates the run folder before the task starts; drop it if the run was rejected
    and the folder holds nothing else (never a record, a checkpoint or anything put aside)."""
    run_dir = run_folder(cfg)
    if not run_dir.is_dir() or not _unused(run_dir):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    root = Path(cfg.results_dir).resolve()
    for parent in run_dir.resolve().parents:  # empty folders of the layout, up to results_dir
        if parent == root or root not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def main(cfg: DictConfig) -> float | None:
    """Hydra task function. Returns time-to-target (inf if not reached) for sweepers."""
    try:
        record = run(cfg)
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise  # the traceback, for whoever debugs the harness itself
        print(f"error: {error}", file=sys.stderr, flush=True)
        if is_secondary_rank():  # rank 0 alone writes, rejected records included
            sys.exit(2)
        if is_sweep():  # one bad task must not stop the sweep; its record says why
            if not isinstance(error, lifecycle.RunFolderBusy):
                _rejected_record(cfg, str(error))
            return None
        _remove_unused_run_dir(cfg)
        sys.exit(2)
    except preemption.Preempted as stop:
        if stop.interrupted:  # Ctrl-C: checkpointed at the step boundary
            print(
                f"interrupted at step {stop.global_step}; run the same command to resume",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(130)
        print(f"{stop}. Run the same command again to resume.", file=sys.stderr, flush=True)
        sys.exit(3)
    except KeyboardInterrupt:  # before training started or after it ended: nothing to resume
        print(
            "interrupted before training began or after it ended; run the same command to "
            "start again (nothing finished was lost)",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(130)
    if record.status == "failed" and not is_sweep():
        sys.exit(1)
    return objective(record)
