"""The training loop: the only place that calls submission functions and reads the clock.

Clock rules (docs/design.md, "The clock"), enforced below where they apply:
- on the clock: data_selection (which runs the input pipeline), update_params,
  prepare_for_eval, and any compilation they trigger;
- off the clock: initialisation, evaluation, logging and checkpointing, accumulated
  separately as accumulated_eval_time and accumulated_logging_time;
- on CUDA the clock synchronises before every read, and nothing else synchronises per step.
Data-parallel runs (docs/design.md, "Distributed runs"): every rank runs this loop on its shard
of each global batch; after the clock read the ranks agree on the step (rank 0's time, the mean
loss, any signal), so all take the same decisions; only rank 0 writes files.
This module never decides hyperparameters or paths; harness/launch.py does.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import distributed, preemption, results, speed
from harness.data import PREPARE_FOR_EVAL, derive_seed, step_seed
from harness.loggers import NullLogger, RunLogger
from harness.progress import Progress
from harness.spec import Hyperparameters, Submission, Workload

log = logging.getLogger("harness")


@dataclass
class RunSettings:
    seed: int
    budget_sec: float  # submission-time budget (workload budget x ruleset factor)
    batch_size: int
    stop_at_target: bool = True
    max_steps: int | None = None  # hard cap on steps, for smoke tests
    divergence_factor: float = 100.0  # diverged when loss > factor x the first step's loss
    checkpoint: bool = True  # checkpoint at every evaluation so a killed run can resume
    progress: str = "auto"


@dataclass
class TrainState:
    """Everything about the loop that a checkpoint must restore (besides model, optimizer, RNG)."""

    global_step: int = 0
    accumulated_submission_time: float = 0.0
    accumulated_eval_time: float = 0.0
    accumulated_logging_time: float = 0.0
    preemption_count: int = 0
    first_loss: float | None = None
    last_loss: float | None = None
    time_to_target: float | None = None  # None = not (yet) reached = infinity
    steps_to_target: int | None = None
    eval_measurements: list[dict[str, float]] = field(default_factory=list)
    # Measurement (harness/speed.py): fixed at the first start, carried across resumes.
    budget_sec: float | None = None  # the run's budget, after scaling by the speed index
    speed_readings: list[float] = field(default_factory=list)  # the first at the first start
    cpu_capacity: float = 0.0  # CPU-seconds the run's CPUs offered while it ran
    cpu_other: float = 0.0  # of which other processes used
    cpu_steal: float = 0.0  # of which the hypervisor withheld
    last_eval_time: float = 0.0  # submission time of the last evaluation
    last_miss_time: float = 0.0  # submission time of the last evaluation below the target


class TrainStateView(Mapping):
    """AlgoPerf's `train_state` of a running loop, read-only and live: what a submission sees
    during a step is the state at the end of the previous one (harness time, in seconds of
    submission time; `last_eval_time` is the submission time of the last evaluation)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def _values(self) -> dict[str, Any]:
        runner = self._runner
        state = runner.state
        return {
            "validation_goal_reached": state.time_to_target is not None,
            "test_goal_reached": False,
            "is_time_remaining": state.accumulated_submission_time < runner.budget_sec,
            "last_eval_time": state.last_eval_time,
            "training_complete": runner.submission.training_complete,
            "accumulated_submission_time": state.accumulated_submission_time,
            "accumulated_eval_time": state.accumulated_eval_time,
            "accumulated_logging_time": state.accumulated_logging_time,
            "global_step": state.global_step,
        }

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())


class Clock:
    """Seconds since an arbitrary origin; synchronises CUDA first so queued kernels count."""

    def __init__(self, device: torch.device):
        self._synchronize: Callable[[], None] = (
            torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        )

    def read(self) -> float:
        self._synchronize()
        return time.perf_counter()


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    numpy_state = np.random.get_state()
    state["numpy"] = {
        "key": torch.from_numpy(numpy_state[1].astype(np.int64)),
        "pos": int(numpy_state[2]),
    }
    state["python"] = random.getstate()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    key = state["numpy"]["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, state["numpy"]["pos"], 0, 0.0))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class Runner:
    """Trains one submission on one workload and writes the run's files into `run_dir`."""

    def __init__(
        self,
        workload: Workload,
        submission: Submission,
        hyperparameters: Hyperparameters,
        settings: RunSettings,
        run_dir: Path,
        record: results.RunRecord,
        logger: RunLogger | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        world: distributed.World = distributed.SINGLE,
    ):
        self.workload = workload
        self.submission = submission
        self.hyperparameters = hyperparameters
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.base_record = record  # identity, target, hardware, versions: fixed for the run
        self.logger = logger or NullLogger()
        self.checkpoint = checkpoint  # to resume from, already loaded
        self.world = world  # this process's rank among the run's processes
        self.clock = Clock(workload.device)
        self.state = TrainState()
        self.started_wall = time.time()
        self.cpus = speed.run_cpus()
        self.probe: speed.SpeedProbe | None = None
        self.cpu_sample: speed.CpuSample | None = None
        self.disturbed_said = False

    # -- records ------------------------------------------------------------------------------
    def record(self, status: str, error: str | None = None) -> results.RunRecord:
        state = self.state
        last = state.eval_measurements[-1] if state.eval_measurements else {}
        target = self.base_record.target
        return self.base_record.replace(
            status=status,
            time_to_target=state.time_to_target,
            steps_to_target=state.steps_to_target,
            final_validation_metric=None if target is None else last.get(target.metric),
            global_step=state.global_step,
            n_evaluations=len(state.eval_measurements),
            accumulated_submission_time=state.accumulated_submission_time,
            accumulated_eval_time=state.accumulated_eval_time,
            accumulated_logging_time=state.accumulated_logging_time,
            preemption_count=state.preemption_count,
            budget_sec=self.budget_sec,
            base_budget_sec=self.settings.budget_sec,
            batch_size=self.settings.batch_size,
            wall_time_sec=time.time() - self.started_wall,
            error=error,
            time_to_target_resolution=(
                None
                if state.time_to_target is None
                else state.time_to_target - state.last_miss_time
            ),
            **self.measurement(),
        )

    def measurement(self) -> dict[str, Any]:
        """The record's speed_index, cpu, disturbed and disturbed_reason."""
        state = self.state
        if not state.speed_readings:
            return {}
        other = state.cpu_other / state.cpu_capacity if state.cpu_capacity else None
        steal = state.cpu_steal / state.cpu_capacity if state.cpu_capacity else None
        readings = speed.SpeedReadings(state.speed_readings)
        reason = speed.disturbance(readings, other, steal)
        return {
            "speed_index": {
                "unit": speed.UNIT,
                **readings.summary(),
                "reference": self.workload.reference_speed_index,
            },
            "cpu": {
                "threads": torch.get_num_threads(),
                "cpus": len(self.cpus),
                "other_share": other,
                "steal_share": steal,
            },
            "disturbed": reason is not None,
            "disturbed_reason": reason,
        }

    @property
    def budget_sec(self) -> float:
        return self.settings.budget_sec if self.state.budget_sec is None else self.state.budget_sec

    def write_record(self, status: str, error: str | None = None) -> results.RunRecord:
        record = self.record(status, error)
        if self.world.is_writer:
            results.write_record(self.run_dir, record)
        return record

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, model, model_state, optimizer_state) -> None:
        """Rank 0 writes it; the model's own state, without a data-parallel wrapper, so it
        loads into a run of any number of processes (launch.py still asks for the same)."""
        if not self.world.is_writer:
            return
        results.save_checkpoint(
            self.run_dir / results.CHECKPOINT_FILE,
            {
                "format": results.CHECKPOINT_FORMAT,
                "fingerprint": self.base_record.fingerprint,
                "train_state": dataclasses.asdict(self.state),
                "model": distributed.unwrap(model).state_dict(),
                "model_state": model_state,
                "optimizer": self.submission.optimizer_state_dict(optimizer_state),
                "rng": _rng_state(),
                "world_size": self.world.size,
            },
        )

    def restore_checkpoint(self, model, optimizer_state) -> tuple[Any, Any] | None:
        """Continue from `self.checkpoint` (harness/lifecycle.py checked that it is this run's);
        returns (model_state, optimizer_state), or None when there is none."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            return None
        self.state = TrainState(**checkpoint["train_state"])
        self.state.preemption_count += 1
        distributed.unwrap(model).load_state_dict(checkpoint["model"])
        optimizer_state = self.submission.load_optimizer_state_dict(
            optimizer_state, checkpoint["optimizer"]
        )
        _set_rng_state(checkpoint["rng"])
        return checkpoint["model_state"], optimizer_state

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> results.RunRecord:
        workload, submission, hp, settings = (
            self.workload,
            self.submission,
            self.hyperparameters,
            self.settings,
        )
        # Initialisation: off the clock.
        model, model_state = workload.init_model_fn(rng=settings.seed)
        # Every rank initialises the same model from the seed (and the wrapper broadcasts rank
        # 0's anyway); the submission sees the wrapper, whose backward averages gradients.
        model = distributed.wrap(model, self.world, workload.device)
        params_types = workload.model_params_types(model)
        optimizer_state = submission.init_optimizer_state(
            workload, model, model_state, hp, rng=settings.seed
        )
        restored = self.restore_checkpoint(model, optimizer_state)
        if restored is not None:
            model_state, optimizer_state = restored
        state = self.state
        submission.training_complete = False  # a new run (an instance may serve several)
        submission.attach_train_state(TrainStateView(self))
        self._start_measurement()
        # The budget may scale with the machine's speed: every rank takes rank 0's.
        state.budget_sec = distributed.from_rank0(self.world, state.budget_sec)
        self.write_record("running")
        input_queue = distributed.sharded_queue(
            workload.build_input_queue(
                settings.seed, "train", settings.batch_size, start_step=state.global_step
            ),
            self.world,
        )
        eval_results = [(int(row["global_step"]), row) for row in state.eval_measurements]
        progress = Progress(
            settings.progress if self.world.is_writer else "none",
            f"{submission.name} on {workload.name}",
            self.budget_sec,
            f"validation/{workload.target_metric_name}",
            workload.validation_target_value,
        )
        clock = self.clock
        status = None
        # Resumed from the checkpoint of a run's last evaluation (killed before its final
        # record): it ends now, as it would have, without another step.
        if state.time_to_target is not None and settings.stop_at_target:
            status = "reached"
        elif state.eval_measurements and self._out_of_budget():
            status = "reached" if state.time_to_target is not None else "not_reached"
        try:
            while status is None:
                step_rng = step_seed(settings.seed, state.global_step)
                start = clock.read()  # --- on the clock ---
                batch = submission.data_selection(
                    workload,
                    input_queue,
                    optimizer_state,
                    model,
                    model_state,
                    hp,
                    state.global_step,
                    step_rng,
                )
                optimizer_state, model, model_state = submission.update_params(
                    workload,
                    model,
                    params_types,
                    model_state,
                    hp,
                    batch,
                    workload.loss_type,
                    optimizer_state,
                    eval_results,
                    state.global_step,
                    step_rng,
                )
                seconds = clock.read() - start  # --- off the clock ---
                # The clock read above synchronised, so reading the loss adds no stall.
                loss = None if submission.last_loss is None else float(submission.last_loss)
                # Every rank takes rank 0's time, the mean loss and any rank's signal, so that
                # all decide alike when to evaluate, stop or checkpoint (one process: as is).
                outcome = distributed.agree(
                    self.world,
                    seconds,
                    loss,
                    preemption.requested(),
                    submission.training_complete,
                )
                state.accumulated_submission_time += outcome.seconds
                state.global_step += 1
                loss = outcome.loss
                if self._diverged(loss):
                    status = "diverged"
                    break
                progress.step(state.global_step, state.accumulated_submission_time, loss)
                # A submission may end training itself (AlgoPerf's TrainingCompleteError).
                out_of_budget = self._out_of_budget() or outcome.training_complete
                if self._evaluation_due() or out_of_budget:
                    optimizer_state, model, model_state, metrics = self._evaluate(
                        model, model_state, optimizer_state, params_types, eval_results
                    )
                    progress.evaluation(metrics, loss)
                    self._say_if_disturbed()
                    if not all(math.isfinite(v) for v in metrics.values()):
                        status = "diverged"
                    elif state.time_to_target is not None and settings.stop_at_target:
                        status = "reached"
                if status is None and out_of_budget:
                    status = "reached" if state.time_to_target is not None else "not_reached"
                signum = outcome.signal
                if status is None and signum is not None:
                    self._checkpoint_now(model, model_state, optimizer_state)
                    distributed.barrier(self.world)  # no rank leaves before it is written
                    raise preemption.Preempted(signum, state.global_step)
        finally:
            progress.close()
        record = self.write_record(status)
        self.logger.finish(record)
        return record

    def _evaluation_due(self) -> bool:
        """Every eval_every_steps steps, or every eval_every_sec seconds of submission time when
        the workload sets it (AlgoPerf's cadence)."""
        state, every_sec = self.state, self.workload.eval_every_sec
        if every_sec is not None:
            return state.accumulated_submission_time - state.last_eval_time >= every_sec
        return state.global_step % self.workload.eval_every_steps == 0

    def _out_of_budget(self) -> bool:
        state, settings = self.state, self.settings
        return state.accumulated_submission_time >= self.budget_sec or (
            settings.max_steps is not None and state.global_step >= settings.max_steps
        )

    def _diverged(self, loss: float | None) -> bool:
        state = self.state
        if loss is None:
            return False
        state.last_loss = loss
        if not math.isfinite(loss):
            return True
        if state.first_loss is None:
            state.first_loss = loss
            return False
        return abs(loss) > self.settings.divergence_factor * max(abs(state.first_loss), 1e-12)

    def _evaluate(self, model, model_state, optimizer_state, params_types, eval_results):
        workload, submission, state, clock = self.workload, self.submission, self.state, self.clock
        start = clock.read()
        optimizer_state, model, model_state = submission.prepare_for_eval(  # on the clock
            workload,
            model,
            params_types,
            model_state,
            self.hyperparameters,
            workload.loss_type,
            optimizer_state,
            state.global_step,
            derive_seed(self.settings.seed, state.global_step, PREPARE_FOR_EVAL),
        )
        eval_start = clock.read()
        state.accumulated_submission_time += eval_start - start
        # Off the clock; sharded over the ranks (spec.Workload.eval_model). On the model as the
        # submission has it (a data-parallel wrapper: its train/eval mode is the one that
        # counts; its forward without gradients is no collective).
        metrics = workload.eval_model(model, model_state, rng=self.settings.seed)
        reading, other, steal = self._measure()
        eval_end = clock.read()
        state.accumulated_eval_time += eval_end - eval_start

        row = {
            "global_step": state.global_step,
            "accumulated_submission_time": state.accumulated_submission_time,
            "accumulated_eval_time": state.accumulated_eval_time,
            "accumulated_logging_time": state.accumulated_logging_time,
            "preemption_count": state.preemption_count,
            "speed_index": reading,
            "cpu_other_share": math.nan if other is None else other,
            "cpu_steal_share": math.nan if steal is None else steal,
            **metrics,
        }
        state.eval_measurements.append(row)
        eval_results.append((state.global_step, row))
        within_budget = state.accumulated_submission_time <= self.budget_sec
        if state.time_to_target is None:
            if within_budget and workload.has_reached_validation_target(metrics):
                state.time_to_target = state.accumulated_submission_time
                state.steps_to_target = state.global_step
            else:
                state.last_miss_time = state.accumulated_submission_time
        state.last_eval_time = state.accumulated_submission_time

        # Logging and checkpointing: off the clock, counted as logging time; rank 0 only.
        if self.world.is_writer:
            results.write_eval_measurements(
                self.run_dir / results.EVAL_FILE, state.eval_measurements
            )
            self.logger.log_eval(state.global_step, row)
        self.write_record("running")
        if self.settings.checkpoint:
            self.save_checkpoint(model, model_state, optimizer_state)
        state.accumulated_logging_time += clock.read() - eval_end
        return optimizer_state, model, model_state, row

    def _checkpoint_now(self, model, model_state, optimizer_state) -> None:
        start = self.clock.read()
        self.save_checkpoint(model, model_state, optimizer_state)
        self.write_record("running")
        self.state.accumulated_logging_time += self.clock.read() - start

    # -- measurement (harness/speed.py) ---------------------------------------------------------
    def _start_measurement(self) -> None:
        """The first speed index (and, on a first start, the budget it scales); a warning when
        other processes are busy on this run's CPUs while it is read."""
        state, workload = self.state, self.workload
        self.probe = speed.SpeedProbe(workload, self.settings.batch_size, self.settings.seed)
        before = self._cpu_sample()
        reading = self.probe.measure(speed.REPEATS_AT_START)
        self.cpu_sample = self._cpu_sample()
        busy = speed.CpuShares.between(before, self.cpu_sample, *self._cpu_counts()).other
        if busy is not None and busy > speed.BUSY_AT_START:
            log.warning(
                "this machine is busy: other processes took %.0f%% of the CPU time this run "
                "needed (%d threads on %d CPUs) while it started; its times will be slower than "
                "on a quiet machine and it will likely be marked disturbed",
                100 * busy,
                *reversed(self._cpu_counts()),
            )
        first_start = not state.speed_readings  # a resumed run keeps its budget
        state.speed_readings.append(reading)
        if first_start:
            reference = workload.reference_speed_index
            if workload.scale_budget and reference is not None:
                scale, clamped = speed.budget_scale(reference, reading)
                state.budget_sec = self.settings.budget_sec * scale
                log.info(
                    "budget %.1f s: %.1f s scaled by the reference speed index %.4g / this "
                    "machine's %.4g%s (scale_budget: false keeps it fixed)",
                    state.budget_sec,
                    self.settings.budget_sec,
                    reference,
                    reading,
                    f", limited to {scale:g}x" if clamped else "",
                )

    def _cpu_counts(self) -> tuple[int, int]:
        """CPUs the run may use on this machine and the threads it runs on them: those of all
        its ranks on this machine (the other ranks are the run, not other processes)."""
        return len(self.cpus), torch.get_num_threads() * self.world.local_size

    def _cpu_sample(self) -> speed.CpuSample:
        """This machine's CPU counters, with the CPU time of the run's ranks on it (the mean per
        machine, when the run spans several) as the run's own. A collective: every rank takes
        one at the same point of the loop."""
        sample = speed.CpuSample.take(self.cpus)
        if not self.world.distributed:
            return sample
        own = distributed.sum_over_ranks(torch.tensor([sample.own], dtype=torch.float64))
        machines = self.world.size / self.world.local_size
        return dataclasses.replace(sample, own=float(own[0]) / machines)

    def _measure(self) -> tuple[float, float | None, float | None]:
        """A speed reading, and the CPU shares others took since the last reading."""
        reading = self.probe.measure(speed.REPEATS_AT_EVALUATION)
        self.state.speed_readings.append(reading)
        sample = self._cpu_sample()
        shares = speed.CpuShares.between(self.cpu_sample, sample, *self._cpu_counts())
        self.cpu_sample = sample
        if shares.other is not None:
            state = self.state
            capacity = shares.seconds * min(self._cpu_counts())
            state.cpu_capacity += capacity
            state.cpu_other += shares.other * capacity
            state.cpu_steal += shares.steal * capacity
        return reading, shares.other, shares.steal

    def _say_if_disturbed(self) -> None:
        """Once per run, as soon as it is: a line that says why its times are suspect."""
        if self.disturbed_said:
            return
        reason = self.measurement().get("disturbed_reason")
        if reason:
            self.disturbed_said = True
            log.warning("disturbed: %s; its times are not a quiet machine's", reason)
