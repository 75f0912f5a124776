"""The generic submission: any `torch.optim.Optimizer` class plus a learning-rate schedule.

A submission YAML names the optimizer class by `_target_` (torch.optim, pytorch_optimizer,
schedulefree, ...), a schedule, default hyperparameters and a search space; this class turns
hyperparameters into optimizer keyword arguments and implements AlgoPerf's five functions.
Submissions that need more subclass it and override its hooks, keeping validation and
checkpointing: `build_optimizers` (several optimizers or parameter groups: muon.py),
`before_step` (schedule_free.py: back to training mode) and `after_step` (sophia.py: its
periodic Hessian estimate). It never reads the clock and never decides when to evaluate: the
runner does.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

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
from harness.tuning import (
    SearchSpace,
    SearchSpaceError,
    copy_search_space,
    is_point_list,
    search_space_names,
)
from submissions.schedules import Schedule

# Hyperparameters the harness itself consumes (not passed to the optimizer).
HARNESS_HYPERPARAMETERS = {
    "learning_rate": "peak learning rate (the optimizer's `lr`)",
    "label_smoothing": "label smoothing of the training loss",
    "grad_clip_norm": "clip the global gradient norm to this value (null: no clipping)",
}
# betaN and one_minus_betaN (AlgoPerf's tuning convention) fill the optimizer's `betas` tuple.
BETA_NAMES = {f"beta{i}": i - 1 for i in (1, 2, 3)}
ONE_MINUS_BETA_NAMES = {f"one_minus_beta{i}": i - 1 for i in (1, 2, 3)}
ONE_MINUS_BETA = re.compile(r"(.*)one_minus_(beta[123])")  # with a prefix such as muon's adam_


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


def integer_arguments(optimizer: Any) -> set[str]:
    """Constructor arguments annotated `int` (e.g. a preconditioning frequency)."""
    signature = inspect.signature(optimizer_class(optimizer).__init__)
    return {
        name for name, param in signature.parameters.items() if param.annotation in (int, "int")
    }


def optimizer_hyperparameter_names(optimizer: Any) -> set[str]:
    """Names under which a hyperparameter reaches this optimizer's constructor."""
    accepted = accepted_arguments(optimizer)
    num_betas = len(accepted.get("betas") or ())
    beta_names = {
        f"{prefix}{i}" for prefix in ("beta", "one_minus_beta") for i in range(1, num_betas + 1)
    }
    return beta_names | (set(accepted) - NOT_HYPERPARAMETERS)


def without(values: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`values` without `key`, so the optimizer's own default applies; a learning rate (which
    has none) is set to a harmless 1e-3 instead."""
    rest = {k: v for k, v in values.items() if k != key}
    if key.endswith("learning_rate"):
        rest[key] = 1e-3
    return rest


def stand_in_model() -> nn.Module:
    """A tiny model with a hidden 2-D weight, a head and biases: every kind of parameter an
    optimizer may treat apart (Muon's matrices), for building optimizers before the real run."""
    model = nn.Sequential()
    model.add_module("body", nn.Linear(4, 4))
    model.add_module("head", nn.Linear(4, 2))
    return model


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class OptimizerSubmission(Submission):
    # The step is proportional to the scheduled learning rate (0 at a rate of 0, half at half):
    # true of every optimizer whose update is `-lr * direction(state, gradient)`. The
    # conformance suite checks it; a submission whose steps depend on earlier rates too (a
    # schedule-free average) sets it to False and is checked only for following the schedule.
    update_proportional_to_learning_rate = True

    def __init__(
        self,
        name: str,
        optimizer: Any,
        schedule: Schedule,
        hyperparameters: Mapping[str, Any],
        search_space: SearchSpace | None = None,
        batch_size: int | Mapping[str, int] | None = None,
        step_hint_arguments: Mapping[str, float] | None = None,
        data_parallel_refusal: str | None = None,
    ) -> None:
        """
        Args:
            name: the submission's name in results and tables.
            optimizer: an optimizer class, or a `functools.partial` of one with fixed
                arguments (Hydra `_partial_: true`), e.g. SGD with `nesterov: true`.
            schedule: learning-rate multiplier as a function of the step.
            hyperparameters: defaults; the self-tuning ruleset uses exactly these.
            search_space: AlgoPerf-format space for the external ruleset (ranges by name, or
                a list of points).
            batch_size: one size for every workload, a mapping from workload name to size,
                or None for each workload's reference batch size.
            step_hint_arguments: optimizer arguments set to round(fraction x the workload's
                step_hint), for horizons that scale with the run (AdEMAMix's t_alpha_beta3).
            data_parallel_refusal: why the algorithm is wrong when the run is data-parallel
                (several processes, each with a shard of the batch); None: it works there.
        """
        self.name = name
        self.optimizer = optimizer
        self.schedule = schedule
        self.default_hyperparameters = dict(hyperparameters)
        self.search_space = copy_search_space(search_space)
        self.batch_size = batch_size
        self.step_hint_arguments = dict(step_hint_arguments or {})
        self.data_parallel_refusal = data_parallel_refusal

    # -- hyperparameters ----------------------------------------------------------------------
    def validate_hyperparameters(
        self, hyperparameters: Hyperparameters, workload: Workload | None = None
    ) -> None:
        """Unknown, ill-typed or non-finite hyperparameters, or search-space values, raise a
        clear error; with a workload, so do values the optimizer's own checks refuse (they run
        here, on a stand-in model, so that a bad value fails before any file is written)."""
        values = vars(hyperparameters)
        # Hyperparameters outside the search space first, so a bad key is blamed on its source.
        searched = search_space_names(self.search_space)
        outside_space = {
            key: self.default_hyperparameters[key] if key in searched else value
            for key, value in values.items()
            if key not in searched or key in self.default_hyperparameters
        }
        self._split_hyperparameters(outside_space)
        self._check_search_space_values(outside_space)
        self._split_hyperparameters(values)
        unknown = set(self.step_hint_arguments) - set(accepted_arguments(self.optimizer))
        if unknown:
            raise ValueError(
                f"submission {self.name}: step_hint_arguments {sorted(unknown)} are not "
                f"arguments of {optimizer_class(self.optimizer).__name__}"
            )
        if workload is not None:
            self._check_optimizers_accept(values, workload)

    def _check_optimizers_accept(self, values: Mapping[str, Any], workload: Workload) -> None:
        """Build the optimizers once on a stand-in model; name the hyperparameters they refuse
        (those without which they are accepted)."""
        refusal = self._refusal(values, workload)
        if refusal is None:
            return
        culprits = [key for key in values if self._refusal(without(values, key), workload) is None]
        named = ", ".join(f"{key}={values[key]!r}" for key in culprits) or "these hyperparameters"
        raise ValueError(
            f"submission {self.name}: {self.describe_algorithm()} refuses {named}: {refusal}"
        )

    def _refusal(self, values: Mapping[str, Any], workload: Workload) -> str | None:
        """What the optimizers' constructors say about `values`, or None if they accept them."""
        optimizer_kwargs, _, harness_values = self._split_hyperparameters(values)
        for argument, fraction in self.step_hint_arguments.items():
            optimizer_kwargs.setdefault(argument, max(1, round(fraction * workload.step_hint)))
        try:
            self.build_optimizers(
                workload, stand_in_model(), optimizer_kwargs, float(harness_values["learning_rate"])
            )
        except (ValueError, TypeError, RuntimeError) as error:
            return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return None

    def effective_hyperparameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`[prefix]one_minus_betaN: v` becomes `[prefix]betaN: 1 - v` (AlgoPerf's tuning
        convention), in place of an earlier `betaN`; a later `betaN` replaces it in turn."""
        effective: dict[str, Any] = {}
        for key, value in values.items():
            match = ONE_MINUS_BETA.fullmatch(key)
            if match is not None and is_number(value):
                effective[match.group(1) + match.group(2)] = 1.0 - value
            else:
                effective[key] = value  # (a non-number one_minus_betaN: validation names it)
        return effective

    def hyperparameter_names(self) -> list[str]:
        """Every name this submission accepts, for error messages and docs."""
        return sorted(
            set(HARNESS_HYPERPARAMETERS)
            | self.schedule.field_names()
            | optimizer_hyperparameter_names(self.optimizer)
        )

    def describe_algorithm(self) -> str:
        return (
            f"{optimizer_class(self.optimizer).__name__} with schedule "
            f"{type(self.schedule).__name__}"
        )

    def unknown_hyperparameter(self, key: str) -> ValueError:
        return ValueError(
            f"submission {self.name}: unknown hyperparameter {key!r}. "
            f"{self.describe_algorithm()} accepts: {', '.join(self.hyperparameter_names())}."
        )

    def _split_hyperparameters(
        self, values: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(optimizer kwargs, schedule fields, harness values); unknown or ill-typed keys raise."""
        schedule_fields = self.schedule.field_names()
        schedule_values: dict[str, Any] = {}
        harness_values: dict[str, Any] = {}
        optimizer_values: dict[str, Any] = {}
        for key, value in values.items():
            if key in HARNESS_HYPERPARAMETERS:
                if not (key == "grad_clip_norm" and value is None):
                    self._check_type(key, value, None)
                harness_values[key] = value
            elif key in schedule_fields:
                self._check_type(key, value, None)
                schedule_values[key] = value
            else:
                optimizer_values[key] = value
        optimizer_kwargs = self.optimizer_keyword_arguments(optimizer_values)
        if "learning_rate" not in harness_values:
            raise ValueError(f"submission {self.name}: hyperparameters need a learning_rate")
        return optimizer_kwargs, schedule_values, harness_values

    def optimizer_keyword_arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments of the optimizer from the hyperparameters meant for it.

        Subclasses with more than one optimizer split `values` and call
        `keyword_arguments_for` once per optimizer.
        """
        return self.keyword_arguments_for(self.optimizer, values)

    def keyword_arguments_for(
        self, optimizer: Any, values: Mapping[str, Any], prefix: str = ""
    ) -> dict[str, Any]:
        """`values` (names without `prefix`) as keyword arguments of `optimizer`."""
        accepted = accepted_arguments(optimizer)
        integers = integer_arguments(optimizer)
        kwargs: dict[str, Any] = {}
        betas: dict[int, float] = {}
        for key, value in values.items():
            shown = prefix + key
            # betaN / one_minus_betaN fill a `betas` tuple; an argument named beta1 is itself.
            fills_betas = "betas" in accepted and (key in BETA_NAMES or key in ONE_MINUS_BETA_NAMES)
            if not fills_betas and (key not in accepted or key in NOT_HYPERPARAMETERS):
                raise self.unknown_hyperparameter(shown)
            self._check_type(shown, value, accepted.get(key), integer=key in integers)
            if fills_betas and key in BETA_NAMES:
                betas[BETA_NAMES[key]] = value
            elif fills_betas:
                betas[ONE_MINUS_BETA_NAMES[key]] = 1.0 - value
            else:
                kwargs[key] = int(value) if key in integers else value
        if betas:
            default = list(accepted["betas"])
            if max(betas) >= len(default):
                raise ValueError(
                    f"submission {self.name}: {prefix}beta{max(betas) + 1} given but "
                    f"{optimizer_class(optimizer).__name__} has only {len(default)} betas"
                )
            for index, value in betas.items():
                default[index] = value
            kwargs["betas"] = tuple(default)
        return kwargs

    def _check_type(self, key: str, value: Any, default: Any, integer: bool = False) -> None:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError(
                    f"submission {self.name}: hyperparameter {key} must be true or "
                    f"false, got {value!r}"
                )
        elif not is_number(value):
            raise TypeError(
                f"submission {self.name}: hyperparameter {key} must be a number, got {value!r} "
                f"({type(value).__name__})"
            )
        elif not math.isfinite(value):
            raise ValueError(
                f"submission {self.name}: hyperparameter {key} must be a finite number, got "
                f"{value!r}"
            )
        elif integer and not float(value).is_integer():
            raise TypeError(
                f"submission {self.name}: hyperparameter {key} must be an integer, got {value!r}"
            )

    def _check_search_space_values(self, base: Mapping[str, Any]) -> None:
        """Every bound and feasible point of the search space is a valid value of its key.

        `base` supplies the other hyperparameters (each entry is checked with them alone).
        Malformed entries (not AlgoPerf's format) are reported by harness/tuning.py first.
        """
        for key, value, where in self._search_space_values():
            try:
                self._split_hyperparameters({**base, key: value})
            except (TypeError, ValueError) as error:
                reason = str(error).removeprefix(f"submission {self.name}: ").rstrip(".")
                raise SearchSpaceError(
                    f"submission {self.name}: search space {where} holds {value!r}, "
                    f"which is not a valid value ({reason})"
                ) from error

    def _search_space_values(self) -> list[tuple[str, Any, str]]:
        """(name, value, where) of every bound, feasible point and listed point's value."""
        found = []
        if is_point_list(self.search_space):
            for index, point in enumerate(self.search_space):
                items = point.items() if isinstance(point, Mapping) else []
                found += [(key, value, f"point {index}") for key, value in items]
            return found
        for key, spec in self.search_space.items():
            if not isinstance(spec, Mapping):
                continue
            values = spec.get("feasible_points") or [spec.get("min"), spec.get("max")]
            for value in values if isinstance(values, (list, tuple)) else []:
                found.append((key, value, f"entry {key!r}"))
        return found

    # -- hooks for subclasses -----------------------------------------------------------------
    def build_optimizers(
        self,
        workload: Workload,
        model: nn.Module,
        optimizer_kwargs: dict[str, Any],
        learning_rate: float,
    ) -> dict[str, torch.optim.Optimizer]:
        """The optimizers of this run by name; their names are the checkpoint's keys."""
        return {
            "optimizer": self.optimizer(model.parameters(), lr=learning_rate, **optimizer_kwargs)
        }

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
        for argument, fraction in self.step_hint_arguments.items():  # a hyperparameter wins
            optimizer_kwargs.setdefault(argument, max(1, round(fraction * workload.step_hint)))
        learning_rate = float(harness_values["learning_rate"])
        optimizers = self.build_optimizers(workload, model_params, optimizer_kwargs, learning_rate)
        return {
            "optimizers": optimizers,
            # The schedule multiplies each parameter group's own initial learning rate.
            "base_learning_rates": {
                name: [group["lr"] for group in optimizer.param_groups]
                for name, optimizer in optimizers.items()
            },
            "schedule": self.schedule.with_values(**schedule_values),
            "learning_rate": learning_rate,
            "total_steps": workload.step_hint,
            "label_smoothing": float(harness_values.get("label_smoothing") or 0.0),
            "grad_clip_norm": harness_values.get("grad_clip_norm"),
        }

    def set_learning_rates(self, optimizer_state: OptimizerState, global_step: int) -> None:
        factor = optimizer_state["schedule"].factor(global_step, optimizer_state["total_steps"])
        for name, optimizer in optimizer_state["optimizers"].items():
            base = optimizer_state["base_learning_rates"][name]
            for group, learning_rate in zip(optimizer.param_groups, base, strict=True):
                group["lr"] = learning_rate * factor

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
        self.before_step(optimizer_state)
        self.set_learning_rates(optimizer_state, global_step)
        optimizers = optimizer_state["optimizers"].values()
        for optimizer in optimizers:
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
        try:
            for optimizer in optimizers:
                optimizer.step()
        except RuntimeError:
            # Optimizers that factorise matrices (Shampoo's SVD) raise on non-finite gradients.
            # That is a divergence: hand the runner the non-finite loss, which it records as
            # such. Checked only here, so a healthy step costs no host-device sync.
            if bool(torch.isfinite(loss)):
                raise
        self.last_loss = loss.detach()
        self.after_step(
            workload,
            current_param_container,
            model_state,
            batch,
            loss_type,
            optimizer_state,
            global_step,
            rng,
        )
        return optimizer_state, current_param_container, model_state

    # Hooks for submissions that add to the generic step, so they need not repeat its signature.
    def before_step(self, optimizer_state: OptimizerState) -> None:
        """Called first in every `update_params` (schedule-free: back to training mode)."""

    def after_step(
        self,
        workload: Workload,
        model: nn.Module,
        model_state: ModelState,
        batch: Batch,
        loss_type: LossType,
        optimizer_state: OptimizerState,
        global_step: int,
        rng: int,
    ) -> None:
        """Called last in every `update_params` (Sophia: its periodic Hessian estimate)."""

    # -- checkpointing ------------------------------------------------------------------------
    def optimizer_state_dict(self, optimizer_state: OptimizerState) -> dict[str, Any]:
        return {
            name: optimizer.state_dict()
            for name, optimizer in optimizer_state["optimizers"].items()
        }

    def load_optimizer_state_dict(
        self, optimizer_state: OptimizerState, state_dict: dict[str, Any]
    ) -> OptimizerState:
        optimizers = optimizer_state["optimizers"]
        if set(state_dict) != set(optimizers):
            raise ValueError(
                f"submission {self.name}: the checkpoint holds optimizers {sorted(state_dict)}, "
                f"this run has {sorted(optimizers)}"
            )
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state_dict[name])
        return optimizer_state
