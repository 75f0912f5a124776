"""FRUGAL (Zmushko et al., 2024, "FRUGAL: Memory-Efficient Optimization by Reducing State
Overhead for Scalable Training", arXiv:2412.07077), written from the paper's description.

The gradient of every matrix is split in two: on a subspace (here a random subset of
`density` x its columns, drawn again every `update_gap` steps) a state-full optimizer (AdamW)
steps with its moments; on the rest a state-free one (signSGD) steps with none. Only the
subspace's moments are kept, so the optimizer state is `density` x AdamW's for the matrices.
When the subspace changes, its moments start again from zero (the paper's reset). Vectors
(biases, norms) are state-full throughout, as in the paper. `FRUGALReference` below is the same
algorithm column by column, slow and plain, for the tests. Never reads the clock.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

import torch


class FRUGAL(torch.optim.Optimizer):
    """
    Args:
        params: parameters or parameter groups.
        lr: learning rate of both parts (the schedule scales it).
        betas: AdamW's (beta1, beta2) on the subspace.
        eps: AdamW's epsilon.
        weight_decay: decoupled weight decay (lr x weight_decay per step), on every weight.
        density: fraction of each matrix's columns in the state-full subspace (the paper's rho;
            0.25 in its main experiments). 1: AdamW; 0: signSGD.
        update_gap: steps between two draws of the subspace (the paper's T, 200).
        state_free_lr_ratio: the signSGD part's learning rate as a fraction of lr.
        seed: seeds the subspace draws (with the parameter's index and the draw's number, so
            a resumed run draws the same subspaces).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        density: float = 0.25,
        update_gap: int = 200,
        state_free_lr_ratio: float = 1.0,
        seed: int = 0,
    ) -> None:
        if lr < 0 or not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"invalid lr {lr} or betas {betas}")
        if not 0.0 <= density <= 1.0:
            raise ValueError(f"density must be in [0, 1], got {density}")
        if update_gap < 1 or int(update_gap) != update_gap:
            raise ValueError(f"update_gap must be a positive integer, got {update_gap}")
        if eps <= 0 or weight_decay < 0 or state_free_lr_ratio < 0:
            raise ValueError("eps must be positive; weight_decay, state_free_lr_ratio >= 0")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            density=density,
            update_gap=int(update_gap),
            state_free_lr_ratio=state_free_lr_ratio,
            seed=seed,
        )
        super().__init__(params, defaults)

    @staticmethod
    def draw_columns(
        columns: int, density: float, seed: int, index: int, draw: int
    ) -> torch.Tensor:
        """The sorted indices of the state-full columns of the parameter `index` at draw
        `draw`: a pure function of its arguments."""
        keep = columns if density >= 1.0 else round(density * columns)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index * 10_007 + draw)
        return torch.randperm(columns, generator=generator)[:keep].sort().values

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        index = 0
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                index += 1
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["draws"] = 0
                matrix = p.ndim >= 2
                view, gview = (
                    (p.view(p.shape[0], -1), grad.view(p.shape[0], -1))
                    if matrix
                    else (
                        p.view(1, -1),
                        grad.reshape(1, -1),
                    )
                )
                columns = view.shape[1]
                redraw = (
                    matrix
                    and state["step"] % group["update_gap"] == 0
                    and ("columns" not in state or group["density"] < 1.0)
                )
                if matrix and redraw:
                    state["columns"] = self.draw_columns(
                        columns, group["density"], group["seed"], index, state["draws"]
                    ).to(p.device)
                    state["draws"] += 1
                elif not matrix and "columns" not in state:
                    state["columns"] = torch.arange(columns, device=p.device)
                if redraw or "exp_avg" not in state:  # the paper's reset of the moments
                    keep = len(state["columns"])
                    state["exp_avg"] = torch.zeros(
                        view.shape[0], keep, dtype=p.dtype, device=p.device
                    )
                    state["exp_avg_sq"] = torch.zeros_like(state["exp_avg"])
                    state["subspace_step"] = 0
                state["step"] += 1
                state["subspace_step"] += 1
                # (Optimizer.load_state_dict casts state tensors to the parameter's dtype.)
                chosen = state["columns"].long()
                if wd != 0:
                    p.mul_(1 - lr * wd)
                # State-free part first, on every column; the chosen columns are then replaced.
                rest = torch.sign(gview)
                rest[:, chosen] = 0
                view.add_(rest, alpha=-lr * group["state_free_lr_ratio"])
                if len(chosen):
                    sub = gview[:, chosen]
                    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                    exp_avg.lerp_(sub, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(sub, sub, value=1 - beta2)
                    t = state["subspace_step"]
                    step_size = lr / (1 - beta1**t)
                    denom = (exp_avg_sq / (1 - beta2**t)).sqrt_().add_(eps)
                    view[:, chosen] -= step_size * exp_avg / denom
        return loss


class FRUGALReference:
    """FRUGAL one column at a time, in float64, from the paper's description: slow and plain,
    for tests of `FRUGAL` (the schedule_free habit). Same arguments; `step(params)` with
    `.grad` set."""

    def __init__(self, params: list[torch.Tensor], **settings: float) -> None:
        self.params = params
        defaults = inspect.signature(FRUGAL.__init__).parameters.items()
        self.settings = {
            **{k: v.default for k, v in defaults if v.default is not inspect.Parameter.empty},
            **settings,
        }
        self.state: list[dict] = [{} for _ in params]
        self.t = 0

    def step(self) -> None:
        s = self.settings
        lr, (beta1, beta2), eps = s["lr"], s["betas"], s["eps"]
        for index, (p, state) in enumerate(zip(self.params, self.state, strict=True), start=1):
            grad = p.grad.double().reshape(p.shape[0], -1) if p.ndim >= 2 else p.grad.double()[None]
            weights = p.detach().double().reshape(grad.shape).clone()
            columns = grad.shape[1]
            draw = self.t // s["update_gap"]
            if p.ndim >= 2 and self.t % s["update_gap"] == 0 and (s["density"] < 1.0 or not state):
                chosen = FRUGAL.draw_columns(columns, s["density"], s["seed"], index, draw)
                state.clear()  # a new subspace: its moments start from zero
                state.update(chosen=chosen.tolist(), m={}, v={}, t=0)
            elif not state:  # a vector: state-full throughout
                state.update(chosen=list(range(columns)), m={}, v={}, t=0)
            state["t"] += 1
            weights *= 1 - lr * s["weight_decay"]
            for c in range(columns):
                g = grad[:, c]
                if c not in state["chosen"]:
                    weights[:, c] -= lr * s["state_free_lr_ratio"] * torch.sign(g)
                    continue
                m = beta1 * state["m"].get(c, torch.zeros_like(g)) + (1 - beta1) * g
                v = beta2 * state["v"].get(c, torch.zeros_like(g)) + (1 - beta2) * g * g
                state["m"][c], state["v"][c] = m, v
                m_hat = m / (1 - beta1 ** state["t"])
                v_hat = v / (1 - beta2 ** state["t"])
                weights[:, c] -= lr * m_hat / (torch.sqrt(v_hat) + eps)
            with torch.no_grad():
                p.copy_(weights.reshape(p.shape).to(p.dtype))
        self.t += 1
