"""FRUGAL (submissions/frugal.py) against its slow column-by-column reference, and its two
limits: density 1 is AdamW, density 0 is signSGD on the matrices."""

from __future__ import annotations

import io

import pytest
import torch

from submissions.frugal import FRUGAL, FRUGALReference

SETTINGS = dict(
    lr=3e-2, weight_decay=0.01, density=0.25, update_gap=10, state_free_lr_ratio=0.5, seed=3
)


def problem() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Least squares with a 6 x 8 weight and a bias: 2 of 8 columns state-full."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 8, generator=generator)
    targets = inputs @ torch.randn(8, 6, generator=generator)
    params = [torch.randn(6, 8, generator=generator), torch.zeros(6)]
    return inputs, targets, [p.requires_grad_() for p in params]


def set_gradients(params: list[torch.Tensor], inputs, targets) -> None:
    for p in params:
        p.grad = None
    loss = ((inputs @ params[0].T + params[1] - targets) ** 2).mean()
    loss.backward()


def copies(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_() for p in params]


def test_fast_frugal_matches_the_reference_across_subspace_changes():
    inputs, targets, params = problem()
    fast_params, slow_params = copies(params), copies(params)
    fast = FRUGAL(fast_params, **SETTINGS)
    slow = FRUGALReference(slow_params, **SETTINGS)
    for step in range(25):  # three subspaces: steps 0-9, 10-19, 20-24
        set_gradients(fast_params, inputs, targets)
        set_gradients(slow_params, inputs, targets)
        fast.step()
        slow.step()
        for f, s in zip(fast_params, slow_params, strict=True):
            torch.testing.assert_close(f, s, rtol=1e-5, atol=1e-6, msg=f"step {step}")
    state = fast.state[fast_params[0]]
    assert state["exp_avg"].shape == (6, 2) and state["draws"] == 3
    assert fast.state[fast_params[1]]["exp_avg"].shape == (1, 6)  # a vector: all state-full


def test_density_one_is_adamw():
    inputs, targets, params = problem()
    frugal_params, adamw_params = copies(params), copies(params)
    frugal = FRUGAL(frugal_params, lr=1e-2, weight_decay=0.01, density=1.0, update_gap=3)
    adamw = torch.optim.AdamW(adamw_params, lr=1e-2, weight_decay=0.01)
    for _ in range(10):
        set_gradients(frugal_params, inputs, targets)
        set_gradients(adamw_params, inputs, targets)
        frugal.step()
        adamw.step()
    for f, a in zip(frugal_params, adamw_params, strict=True):
        torch.testing.assert_close(f, a, rtol=1e-5, atol=1e-6)


def test_density_zero_is_signsgd_on_matrices():
    inputs, targets, params = problem()
    frugal = FRUGAL(params, lr=1e-2, density=0.0, state_free_lr_ratio=0.5)
    before = params[0].detach().clone()
    set_gradients(params, inputs, targets)
    expected = before - 0.5e-2 * torch.sign(params[0].grad)
    frugal.step()
    torch.testing.assert_close(params[0].detach(), expected)
    assert frugal.state[params[0]]["exp_avg"].numel() == 0


def test_a_checkpoint_mid_subspace_resumes_identically():
    inputs, targets, params = problem()
    original = FRUGAL(params, **SETTINGS)
    for _ in range(15):
        set_gradients(params, inputs, targets)
        original.step()
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored_params = copies(params)
    restored = FRUGAL(restored_params, **SETTINGS)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    for _ in range(10):  # across the draw at step 20
        for ps, opt in ((params, original), (restored_params, restored)):
            set_gradients(ps, inputs, targets)
            opt.step()
    for o, r in zip(params, restored_params, strict=True):
        assert torch.equal(o, r)


@pytest.mark.parametrize("bad", [dict(density=1.5), dict(update_gap=0), dict(lr=-1.0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        FRUGAL([torch.zeros(2, 2, requires_grad=True)], **bad)
