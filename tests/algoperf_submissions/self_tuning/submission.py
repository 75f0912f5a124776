# ruff: noqa: UP006, UP035, UP045  (AlgoPerf's own typing style, kept on purpose)
"""Self-tuning SGD with Nesterov momentum, in AlgoPerf's PyTorch submission format.

A test fixture for the harness (tests/test_algoperf_submissions.py). A self-tuning submission
has no search space: AlgoPerf's runner passes `hyperparameters=None`, and the file uses its own
HPARAMS. It splits its `rng` with `algoperf.random_utils`, keeps a plain counter and a
LambdaLR schedule in its optimizer state, and takes `train_state` as its last argument.
"""

import collections
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from absl import logging
from algoperf import random_utils as prng
from algoperf import spec

HPARAMS = collections.namedtuple(
    "Hyperparameters", ["learning_rate", "momentum", "weight_decay", "warmup_fraction"]
)(learning_rate=0.05, momentum=0.9, weight_decay=5e-4, warmup_fraction=0.05)


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    del model_state, rng
    assert hyperparameters is None, "a self-tuning run passes no hyperparameters"
    optimizer = torch.optim.SGD(
        model_params.parameters(),
        lr=HPARAMS.learning_rate,
        momentum=HPARAMS.momentum,
        nesterov=True,
        weight_decay=HPARAMS.weight_decay,
    )
    warmup = max(1, int(HPARAMS.warmup_fraction * workload.step_hint))
    total = workload.step_hint

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(total - warmup, 1))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "scheduler": scheduler, "steps_seen": 0}


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
    train_state: Optional[Dict[str, Any]] = None,
) -> spec.UpdateReturn:
    del current_params_types, eval_results, hyperparameters
    assert train_state is not None and "is_time_remaining" in train_state
    assert loss_type in tuple(spec.LossType)
    model = current_param_container
    model.train()
    optimizer_state["optimizer"].zero_grad()
    logits, new_model_state = workload.model_fn(
        params=model,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
    )
    losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
    loss = losses["summed"] / losses["n_valid_examples"]
    loss.backward()
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    optimizer_state["steps_seen"] += 1
    if global_step == 0:
        logging.info("first loss %0.3f", loss.item())
    return optimizer_state, current_param_container, new_model_state


def get_batch_size(workload_name):
    if workload_name == "mnist":
        return 16
    return None  # the benchmark's own batch size for anything else


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
    del workload, optimizer_state, current_param_container, model_state, hyperparameters
    keys = prng.split(rng, 2)
    assert keys.shape == (2, 2) and global_step >= 0
    return next(input_queue)
