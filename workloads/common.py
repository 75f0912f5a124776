"""Pieces shared by workload families: AlgoPerf-style loss functions and a base class for
datasets that fit in device memory as tensors. Nothing here knows about the clock."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.data import EpochBatchIndices, fixed_batches
from harness.spec import Batch, ForwardPassMode, LossOutput, LossType, ModelState, Workload

# The activations a workload's `activation` key may name (its variants swap them).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def choose(workload: str, what: str, value: str, choices: Mapping[str, Any]) -> Any:
    """`choices[value]`, or a ValueError that names the workload, the key and the choices."""
    if value not in choices:
        raise ValueError(f"{workload}: unknown {what} {value!r}; choose one of {sorted(choices)}")
    return choices[value]


def set_batch_norm_updates(model: nn.Module, enabled: bool) -> None:
    """Stop (enabled=False) or resume the update of batch-norm running statistics: a training
    forward pass with `update_batch_norm=False` normalises with the batch's statistics but
    leaves the running ones as they were (AlgoPerf's meaning). Walks the modules only when the
    setting changes."""
    if model.__dict__.get("_batch_norm_frozen", False) != (not enabled):
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                if not enabled:
                    module._kept_momentum = module.momentum
                    module.momentum = 0.0
                elif hasattr(module, "_kept_momentum"):
                    module.momentum = module._kept_momentum
                    del module._kept_momentum
        model._batch_norm_frozen = not enabled


def _reduce(per_example: torch.Tensor, mask_batch: torch.Tensor | None) -> LossOutput:
    if mask_batch is None:
        # A plain int, as in AlgoPerf's PyTorch workloads: dividing by it costs no tensor op.
        return {
            "summed": per_example.sum(),
            "n_valid_examples": per_example.numel(),
            "per_example": per_example,
        }
    per_example = per_example * mask_batch
    return {
        "summed": per_example.sum(),
        "n_valid_examples": mask_batch.sum(),
        "per_example": per_example,
    }


def softmax_cross_entropy(
    label_batch: torch.Tensor,
    logits_batch: torch.Tensor,
    mask_batch: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Cross-entropy over the last dimension; labels are class indices of any leading shape."""
    per_example = F.cross_entropy(
        logits_batch.reshape(-1, logits_batch.shape[-1]).float(),
        label_batch.reshape(-1),
        reduction="none",
        label_smoothing=label_smoothing,
    ).reshape(label_batch.shape)
    return _reduce(per_example, mask_batch)


def mean_squared_error(
    label_batch: torch.Tensor,
    logits_batch: torch.Tensor,
    mask_batch: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> LossOutput:
    predictions = logits_batch.float().reshape(label_batch.shape)
    return _reduce(F.mse_loss(predictions, label_batch, reduction="none"), mask_batch)


class InMemoryWorkload(Workload):
    """A workload whose train and validation sets are tensors on the device.

    Subclasses fill `self.train`, `self.validation` (dicts with "inputs" and "targets") in
    `setup`, build the model, and may override `augment` (batched tensor ops only).
    """

    eval_batch_size = 1024
    num_eval_train_examples = 2048  # train/* metrics use this fixed subset of the train set

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.train: dict[str, torch.Tensor] = {}
        self.validation: dict[str, torch.Tensor] = {}

    @property
    def num_train_examples(self) -> int:
        return int(self.train["targets"].shape[0])

    @property
    def num_validation_examples(self) -> int:
        return int(self.validation["targets"].shape[0])

    def augment(self, batch: Batch, seed: int, step: int) -> Batch:
        return batch

    def build_input_queue(
        self, seed: int, split: str, global_batch_size: int, start_step: int = 0
    ) -> Iterator[Batch]:
        if split != "train":
            raise ValueError(f"{self.name}: the input queue serves 'train', not {split!r}")
        indices_of = EpochBatchIndices(
            self.num_train_examples, global_batch_size, seed, self.device
        )
        step = start_step
        while True:
            indices = indices_of(step)
            batch = {key: value[indices] for key, value in self.train.items()}
            yield self.augment(batch, seed, step)
            step += 1

    def eval_batches(self, split: str) -> Iterator[Batch]:
        if split == "validation":
            tensors = self.validation
        elif split == "train":
            n = min(self.num_eval_train_examples, self.num_train_examples)
            tensors = {key: value[:n] for key, value in self.train.items()}
        else:
            raise ValueError(f"{self.name}: unknown split {split!r}")
        return fixed_batches(tensors, self.eval_batch_size)

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: Batch,
        model_state: ModelState,
        mode: ForwardPassMode,
        rng: int,
        update_batch_norm: bool,
    ) -> tuple[torch.Tensor, ModelState]:
        training = mode == ForwardPassMode.TRAIN
        if params.training != training:  # .train() walks every module; skip when unchanged
            params.train(training)
        set_batch_norm_updates(params, update_batch_norm or not training)
        return params(augmented_and_preprocessed_input_batch["inputs"]), model_state


class ClassificationWorkload(InMemoryWorkload):
    target_metric_name = "accuracy"
    target_metric_lower_is_better = False
    loss_type = LossType.SOFTMAX_CROSS_ENTROPY

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def extra_metric_sums(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        correct = (logits.argmax(dim=-1) == batch["targets"]).float()
        if "weights" in batch:
            correct = correct * batch["weights"]
        return {"accuracy": correct.sum()}
