"""The generic submission: any `torch.optim.Optimizer` class plus a learning-rate schedule.

A submission YAML names the optimizer class by `_target_` (torch.optim, pytorch_optimizer,
schedulefree, ...), a schedule, default hyperparameters and a search space; this class turns
hyperparameters into optimizer keyword arguments and implements AlgoPerf's five functions.
It never reads the clock and never decides when to evaluate: the runner does.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from harness.schedules import Schedule
from harness.spec import (
    Batch,
    EvalResults,
    ForwardPassMode,
    Hyperparameters,
    LossType,
    ModelState,
    OptimizerState,
    ParameterType,
    Submission,
    Workload,
)

# Hyperparameters the harness itself consumes (not passed to the optimizer).
HARNESS_HYPERPARAMETERS = {
    "learning_rate": "peak learning rate (the optimizer's `lr`)",
    "label_smoothing": "label smoothing of the training loss",
    "grad_clip_norm": "clip the global gradient norm to this value (null: no clipping)",
}
# betaN and one_minus_betaN (AlgoPerf's tuning convention) fill the optimizer's `betas` tuple.
BETA_NAMES = {f"beta{i}": i - 1 for i in (1, 2, 3)}
ONE_MINUS_BETA_NAMES = {f"one_minus_beta{i}": i - 1 for i in (1, 2, 3)}


def optimizer_class(optimizer: Any) -> type:
    """The class behind a Hydra `_partial_` (functools.partial) or a class itself."""
    while isinstance(optimizer, functools.partial):
        optimizer = optimizer.func
    return optimizer


# Constructor arguments that select an implementation rather than an algorithm; set them in
# the `optimizer:` block of the YAML if needed. `lr` and `betas` have their own names above.
NOT_HYPERPARAMETERS = {
    "self",
    "params",
    "lr",
    "betas",
    "foreach",
    "fused",
    "capturable",
    "differentiable",
    "maximize",
}


def accepted_arguments(optimizer: Any) -> dict[str, Any]:
    """Keyword arguments of the optimizer's constructor with their defaults."""
    signature = inspect.signature(optimizer_class(optimizer).__init__)
    return {
        name: param.default
        for name, param in signature.parameters.items()
        if param.kind is not param.VAR_KEYWORD
    }


class OptimizerSubmission(Submission):
    def __init__(
        self,
        name: str,
        optimizer: Any,
        schedule: Schedule,
        hyperparameters: Mapping[str, Any],
        search_space: Mapping[str, Any] | None = None,
        batch_size: int | Mapping[str, int] | None = None,
    ) -> None:
        """
        Args:
            name: the submission's name in results and tables.
            optimizer: an optimizer class, or a `functools.partial` of one with fixed
                arguments (Hydra `_partial_: true`), e.g. SGD with `nesterov: true`.
            schedule: learning-rate multiplier as a function of the step.
            hyperparameters: defaults; the self-tuning ruleset uses exactly these.
            search_space: AlgoPerf-format space for the external ruleset.
            batch_size: one size for every workload, a mapping from workload name to size,
                or None for each workload's reference batch size.
        """
        self.name = name
        self.optimizer = optimizer
        self.schedule = schedule
        self.default_hyperparameters = dict(hyperparameters)
        self.search_space = dict(search_space or {})
        self.batch_size = batch_size

    # -- hyperparameters ----------------------------------------------------------------------
    def validate_hyperparameters(self, hyperparameters: Hyperparameters) -> None:
        self._split_hyperparameters(vars(hyperparameters))

    def _split_hyperparameters(
        self, values: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(optimizer kwargs, schedule fields, harness values); unknown or ill-typed keys raise."""
        accepted = accepted_arguments(self.optimizer)
        schedule_fields = self.schedule.field_names()
        optimizer_kwargs: dict[str, Any] = {}
        schedule_values: dict[str, Any] = {}
        harness_values: dict[str, Any] = {}
        betas: dict[int, float] = {}
        for key, value in values.items():
            self._check_type(key, value, accepted.get(key))
            if key in HARNESS_HYPERPARAMETERS:
                harness_values[key] = value
            elif key in schedule_fields:
                schedule_values[key] = value
            elif key in BETA_NAMES and "betas" in accepted:
                betas[BETA_NAMES[key]] = value
            elif key in ONE_MINUS_BETA_NAMES and "betas" in accepted:
                betas[ONE_MINUS_BETA_NAMES[key]] = 1.0 - value
            elif key in accepted and key not in NOT_HYPERPARAMETERS:
                optimizer_kwargs[key] = value
            else:
                num_betas = len(accepted.get("betas") or ())
                beta_names = {
                    f"{prefix}{i}"
                    for prefix in ("beta", "one_minus_beta")
                    for i in range(1, num_betas + 1)
                }
                choices = sorted(
                    set(HARNESS_HYPERPARAMETERS)
                    | schedule_fields
                    | beta_names
                    | (set(accepted) - NOT_HYPERPARAMETERS)
                )
                raise ValueError(
                    f"submission {self.name}: unknown hyperparameter {key!r}. "
                    f"{optimizer_class(self.optimizer).__name__} with schedule "
                    f"{type(self.schedule).__name__} accepts: {', '.join(choices)}."
                )
        if betas:
            default = list(accepted["betas"])
            if max(betas) >= len(default):
                raise ValueError(
                    f"submission {self.name}: beta{max(betas) + 1} given but "
                    f"{optimizer_class(self.optimizer).__name__} has only {len(default)} betas"
                )
            for index, value in betas.items():
                default[index] = value
            optimizer_kwargs["betas"] = tuple(default)
        if "learning_rate" not in harness_values:
            raise ValueError(f"submission {self.name}: hyperparameters need a learning_rate")
        return optimizer_kwargs, schedule_values, harness_values

    def _check_type(self, key: str, value: Any, default: Any) -> None:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError(
                    f"submission {self.name}: hyperparameter {key} must be true or "
                    f"false, got {value!r}"
                )
        elif key == "grad_clip_norm" and value is None:
            return
        elif not numeric:
            raise TypeError(
                f"submission {self.name}: hyperparameter {key} must be a number, got {value!r} "
                f"({type(value).__name__})"
            )

    # -- the five submission functions ---------------------------------------------------------
    def get_batch_size(self, workload_name: str) -> int | None:
        if isinstance(self.batch_size, Mapping):
            return self.batch_size.get(workload_name)
        return self.batch_size

    def init_optimizer_state(
        self,
        workload: Workload,
        model_params: nn.Module,
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        rng: int,
    ) -> OptimizerState:
        optimizer_kwargs, schedule_values, harness_values = self._split_hyperparameters(
            vars(hyperparameters)
        )
        learning_rate = float(harness_values["learning_rate"])
        optimizer = self.optimizer(model_params.parameters(), lr=learning_rate, **optimizer_kwargs)
        return {
            "optimizer": optimizer,
            "schedule": self.schedule.with_values(**schedule_values),
            "learning_rate": learning_rate,
            "total_steps": workload.step_hint,
            "label_smoothing": float(harness_values.get("label_smoothing") or 0.0),
            "grad_clip_norm": harness_values.get("grad_clip_norm"),
        }

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
        optimizer: torch.optim.Optimizer = optimizer_state["optimizer"]
        factor = optimizer_state["schedule"].factor(global_step, optimizer_state["total_steps"])
        for group in optimizer.param_groups:
            group["lr"] = optimizer_state["learning_rate"] * factor
        optimizer.zero_grad(set_to_none=True)
        logits, model_state = workload.model_fn(
            current_param_container,
            batch,
            model_state,
            ForwardPassMode.TRAIN,
            rng,
            update_batch_norm=True,
        )
        losses = workload.loss_fn(
            batch["targets"], logits, batch.get("weights"), optimizer_state["label_smoothing"]
        )
        loss = losses["summed"] / losses["n_valid_examples"]
        loss.backward()
        if optimizer_state["grad_clip_norm"] is not None:
            nn.utils.clip_grad_norm_(
                current_param_container.parameters(), optimizer_state["grad_clip_norm"]
            )
        self.step(optimizer, loss, current_param_container)
        self.last_loss = loss.detach()
        return optimizer_state, current_param_container, model_state

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, model: nn.Module) -> None:
        """One optimizer step; subclasses override for optimizers that need a closure."""
        optimizer.step()

    # -- checkpointing ------------------------------------------------------------------------
    def optimizer_state_dict(self, optimizer_state: OptimizerState) -> dict[str, Any]:
        return {"optimizer": optimizer_state["optimizer"].state_dict()}

    def load_optimizer_state_dict(
        self, optimizer_state: OptimizerState, state_dict: dict[str, Any]
    ) -> OptimizerState:
        optimizer_state["optimizer"].load_state_dict(state_dict["optimizer"])
        return optimizer_state
