# ruff: noqa: UP006, UP035  (AlgoPerf's own typing style, kept on purpose)
"""NAdamW with warmup and cosine decay, in the older AlgoPerf format (`algorithmic_efficiency`).

A test fixture for the harness (tests/test_algoperf_submissions.py): the imports of files
written before AlgoPerf 0.5, an `update_params` without `train_state`, an optimizer class of
its own, and a search space that lists points (AlgoPerf's newer format: trial j takes point j).
It knows a batch size for `digits`, not for the other workloads of the harness.
"""

import math
from typing import Dict, Iterator, List, Tuple

import torch
from algorithmic_efficiency import spec
from algorithmic_efficiency.pytorch_utils import pytorch_setup

USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()


class NAdamW(torch.optim.Optimizer):
    """Adam with a Nesterov look-ahead on the first moment and decoupled weight decay."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        )

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros(())
                    state["m"] = torch.zeros_like(param)
                    state["v"] = torch.zeros_like(param)
                state["step"] += 1
                t = float(state["step"])
                param.mul_(1 - group["lr"] * group["weight_decay"])
                state["m"].lerp_(param.grad, 1 - beta1)
                state["v"].mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
                look_ahead = beta1 * state["m"] + (1 - beta1) * param.grad
                denominator = (state["v"] / (1 - beta2**t)).sqrt_().add_(group["eps"])
                param.addcdiv_(look_ahead, denominator, value=-group["lr"] / (1 - beta1**t))
        return None


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    del model_state, rng
    optimizer = NAdamW(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        weight_decay=hyperparameters.weight_decay,
    )
    warmup = max(1, int(hyperparameters.warmup_factor * workload.step_hint))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(workload.step_hint - warmup, 1))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return {
        "optimizer": optimizer,
        "scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor),
        "hyperparameters": hyperparameters._asdict(),
    }


def update_params(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    batch: Dict[str, spec.Tensor],
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: List[Tuple[int, float]],
    global_step: int,
    rng: spec.RandomState,
) -> spec.UpdateReturn:
    del loss_type, eval_results, global_step
    assert set(current_params_types) == set(workload.model_params_types)
    assert all(isinstance(t, spec.ParameterType) for t in current_params_types.values())
    model = current_param_container
    optimizer_state["optimizer"].zero_grad()
    logits, new_model_state = workload.model_fn(
        model, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=True
    )
    losses = workload.loss_fn(
        label_batch=batch["targets"],
        logits_batch=logits,
        label_smoothing=hyperparameters.label_smoothing,
    )
    (losses["summed"] / losses["n_valid_examples"]).backward()
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    return optimizer_state, current_param_container, new_model_state


def get_batch_size(workload_name):
    batch_sizes = {"mnist": 16, "digits": 64}
    return batch_sizes[workload_name]  # a KeyError for the others


def data_selection(
    workload: spec.Workload,
    input_queue: Iterator[Dict[str, spec.Tensor]],
    optimizer_state: spec.OptimizerState,
    current_param_container: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    global_step: int,
    rng: spec.RandomState,
) -> Dict[str, spec.Tensor]:
    return next(input_queue)
