"""The sweep launchers behind `hydra/launcher=slurm` and `hydra/launcher=local`.

Hydra instantiates launchers only from the `hydra_plugins` namespace package, hence this folder.
They are hydra-submitit-launcher's, plus: a run whose record says it is finished is not submitted
again; the sweep's progress (harness.sweep.progress) is printed while it waits; a task that ends
without a result (killed, cancelled, out of requeues) is reported after the others have finished
instead of cutting the wait short. What runs inside each job is the stock launcher's `__call__`
and `checkpoint`, so a job needs only hydra-submitit-launcher and the harness to unpickle.
Never trains, and never writes into results/ (submitit's pickles go to `submitit_folder`).
"""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import DictConfig, OmegaConf, open_dict
from submitit.slurm.slurm import SlurmInfoWatcher

from harness import ranks, results, sweep
from harness.sweep import progress

# harness.launch (and torch with it) is imported where a sweep needs it, never at import: Hydra
# imports every module of hydra_plugins on start-up, `run.py --help` included.

log = logging.getLogger("harness")
POLL_SECONDS = 0.5  # how often the launcher looks at its jobs and their records
REPORT_EVERY_SECONDS = 60.0  # progress is printed on every change, and at least this often


class _Task:
    # Not a dataclass: Hydra's plugin scan runs this module before it is in sys.modules.
    def __init__(self, index: int, overrides: list[str], config: DictConfig):
        self.index = index
        self.overrides = overrides
        self.config = config  # the task's composed config, as the job will see it
        self.job: Any = None  # a submitit Job once submitted

    @property
    def run_dir(self) -> Path:
        return Path(str(self.config.hydra.sweep.dir), str(self.config.hydra.sweep.subdir))

    def preflight(self) -> tuple[str, str | None]:
        """("done" | "run" | "conflict", what differs): launch.preflight, as the job would see
        it (skip_done unset means "skip" in a sweep)."""
        from harness import launch

        return launch.preflight(self.config, self.run_dir)

    def ended(self) -> bool:
        """Whether its job has ended: its result is written (the process may still be exiting,
        so its CPU is as good as free) or the job is no longer running."""
        if self.job is None:
            return False
        return self.job.paths.result_pickle.exists() or self.job.done()

    def job_return(self) -> JobReturn | None:
        """What Hydra's sweeper expects back; None if the job ended without a result."""
        if self.job is None:  # finished before the sweep started
            record = results.load_record(self.run_dir)
            time_to_target = (
                float("inf") if record.time_to_target is None else record.time_to_target
            )
            return JobReturn(
                self.overrides, status=JobStatus.COMPLETED, _return_value=time_to_target
            )
        try:
            return self.job.results()[0]
        except Exception:  # killed, cancelled, out of requeues: no result came back
            log.error(
                "sweep: task #%d (%s) ended without a result (state %s); its log: %s",
                self.index,
                " ".join(filter_overrides(self.overrides)),
                self.job.state,
                self.job.paths.stderr,
            )
            return None


class _SweepLauncher(submitit_launcher.BaseSubmititLauncher):
    stock: type[submitit_launcher.BaseSubmititLauncher]  # the plain launcher the jobs run

    def max_running(self) -> int | None:
        """How many tasks may run at once; None: one job array, the cluster schedules it."""
        return None

    def adopt(self, task: _Task, job: Any) -> None:
        """Attach a submitted job to its task."""
        task.job = job

    def executor(self) -> Any:
        import submitit  # lazily, like the parent: Hydra's plugin scan stays fast

        params = dict(self.params)
        folder = params.pop("submitit_folder")
        init = {}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(folder=folder, cluster=self._EXECUTOR, **init)
        generic = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in generic else f"{self._EXECUTOR}_{k}": v for k, v in params.items()}
        )
        return executor

    def job_function(self) -> submitit_launcher.BaseSubmititLauncher:
        """The stock launcher, set up like this one: what each job unpickles and calls."""
        function = self.stock(**self.params)
        function.setup(
            hydra_context=self.hydra_context, task_function=self.task_function, config=self.config
        )
        return function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        checked = check_before_launch(self, job_overrides, initial_job_idx)
        tasks = [task for task, _ in checked]
        to_run = [task for task, state in checked if state != "done"]
        log.info(
            "sweep: %d tasks, %d of them already finished (not submitted); results in %s",
            len(tasks),
            len(tasks) - len(to_run),
            sweep_dir,
        )
        if to_run:
            self.submit_and_wait(to_run, [task.run_dir for task in tasks])
        returns = [task.job_return() for task in tasks]
        lost = [task for task, returned in zip(tasks, returns, strict=True) if returned is None]
        if lost:
            # After every other task has finished; one paragraph, not a traceback per task.
            log.error(
                "sweep: %d of %d tasks ended without a result; their runs resume (or start "
                "again) when the same sweep runs again:\n  %s",
                len(lost),
                len(tasks),
                "\n  ".join(str(task.run_dir) for task in lost),
            )
            sys.exit(1)
        return returns

    def submit_and_wait(self, tasks: list[_Task], sweep_run_dirs: list[Path]) -> None:
        """Submit `tasks`, and print the progress of the whole sweep until they have ended."""
        executor, function = self.executor(), self.job_function()
        limit = self.max_running()
        waiting = [] if limit is None else list(tasks)
        if limit is None:
            arguments = zip(*(self.job_arguments(task) for task in tasks), strict=True)
            for task, job in zip(tasks, executor.map_array(function, *arguments), strict=True):
                self.adopt(task, job)
        log.info("sweep: %s jobs, their files in %s", self._EXECUTOR, executor.folder)
        reported, reported_at = "", 0.0
        clock, ended = sweep.SweepClock(len(tasks), len(sweep_run_dirs) - len(tasks)), set()
        while True:
            for task in tasks:
                if task.index not in ended and task.ended():
                    ended.add(task.index)
                    log.info(
                        "sweep: %s", clock.line(task.run_dir, results.read_record(task.run_dir))
                    )
            running = [task for task in tasks if task.job is not None and task.index not in ended]
            while waiting and len(running) < limit:
                task = waiting.pop(0)
                self.adopt(task, executor.submit(function, *self.job_arguments(task)))
                running.append(task)
            line = progress(sweep_run_dirs).line()
            if line != reported or time.monotonic() - reported_at > REPORT_EVERY_SECONDS:
                log.info("sweep: %s", line)
                reported, reported_at = line, time.monotonic()
            if not running and not waiting:
                break
            time.sleep(POLL_SECONDS)
        for run_dir, error in progress(sweep_run_dirs).failures:
            log.error("sweep: failed: %s: %s", run_dir, error.strip().splitlines()[-1])

    def job_arguments(self, task: _Task) -> tuple:
        """What the stock launcher's `__call__` takes: overrides, job number, Hydra's state."""
        job_id = f"job_id_for_{task.index}"
        return (task.overrides, "hydra.sweep.dir", task.index, job_id, Singleton.get_state())


def check_before_launch(launcher: Any, job_overrides: Sequence[Sequence[str]], first: int) -> list:
    """Every task of the sweep, composed; exits 2 with one paragraph, before anything runs,
    when some run folders hold results or checkpoints made with other settings."""
    loader = launcher.hydra_context.config_loader
    tasks = [
        _Task(first + i, list(o), loader.load_sweep_config(launcher.config, list(o)))
        for i, o in enumerate(job_overrides)
    ]
    states = [task.preflight() for task in tasks]
    conflicts = [
        (task.run_dir, what)
        for task, (state, what) in zip(tasks, states, strict=True)
        if state == "conflict"
    ]
    if conflicts:
        from harness import launch

        print(f"error: {launch.conflicts_paragraph(conflicts)}", file=sys.stderr, flush=True)
        sys.exit(2)
    sweep.write_plan(Path(str(launcher.config.hydra.sweep.dir)), [task.run_dir for task in tasks])
    return [(task, state) for task, (state, _) in zip(tasks, states, strict=True)]


class SerialLauncher(BasicLauncher):
    """`hydra/launcher=serial`, the default for `-m`: Hydra's basic launcher (one run after
    another in this process), after the same check as the others that no run folder holds a run
    made with other settings. Finished runs are skipped by each task itself."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        checked = check_before_launch(self, job_overrides, initial_job_idx)
        to_run = sum(state != "done" for _, state in checked)
        log.info(
            "sweep: %d runs, %d of them already finished (skipped)",
            len(checked),
            len(checked) - to_run,
        )
        clock = sweep.SweepClock(to_run, len(checked) - to_run)
        returns = []
        for task, state in checked:  # Hydra's BasicLauncher.launch, with a line per run
            with open_dict(task.config):
                task.config.hydra.job.id = task.config.hydra.job.num = task.index
            returns.append(
                run_job(
                    hydra_context=self.hydra_context,
                    task_function=self.task_function,
                    config=task.config,
                    job_dir_key="hydra.sweep.dir",
                    job_subdir_key="hydra.sweep.subdir",
                )
            )
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            if state != "done":
                log.info("sweep: %s", clock.line(task.run_dir, results.read_record(task.run_dir)))
        return returns


class _QueueWatcher(SlurmInfoWatcher):
    """submitit asks sacct for the state of its jobs; a cluster without an accounting database
    (the local one from slurm/up.sh) cannot answer sacct, but squeue lists its jobs, finished
    ones included for MinJobAge seconds. Without this, a job killed before it wrote its result
    would be waited for forever."""

    def _make_command(self) -> list[str] | None:
        command = super()._make_command()
        if command is None or _has_accounting():
            return command
        job_ids = sorted({job_id.split("_")[0] for job_id in self._registered - self._finished})
        return ["squeue", "--noheader", "--states=all", "--format=%i|%T|%N", "--jobs", *job_ids]

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        if _has_accounting():
            return super().read_info(string)
        text = string.decode() if isinstance(string, bytes) else string
        return super().read_info("JobID|State|NodeList\n" + text)  # sacct's header


@functools.cache
def _has_accounting() -> bool:
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    return "accounting_storage/none" not in config


class _SlurmJob(submitit_launcher.SlurmLauncher):
    """What each task of a Slurm job runs: the stock launcher's job. With
    `hydra.launcher.tasks_per_node` (and `nodes`) above 1 the job's tasks are the ranks of one
    data-parallel run (harness/distributed.py); ranks other than 0 leave Hydra's `.hydra/` and
    run.log to rank 0 (docs/design.md, "Distributed runs")."""

    def __call__(self, sweep_overrides: list[str], *args: Any) -> JobReturn:
        if ranks.is_secondary_rank():
            sweep_overrides = [*sweep_overrides, *ranks.SECONDARY_RANK_OVERRIDES]
        return super().__call__(sweep_overrides, *args)


class SlurmLauncher(_SweepLauncher, submitit_launcher.SlurmLauncher):
    """`hydra/launcher=slurm`: one Slurm job array per sweep (conf/hydra/launcher/slurm.yaml)."""

    stock = _SlurmJob
    watcher = _QueueWatcher(delay_s=60)

    def adopt(self, task: _Task, job: Any) -> None:
        super().adopt(task, job)
        job.watcher = self.watcher  # instead of submitit's class-wide, sacct-only watcher


class LocalLauncher(_SweepLauncher, submitit_launcher.LocalLauncher):
    """`hydra/launcher=local`: submitit's local executor (conf/hydra/launcher/local.yaml), as
    many tasks at a time as this machine has CPUs for (cpus_per_task each)."""

    stock = submitit_launcher.LocalLauncher

    def cpus_per_task(self) -> int:
        return self.params.get("cpus_per_task") or 1

    def max_running(self) -> int | None:
        from harness.environment import allotted_cpus

        return max(1, allotted_cpus() // self.cpus_per_task())

    def executor(self) -> Any:
        executor = super().executor()
        # torch's threads: the CPUs each task is given, not every core (as on Slurm).
        executor.update_parameters(local_setup=[f"export OMP_NUM_THREADS={self.cpus_per_task()}"])
        return executor
