"""Schedule-free optimizers (Defazio et al., 2024, `schedulefree` package): the mode switch.

A schedule-free optimizer trains at one point (y) and is evaluated at another (the average x),
so its parameters must be swapped before every evaluation and swapped back before the next
step: `optimizer.eval()` in prepare_for_eval (on the clock, as AlgoPerf counts it) and
`optimizer.train()` at the start of update_params. A checkpoint taken at an evaluation holds x
and the optimizer's train_mode flag, so a resumed run swaps back exactly as an uninterrupted
one. Never reads the clock.
"""

from __future__ import annotations

from torch import nn

from harness.spec import (
    Hyperparameters,
    LossType,
    ModelState,
    OptimizerState,
    ParameterType,
    Workload,
)
from submissions.generic import OptimizerSubmission


class ScheduleFreeSubmission(OptimizerSubmission):
    # y interpolates towards the average x with weights from every step's rate: a rate of 0
    # still moves it, so the update is not proportional to the current rate.
    update_proportional_to_learning_rate = False

    def before_step(self, optimizer_state: OptimizerState) -> None:
        for optimizer in optimizer_state["optimizers"].values():
            optimizer.train()  # a no-op unless the last call was prepare_for_eval

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
        for optimizer in optimizer_state["optimizers"].values():
            optimizer.eval()
        return optimizer_state, current_param_container, model_state
