# ruff: noqa: UP006, UP035  (AlgoPerf's own typing style, kept on purpose)
"""AdamW with linear warmup and cosine decay, written in AlgoPerf's PyTorch submission format.

A test fixture for the harness (tests/test_algoperf_submissions.py), modelled on the shape of
AlgoPerf's paper baselines: `algoperf` imports, absl logging, `update_params` with
`train_state` among its parameters (so it must be called with keywords), hyperparameters read
as attributes, warmup and cosine as torch LR schedulers in the optimizer state.
"""

from typing import Any, Dict, Iterator, List, Tuple

import torch
from absl import logging
from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()


def _warmup_then_cosine(optimizer, step_hint: int, warmup_factor: float):
    warmup_steps = max(int(warmup_factor * step_hint), 1)
    warmup = LinearLR(optimizer, start_factor=1e-8, end_factor=1.0, total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=max(step_hint - warmup_steps, 1))
    return SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[warmup_steps])


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    del model_state, rng
    optimizer = torch.optim.AdamW(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    scheduler = _warmup_then_cosine(optimizer, workload.step_hint, hyperparameters.warmup_factor)
    return {"optimizer": optimizer, "scheduler": scheduler}


def update_params(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    batch: Dict[str, spec.Tensor],
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    train_state: Dict[str, Any],
    eval_results: List[Tuple[int, float]],
    global_step: int,
    rng: spec.RandomState,
) -> spec.UpdateReturn:
    del current_params_types, loss_type, eval_results
    assert train_state["accumulated_submission_time"] >= 0.0
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
        dropout_rate=getattr(hyperparameters, "dropout_rate", 0.0),
    )
    label_smoothing = (
        hyperparameters.label_smoothing if hasattr(hyperparameters, "label_smoothing") else 0.0
    )
    losses = workload.loss_fn(
        label_batch=batch["targets"],
        logits_batch=logits,
        mask_batch=batch.get("weights"),
        label_smoothing=label_smoothing,
    )
    loss = losses["summed"] / losses["n_valid_examples"]
    loss.backward()
    if hasattr(hyperparameters, "grad_clip"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=hyperparameters.grad_clip)
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    if global_step % 100 == 0:
        logging.info("%d) loss = %0.3f", global_step, loss.item())
    if workload.metrics_logger is not None:
        workload.metrics_logger.append_scalar_metrics({"loss": loss.item()}, global_step)
    return optimizer_state, current_param_container, new_model_state


def prepare_for_eval(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: List[Tuple[int, float]],
    global_step: int,
    rng: spec.RandomState,
) -> spec.UpdateReturn:
    del workload, current_params_types, hyperparameters, loss_type, eval_results, global_step, rng
    return optimizer_state, current_param_container, model_state


def get_batch_size(workload_name):
    batch_sizes = {
        "criteo1tb": 262_144,
        "fastmri": 32,
        "imagenet_resnet": 1024,
        "imagenet_vit": 1024,
        "librispeech_conformer": 256,
        "librispeech_deepspeech": 256,
        "ogbg": 512,
        "wmt": 128,
        "mnist": 16,
        "cifar": 128,
    }
    if workload_name not in batch_sizes:
        raise ValueError(f"Unsupported workload name: {workload_name}.")
    return batch_sizes[workload_name]


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
    del workload, optimizer_state, current_param_container, model_state
    del hyperparameters, global_step, rng
    return next(input_queue)
