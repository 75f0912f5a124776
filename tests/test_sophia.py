"""Sophia-G's Gauss-Newton-Bartlett estimator against the Gauss-Newton diagonal computed by hand
for a linear model, for both losses the workloads use; and the estimate is taken every k-th step
of a real run."""

from __future__ import annotations

import pytest
import torch

from harness.spec import LossType
from submissions.sophia import sample_labels
from tests.helpers import Trainer, build_submission
from workloads.common import mean_squared_error, softmax_cross_entropy

BATCH, FEATURES, CLASSES, DRAWS = 16, 3, 4, 4000


def gnb_average(loss_type: LossType, loss_fn, inputs, targets, weight) -> torch.Tensor:
    """Mean over draws of B * g^2, g the gradient of the batch loss at labels the model samples.

    All draws at once: draw r has its own copy of the weight, so the gradient of the summed
    per-draw losses with respect to copy r is that draw's gradient."""
    copies = weight.detach().expand(DRAWS, *weight.shape).clone().requires_grad_(True)
    logits = torch.einsum("bf,rcf->rbc", inputs, copies)
    sampled = sample_labels(
        loss_type, logits, targets.expand(DRAWS, *targets.shape), torch.Generator().manual_seed(0)
    )
    losses = loss_fn(sampled, logits)
    (losses["per_example"].sum() / BATCH).backward()
    return (BATCH * copies.grad**2).mean(dim=0)


@pytest.fixture
def inputs() -> torch.Tensor:
    return torch.randn(BATCH, FEATURES, generator=torch.Generator().manual_seed(1))


def test_squared_error_estimate_matches_the_hessian_diagonal(inputs):
    weight = torch.randn(1, FEATURES, generator=torch.Generator().manual_seed(2))
    estimate = gnb_average(
        LossType.MEAN_SQUARED_ERROR, mean_squared_error, inputs, torch.zeros(BATCH), weight
    )
    # mean over b of (f_b - y_b)^2 with f = w.x: the Hessian is 2/B sum_b x_b x_b^T.
    exact = 2 * (inputs**2).mean(dim=0, keepdim=True)
    torch.testing.assert_close(estimate, exact, rtol=0.1, atol=0.0)


def test_cross_entropy_estimate_matches_the_gauss_newton_diagonal(inputs):
    weight = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(3))
    targets = torch.zeros(BATCH, dtype=torch.long)
    estimate = gnb_average(
        LossType.SOFTMAX_CROSS_ENTROPY, softmax_cross_entropy, inputs, targets, weight
    )
    # Softmax cross-entropy of logits W x: the Gauss-Newton diagonal for W_kj is
    # 1/B sum_b p_bk (1 - p_bk) x_bj^2.
    probabilities = torch.softmax(inputs @ weight.T, dim=-1)
    exact = (probabilities * (1 - probabilities)).T @ inputs**2 / BATCH
    torch.testing.assert_close(estimate, exact, rtol=0.1, atol=0.0)


@pytest.mark.parametrize("workload_name", ["friedman", "digits"])
def test_the_hessian_estimate_is_taken_every_kth_step(workload_name, tiny_workloads):
    submission, hyperparameters = build_submission("sophia", ["submission.batch_size=8"])
    workload = tiny_workloads[workload_name]
    trainer = Trainer(submission, hyperparameters, workload, rng=0)
    optimizer = trainer.optimizer_state["optimizers"]["optimizer"]
    interval = optimizer.defaults["hessian_update_interval"]
    queue = workload.build_input_queue(0, "train", 8)

    def hessian_sum() -> float:
        return sum(float(state["hessian"].abs().sum()) for state in optimizer.state.values())

    for step in range(interval - 1):
        trainer.step(next(queue), step)
    assert hessian_sum() == 0.0, "no estimate before the k-th step"
    trainer.step(next(queue), interval - 1)
    assert hessian_sum() > 0.0, "the k-th step must update the Hessian estimate"
