"""Sophia-G (Liu et al., 2023, "Sophia: A Scalable Stochastic Second-order Optimizer"):
clipped, diagonally preconditioned momentum with a Gauss-Newton-Bartlett (GNB) Hessian estimate.

Every `hessian_update_interval` steps the submission runs one extra forward/backward pass on
the step's batch with labels sampled from the model's own predictive distribution; the squared
gradient of that loss, times the batch size, is an unbiased estimate of the Gauss-Newton
diagonal. GNB needs no second derivatives, so it works with any model, including
`F.scaled_dot_product_attention` on CPU, whose kernel has no double backward (which rules out
the Hutchinson variant, SophiaH). Never reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from harness.spec import (
    Batch,
    ForwardPassMode,
    LossType,
    ModelState,
    OptimizerState,
    Workload,
)
from submissions.generic import OptimizerSubmission

# The per-example squared error (f - y)^2 is the negative log-likelihood of y ~ N(f, 1/2), up
# to a constant; sampling from that Gaussian makes GNB estimate its Gauss-Newton matrix.
SQUARED_ERROR_NOISE_STD = math.sqrt(0.5)


class SophiaG(torch.optim.Optimizer):
    """The Sophia update; the Hessian estimate arrives through `update_hessian`."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.965, 0.99),
        rho: float = 0.04,
        weight_decay: float = 0.1,
        eps: float = 1e-15,
        hessian_update_interval: int = 10,
    ) -> None:
        """
        Args:
            lr: learning rate; no coordinate moves more than lr per step (default 1e-4).
            betas: decay of the momentum and of the Hessian estimate (default (0.965, 0.99)).
            rho: scale of the Hessian in the denominator, gamma in the paper (default 0.04).
            weight_decay: decoupled, multiplied by lr as in AdamW (default 0.1).
            eps: keeps the ratio finite where the Hessian estimate is zero (default 1e-15).
            hessian_update_interval: k, steps between Hessian estimates (default 10); read by
                the submission, which runs the extra pass.
        """
        if lr < 0 or rho <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"invalid Sophia settings: lr={lr}, betas={betas}, rho={rho}, "
                f"weight_decay={weight_decay}"
            )
        if hessian_update_interval < 1:
            raise ValueError(f"hessian_update_interval must be >= 1, got {hessian_update_interval}")
        defaults = dict(
            lr=lr,
            betas=betas,
            rho=rho,
            weight_decay=weight_decay,
            eps=eps,
            hessian_update_interval=int(hessian_update_interval),
        )
        super().__init__(params, defaults)

    def _state_of(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        state = self.state[param]
        if not state:
            state["exp_avg"] = torch.zeros_like(param)
            state["hessian"] = torch.zeros_like(param)
        return state

    @torch.no_grad()
    def update_hessian(self, batch_examples: float) -> None:
        """h <- beta2 h + (1 - beta2) B g^2, with g the gradient of the sampled-label loss."""
        for group in self.param_groups:
            beta2 = group["betas"][1]
            for param in group["params"]:
                if param.grad is None:
                    continue
                hessian = self._state_of(param)["hessian"]
                hessian.mul_(beta2).addcmul_(
                    param.grad, param.grad, value=(1 - beta2) * batch_examples
                )

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, _) = group["lr"], group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._state_of(param)
                exp_avg = state["exp_avg"]
                exp_avg.lerp_(param.grad, 1 - beta1)
                param.mul_(1 - lr * group["weight_decay"])
                # Per coordinate: m / (rho h), clipped to [-1, 1]; sign(m) where h is tiny.
                ratio = (exp_avg.abs() / (group["rho"] * state["hessian"] + group["eps"])).clamp_(
                    max=1.0
                )
                param.addcmul_(exp_avg.sign(), ratio, value=-lr)
        return loss


def sample_labels(
    loss_type: LossType, logits: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Labels drawn from the model's predictive distribution (no gradient flows through)."""
    logits = logits.detach().float()
    if loss_type is LossType.SOFTMAX_CROSS_ENTROPY:
        probabilities = torch.softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)
        drawn = torch.multinomial(probabilities.cpu(), 1, generator=generator)
        return drawn.to(targets.device).reshape(targets.shape)
    if loss_type is LossType.MEAN_SQUARED_ERROR:
        noise = torch.randn(targets.shape, generator=generator).to(targets.device)
        return logits.reshape(targets.shape) + SQUARED_ERROR_NOISE_STD * noise
    raise ValueError(f"Sophia-G has no Gauss-Newton-Bartlett sampler for loss {loss_type}")


class SophiaSubmission(OptimizerSubmission):
    """The generic step, plus a GNB Hessian estimate after every k-th step (as the authors do)."""

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
        optimizer: SophiaG = optimizer_state["optimizers"]["optimizer"]
        interval = optimizer.defaults["hessian_update_interval"]
        if global_step % interval == interval - 1:
            self.estimate_hessian(workload, model, model_state, batch, loss_type, optimizer, rng)

    def estimate_hessian(
        self,
        workload: Workload,
        model: nn.Module,
        model_state: ModelState,
        batch: Batch,
        loss_type: LossType,
        optimizer: SophiaG,
        rng: int,
    ) -> None:
        optimizer.zero_grad(set_to_none=True)
        logits, _ = workload.model_fn(
            model, batch, model_state, ForwardPassMode.TRAIN, rng, update_batch_norm=False
        )
        generator = torch.Generator().manual_seed(rng)
        sampled = sample_labels(loss_type, logits, batch["targets"], generator)
        losses = workload.loss_fn(sampled, logits, batch.get("weights"))
        (losses["summed"] / losses["n_valid_examples"]).backward()
        optimizer.update_hessian(batch_examples=float(losses["n_valid_examples"]))
        optimizer.zero_grad(set_to_none=True)
