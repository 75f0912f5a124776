"""Muon (Jordan et al., 2024): orthogonalised momentum for 2-D hidden weights, AdamW elsewhere.

Muon is only meant for the hidden weight matrices; embeddings, the output layer, biases and
norm gains go to AdamW (Jordan's recommendation). The split follows the workload's own
parameter roles (`workload.model_params_types`), never parameter names or shapes alone.
Hyperparameters named `adam_*` configure the AdamW part. Never reads the clock.

"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from harness.spec import ParameterType, Workload
from submissions.generic import (
    OptimizerSubmission,
    optimizer_class,
    optimizer_hyperparameter_names,
)

log = logging.getLogger("harness")

FALLBACK_PREFIX = "adam_"
FALLBACK_LEARNING_RATE = f"{FALLBACK_PREFIX}learning_rate"


class MuonSubmission(OptimizerSubmission):
    def __init__(
        self,
        fallback_optimizer: Any,
        muon_parameter_types: Iterable[str] = ("weight",),
        **kwargs: Any,
    ) -> None:
        """
        Args:
            fallback_optimizer: optimizer class (or partial) for every parameter Muon does
                not take, configured by the `adam_*` hyperparameters.
            muon_parameter_types: ParameterType values whose (2-D) parameters go to Muon.
            **kwargs: as OptimizerSubmission; `optimizer` is the Muon class.
        """
        valid = {kind.value for kind in ParameterType}
        unknown = set(muon_parameter_types) - valid
        if unknown:
            raise ValueError(
                f"muon_parameter_types {sorted(unknown)} are not parameter types; "
                f"choose from {sorted(valid)}"
            )
        self.fallback_optimizer = fallback_optimizer
        self.muon_parameter_types = {ParameterType(kind) for kind in muon_parameter_types}
        super().__init__(**kwargs)

    def hyperparameter_names(self) -> list[str]:
        fallback = {
            FALLBACK_PREFIX + name
            for name in optimizer_hyperparameter_names(self.fallback_optimizer)
        }
        return sorted({*super().hyperparameter_names(), *fallback, FALLBACK_LEARNING_RATE})

    def describe_algorithm(self) -> str:
        return (
            f"{super().describe_algorithm()} and "
            f"{optimizer_class(self.fallback_optimizer).__name__} ({FALLBACK_PREFIX}*)"
        )

    def optimizer_keyword_arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """{"muon": kwargs, "fallback": kwargs including lr} from the two sets of names."""
        fallback = {
            key.removeprefix(FALLBACK_PREFIX): value
            for key, value in values.items()
            if key.startswith(FALLBACK_PREFIX) and key != FALLBACK_LEARNING_RATE
        }
        muon = {key: value for key, value in values.items() if not key.startswith(FALLBACK_PREFIX)}
        if FALLBACK_LEARNING_RATE not in values:
            raise ValueError(
                f"submission {self.name}: hyperparameters need {FALLBACK_LEARNING_RATE}"
            )
        self._check_type(FALLBACK_LEARNING_RATE, values[FALLBACK_LEARNING_RATE], None)
        fallback_kwargs = self.keyword_arguments_for(
            self.fallback_optimizer, fallback, prefix=FALLBACK_PREFIX
        )
        return {
            "muon": self.keyword_arguments_for(self.optimizer, muon),
            "fallback": {**fallback_kwargs, "lr": float(values[FALLBACK_LEARNING_RATE])},
        }

    def build_optimizers(
        self,
        workload: Workload,
        model: nn.Module,
        optimizer_kwargs: dict[str, Any],
        learning_rate: float,
    ) -> dict[str, torch.optim.Optimizer]:
        types = workload.model_params_types(model)
        muon_params, other_params = [], []
        for name, param in model.named_parameters():
            takes_muon = types[name] in self.muon_parameter_types and param.ndim == 2
            (muon_params if takes_muon else other_params).append(param)
        optimizers: dict[str, torch.optim.Optimizer] = {}
        if muon_params:
            optimizers["muon"] = self.optimizer(
                muon_params, lr=learning_rate, **optimizer_kwargs["muon"]
            )
        else:
            log.warning(
                "%s: %s has no 2-D parameters of types %s; every parameter uses %s",
                self.name,
                workload.name,
                sorted(kind.value for kind in self.muon_parameter_types),
                optimizer_class(self.fallback_optimizer).__name__,
            )
        if other_params:
            optimizers["fallback"] = self.fallback_optimizer(
                other_params, **optimizer_kwargs["fallback"]
            )
        return optimizers
