"""Weight averaging as a wrapper on any submission: EMA (and Switch EMA), SWA and LAWA.

`submission/averaging=ema|swa|lawa` (conf/submission/averaging/) wraps whatever submission was
chosen: the inner submission trains the raw weights as it would alone; after every step the
wrapper updates an average of them, and `prepare_for_eval` (on the clock, as AlgoPerf counts
it) puts the average into the model, which the next `update_params` swaps back out, so
training continues from the raw weights. The average, and the raw weights while the average
is in the model (a checkpoint is taken at an evaluation), are part of the checkpoint, so a
resumed run continues bitwise. Never reads the clock; never changes what the inner submission
computes between two evaluations (except Switch EMA, whose point is to).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.optim import swa_utils

from harness.spec import (
    Batch,
    EvalResults,
    Hyperparameters,
    LossType,
    ModelState,
    OptimizerState,
    ParameterType,
    Submission,
    Workload,
)
from harness.tuning import copy_search_space, is_point_list

Tensors = list[torch.Tensor]
AverageState = dict[str, Any]  # tensors and plain values only: checkpoints load weights_only


def tracked(model: nn.Module) -> Tensors:
    """What is averaged: every parameter and every floating-point buffer (batch-norm
    statistics), in a fixed order; integer buffers (batch counts) stay the raw model's."""
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    return [p.detach() for p in model.parameters()] + [b.detach() for b in buffers]


@torch.no_grad()
def copy_into(targets: Tensors, sources: Tensors) -> None:
    """In place, so that optimizers keep their references to the model's parameters."""
    torch._foreach_copy_(targets, sources)


def clones(tensors: Tensors) -> Tensors:
    return [t.detach().clone() for t in tensors]


def steps_of(fraction: float, total_steps: int) -> int:
    return max(1, round(fraction * total_steps))


@dataclass(frozen=True)
class Averaging:
    """An averaging rule. Its fields other than `suffix` are hyperparameters: a value of the
    same name among the submission's hyperparameters (a default or a search-space point) wins
    over the YAML's, as schedule fields do. `suffix` is added to the submission's name
    (results/.../adamw+ema/...), so an averaged run never shares a folder with a raw one."""

    suffix: str = ""

    @classmethod
    def hyperparameter_names(cls) -> set[str]:
        return {field.name for field in dataclasses.fields(cls)} - {"suffix"}

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self.hyperparameter_names())}

    def with_values(self, **values: Any) -> Averaging:
        return dataclasses.replace(self, **values)

    def wrap(self, submission: Submission) -> Submission:
        """The submission to run: `submission` itself when nothing is averaged."""
        return AveragedSubmission(submission, self)

    # -- the rule: every method runs under torch.no_grad on the wrapper's state --------------
    def start(self, weights: Tensors, total_steps: int) -> AverageState:
        raise NotImplementedError

    def update(self, state: AverageState, weights: Tensors, step: int, total_steps: int) -> None:
        """After the optimizer step `step` (0-based) has produced `weights`."""
        raise NotImplementedError

    def average(self, state: AverageState) -> Tensors | None:
        """The weights to evaluate; None: the raw weights (nothing averaged yet)."""
        raise NotImplementedError

    def switches(self, step: int, total_steps: int) -> bool:
        """Whether the average replaces the raw weights after step `step` (Switch EMA)."""
        return False


@dataclass(frozen=True)
class NoAveraging(Averaging):
    """`submission/averaging=none` (the default): the submission as it is."""

    def wrap(self, submission: Submission) -> Submission:
        return submission


@dataclass(frozen=True)
class EMA(Averaging):
    """Exponential moving average of the weights, after every step:
    avg <- avg + (1 - d_n) (w - avg), d_n = min(ema_decay, (1 + n) / (10 + n)) for the n-th
    update (TensorFlow's ExponentialMovingAverage with num_updates: early averages are not
    dominated by the initial weights). With ema_switch_every_fraction > 0 it is Switch EMA
    (Li et al., 2024, arXiv:2402.09240): every that fraction of the step hint the average is
    copied into the raw weights, and training continues from it."""

    ema_decay: float = 0.999
    ema_switch_every_fraction: float = 0.0  # 0: never switch (plain EMA)

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.ema_switch_every_fraction < 0:
            raise ValueError("ema_switch_every_fraction must be >= 0 (0: never switch)")

    def decay(self, updates: int) -> float:
        return min(self.ema_decay, (1 + updates) / (10 + updates))

    def start(self, weights: Tensors, total_steps: int) -> AverageState:
        return {"average": clones(weights), "updates": 0}

    def update(self, state: AverageState, weights: Tensors, step: int, total_steps: int) -> None:
        decay = self.decay(state["updates"])
        swa_utils.get_ema_multi_avg_fn(decay)(state["average"], weights, state["updates"])
        state["updates"] += 1

    def average(self, state: AverageState) -> Tensors | None:
        return state["average"]

    def switches(self, step: int, total_steps: int) -> bool:
        if self.ema_switch_every_fraction == 0:
            return False
        return (step + 1) % steps_of(self.ema_switch_every_fraction, total_steps) == 0


@dataclass(frozen=True)
class SWA(Averaging):
    """Stochastic weight averaging (Izmailov et al., 2018): the equal-weight mean of the
    weights after every `swa_every` steps from swa_start_fraction x the step hint on
    (torch.optim.swa_utils' update); the raw weights are evaluated before it starts."""

    swa_start_fraction: float = 0.75
    swa_every: int = 1

    def __post_init__(self) -> None:
        if self.swa_start_fraction < 0 or int(self.swa_every) != self.swa_every:
            raise ValueError("swa_start_fraction must be >= 0 and swa_every an integer")
        if self.swa_every < 1:
            raise ValueError(f"swa_every must be at least 1, got {self.swa_every!r}")

    def start(self, weights: Tensors, total_steps: int) -> AverageState:
        return {"average": clones(weights), "count": 0}

    def update(self, state: AverageState, weights: Tensors, step: int, total_steps: int) -> None:
        since = step + 1 - round(self.swa_start_fraction * total_steps)
        if since < 0 or since % int(self.swa_every) != 0:
            return
        swa_utils.get_swa_multi_avg_fn()(state["average"], weights, state["count"])
        state["count"] += 1

    def average(self, state: AverageState) -> Tensors | None:
        return state["average"] if state["count"] > 0 else None


@dataclass(frozen=True)
class LAWA(Averaging):
    """Latest weight averaging (Kaddour, 2022; Sanyal et al., 2023), as in AlgoPerf's LAWA
    submissions: a queue of the last `lawa_queue_length` snapshots of the weights, one every
    lawa_every_fraction x the step hint from lawa_start_fraction x the hint on; the evaluated
    weights are their mean (computed in prepare_for_eval, on the clock)."""

    lawa_queue_length: int = 5
    lawa_every_fraction: float = 0.02
    lawa_start_fraction: float = 0.0

    def __post_init__(self) -> None:
        if int(self.lawa_queue_length) != self.lawa_queue_length or self.lawa_queue_length < 1:
            raise ValueError(f"lawa_queue_length must be an integer >= 1: {self.lawa_queue_length}")
        if self.lawa_every_fraction <= 0 or self.lawa_start_fraction < 0:
            raise ValueError("lawa_every_fraction must be > 0 and lawa_start_fraction >= 0")

    def start(self, weights: Tensors, total_steps: int) -> AverageState:
        return {"queue": []}

    def update(self, state: AverageState, weights: Tensors, step: int, total_steps: int) -> None:
        since = step + 1 - round(self.lawa_start_fraction * total_steps)
        if since < 0 or since % steps_of(self.lawa_every_fraction, total_steps) != 0:
            return
        queue = state["queue"]
        if len(queue) == int(self.lawa_queue_length):
            copy_into(queue[0], weights)  # reuse the oldest snapshot's memory
            queue.append(queue.pop(0))
        else:
            queue.append(clones(weights))

    def average(self, state: AverageState) -> Tensors | None:
        queue = state["queue"]
        if not queue:
            return None
        mean = clones(queue[0])
        for snapshot in queue[1:]:
            torch._foreach_add_(mean, snapshot)
        torch._foreach_div_(mean, float(len(queue)))
        return mean


class AveragedSubmission(Submission):
    """Any submission, evaluated at an average of its weights. One instance per run (it holds
    the run's average, as the inner submission's optimizers hold theirs)."""

    def __init__(self, inner: Submission, averaging: Averaging) -> None:
        self.inner = inner
        self.averaging = averaging
        self.name = f"{inner.name}{averaging.suffix}"
        names = averaging.hyperparameter_names()
        # The wrapper's search space is the whole one (harness/launch.py draws points from
        # it); the inner submission sees only its own names, as it would alone.
        self.search_space = copy_search_space(getattr(inner, "search_space", None))
        if hasattr(inner, "search_space"):
            inner.search_space = without_names(self.search_space, names)
        inner_defaults = dict(getattr(inner, "default_hyperparameters", {}))
        self.default_hyperparameters = {**averaging.values(), **inner_defaults}
        if hasattr(inner, "default_hyperparameters"):
            inner.default_hyperparameters = {
                k: v for k, v in inner_defaults.items() if k not in names
            }
        self.rule: Averaging = averaging
        self.state: AverageState = {}
        self.raw: Tensors | None = None  # the raw weights while the average is in the model
        self.total_steps = 1
        self.device = torch.device("cpu")

    def __getattr__(self, name: str) -> Any:  # the inner submission's other attributes
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def last_loss(self) -> torch.Tensor | None:  # type: ignore[override]
        return self.inner.last_loss

    @property
    def training_complete(self) -> bool:  # type: ignore[override]
        return self.inner.training_complete

    @training_complete.setter
    def training_complete(self, value: bool) -> None:
        self.inner.training_complete = value

    # -- hyperparameters ----------------------------------------------------------------------
    def split(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the averaging's values, the inner submission's)."""
        names = self.averaging.hyperparameter_names()
        mine = {k: v for k, v in values.items() if k in names}
        return mine, {k: v for k, v in values.items() if k not in names}

    def inner_hyperparameters(self, hyperparameters: Hyperparameters | None) -> Any:
        if hyperparameters is None:
            return None
        return SimpleNamespace(**self.split(vars(hyperparameters))[1])

    def validate_hyperparameters(
        self, hyperparameters: Hyperparameters, workload: Workload | None = None
    ) -> None:
        mine, theirs = self.split(vars(hyperparameters))
        for key, value in mine.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"submission {self.name}: hyperparameter {key} must be a number, got {value!r}"
                )
            if not math.isfinite(value):
                raise ValueError(f"submission {self.name}: hyperparameter {key} must be finite")
        try:
            self.averaging.with_values(**mine)
        except ValueError as error:
            raise ValueError(f"submission {self.name}: {error}") from error
        self.inner.validate_hyperparameters(SimpleNamespace(**theirs), workload)

    def effective_hyperparameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        mine, theirs = self.split(values)
        return {**self.inner.effective_hyperparameters(theirs), **mine}

    # -- the five functions -------------------------------------------------------------------
    def get_batch_size(self, workload_name: str) -> int | None:
        return self.inner.get_batch_size(workload_name)

    def attach_train_state(self, train_state: Mapping[str, Any]) -> None:
        self.inner.attach_train_state(train_state)

    def init_optimizer_state(
        self,
        workload: Workload,
        model_params: nn.Module,
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        rng: int,
    ) -> OptimizerState:
        mine, _ = self.split(vars(hyperparameters))
        self.rule = self.averaging.with_values(**mine)
        self.total_steps = workload.step_hint
        weights = tracked(model_params)
        self.device = weights[0].device
        self.state = self.rule.start(weights, self.total_steps)
        self.raw = None
        return self.inner.init_optimizer_state(
            workload, model_params, model_state, self.inner_hyperparameters(hyperparameters), rng
        )

    def data_selection(
        self,
        workload: Workload,
        input_queue: Iterator[Batch],
        optimizer_state: OptimizerState,
        current_param_container: nn.Module,
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        global_step: int,
        rng: int,
    ) -> Batch:
        return self.inner.data_selection(
            workload,
            input_queue,
            optimizer_state,
            current_param_container,
            model_state,
            self.inner_hyperparameters(hyperparameters),
            global_step,
            rng,
        )

    def update_params(
        self,
        workload: Workload,
        current_param_container: nn.Module,
        current_params_types: dict[str, ParameterType],
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        batch: Batch,
        loss_type: LossType,
        optimizer_state: OptimizerState,
        eval_results: EvalResults,
        global_step: int,
        rng: int,
    ) -> tuple[OptimizerState, nn.Module, ModelState]:
        self.swap_out(current_param_container)
        optimizer_state, model, model_state = self.inner.update_params(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            self.inner_hyperparameters(hyperparameters),
            batch,
            loss_type,
            optimizer_state,
            eval_results,
            global_step,
            rng,
        )
        with torch.no_grad():
            weights = tracked(model)
            self.rule.update(self.state, weights, global_step, self.total_steps)
            if self.rule.switches(global_step, self.total_steps):
                copy_into(weights, self.rule.average(self.state))
        return optimizer_state, model, model_state

    def prepare_for_eval(
        self,
        workload: Workload,
        current_param_container: nn.Module,
        current_params_types: dict[str, ParameterType],
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        loss_type: LossType,
        optimizer_state: OptimizerState,
        global_step: int,
        rng: int,
    ) -> tuple[OptimizerState, nn.Module, ModelState]:
        self.swap_out(current_param_container)  # twice in a row: the raw weights stay raw
        optimizer_state, model, model_state = self.inner.prepare_for_eval(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            self.inner_hyperparameters(hyperparameters),
            loss_type,
            optimizer_state,
            global_step,
            rng,
        )
        with torch.no_grad():
            average = self.rule.average(self.state)
            if average is not None:
                weights = tracked(model)
                self.raw = clones(weights)
                copy_into(weights, average)
        return optimizer_state, model, model_state

    def swap_out(self, model: nn.Module) -> None:
        """The raw weights back into the model, if the average is in it."""
        if self.raw is not None:
            copy_into(tracked(model), self.raw)
            self.raw = None

    # -- checkpointing ------------------------------------------------------------------------
    def optimizer_state_dict(self, optimizer_state: OptimizerState) -> dict[str, Any]:
        return {
            "submission": self.inner.optimizer_state_dict(optimizer_state),
            "averaging": {"state": self.state, "raw": self.raw},
        }

    def load_optimizer_state_dict(
        self, optimizer_state: OptimizerState, state_dict: dict[str, Any]
    ) -> OptimizerState:
        if set(state_dict) != {"submission", "averaging"}:
            raise ValueError(
                f"submission {self.name}: the checkpoint holds no averaged weights (it was made "
                "without submission/averaging, or with another)"
            )
        optimizer_state = self.inner.load_optimizer_state_dict(
            optimizer_state, state_dict["submission"]
        )
        self.state = to_device(state_dict["averaging"]["state"], self.device)
        self.raw = to_device(state_dict["averaging"]["raw"], self.device)
        return optimizer_state


def to_device(value: Any, device: torch.device) -> Any:
    """A loaded checkpoint's tensors, on the run's device (a checkpoint may load on the CPU)."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [to_device(v, device) for v in value]
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def without_names(space: Any, names: set[str]) -> Any:
    """A search space (ranges by name, or a list of points) without the entries `names`."""
    if is_point_list(space):
        return [{k: v for k, v in point.items() if k not in names} for point in space]
    return {k: v for k, v in (space or {}).items() if k not in names}


def reference_average(
    rule: Averaging, initial: Tensors, weights_by_step: list[Tensors], total_steps: int
) -> Tensors | None:
    """The average `rule` gives after steps 0..len(weights_by_step)-1 produced those weights,
    written from the formulas, one tensor and one step at a time in float64: slow and plain,
    for tests of the fast in-place versions above (the schedule_free habit)."""
    steps = [[w.double() for w in weights] for weights in weights_by_step]
    if isinstance(rule, EMA):
        average = [w.double() for w in initial]
        for n, weights in enumerate(steps):
            d = min(rule.ema_decay, (1 + n) / (10 + n))
            average = [d * a + (1 - d) * w for a, w in zip(average, weights, strict=True)]
        return average
    if isinstance(rule, SWA):
        start = round(rule.swa_start_fraction * total_steps)
        chosen = [
            w
            for s, w in enumerate(steps)
            if s + 1 >= start and (s + 1 - start) % rule.swa_every == 0
        ]
    elif isinstance(rule, LAWA):
        start = round(rule.lawa_start_fraction * total_steps)
        every = max(1, round(rule.lawa_every_fraction * total_steps))
        chosen = [w for s, w in enumerate(steps) if s + 1 >= start and (s + 1 - start) % every == 0]
        chosen = chosen[-int(rule.lawa_queue_length) :]
    else:
        raise TypeError(f"no reference for {type(rule).__name__}")
    if not chosen:
        return None
    return [sum(ws) / len(chosen) for ws in zip(*chosen, strict=True)]
