"""NAdamW: Nesterov-accelerated Adam with decoupled weight decay, AlgoPerf's baseline optimizer.

torch.optim.NAdam(decoupled_weight_decay=True) is close but applies Dozat's momentum-decay
schedule (mu_t); AlgoPerf's NAdamW (Dahl et al. 2023) does not, so it is written out here:

    m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
    m_hat = b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)
    p <- p (1 - lr wd) - lr m_hat / (sqrt(v / (1 - b2^t)) + eps)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class NAdamW(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        """
        Args:
            lr: learning rate (default 1e-3).
            betas: decay rates of the first and second moments (default (0.9, 0.999)).
            eps: added to the denominator (default 1e-8).
            weight_decay: decoupled weight decay, multiplied by lr as in AdamW (default 1e-2).
        """
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"invalid NAdamW settings: lr={lr}, betas={betas}, eps={eps}, "
                f"weight_decay={weight_decay}"
            )
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, weight_decay = (
                group["lr"],
                group["betas"],
                group["eps"],
                group["weight_decay"],
            )
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                state = self.state[param]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                step = float(state["step"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                param.mul_(1 - lr * weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                # Nesterov look-ahead: the next step's bias-corrected momentum plus this gradient.
                nesterov = exp_avg * (beta1 / (1 - beta1 ** (step + 1))) + grad * (
                    (1 - beta1) / (1 - beta1**step)
                )
                denominator = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
                param.addcdiv_(nesterov, denominator, value=-lr)
        return loss
