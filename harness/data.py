"""Device-resident datasets: deterministic batch indices and per-step random generators.

The batch of step s depends only on (seed, s), so a resumed run sees exactly the batches an
uninterrupted one would have seen. No DataLoader, no per-sample Python: indices are tensors.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from harness.errors import UserError

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: spreads (seed, counter) pairs over 64 bits

# The random streams of a run: derive_seed(seed, counter, salt). The values are part of every
# result (changing one changes every run), hence fixed numbers; salt 1 serves two uses, which
# never feed the same generator.
EPOCH_ORDER = 1  # the permutation of each epoch (counter: the epoch)
PREPARE_FOR_EVAL = 1  # the runner's rng for prepare_for_eval (counter: the step)
AUGMENTATION = 2  # image workloads: crops, shifts and flips of a step's batch
WINDOWS = 3  # language workloads: where a step's text windows start


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes (unlike Python's hash)."""
    value = 0x243F6A8885A308D3
    for part in parts:
        value = (value ^ (int(part) + _MIX + (value << 6) + (value >> 2))) & 0xFFFFFFFFFFFFFFFF
    return value & 0x7FFFFFFFFFFFFFFF


def step_seed(seed: int, step: int) -> int:
    """The rng the runner hands to data_selection and update_params at `step`."""
    return derive_seed(seed, step)


def step_generator(
    seed: int, step: int, salt: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A generator for one step's randomness of one kind (`salt`: AUGMENTATION, WINDOWS)."""
    return torch.Generator(device).manual_seed(derive_seed(seed, step, salt))


class EpochBatchIndices:
    """Indices of the examples in each training batch: a fresh permutation every epoch.

    Incomplete final batches are dropped, so every batch has exactly `batch_size` examples.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int, device: torch.device):
        if batch_size > num_examples:
            raise UserError(
                f"batch size {batch_size} exceeds the {num_examples} training examples; choose "
                "a smaller submission.batch_size (null: the workload's own)"
            )
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.steps_per_epoch = num_examples // batch_size
        self.seed = seed
        self.device = device
        self._epoch = -1
        self._permutation = torch.empty(0, dtype=torch.long)

    def __call__(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, EPOCH_ORDER))
            permutation = torch.randperm(self.num_examples, generator=generator)
            self._permutation = permutation.to(self.device)
            self._epoch = epoch
        start = position * self.batch_size
        return self._permutation[start : start + self.batch_size]


def fixed_batches(
    tensors: dict[str, torch.Tensor], batch_size: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Consecutive slices of already-prepared evaluation tensors (last batch may be smaller)."""
    total = next(iter(tensors.values())).shape[0]
    for start in range(0, total, batch_size):
        yield {key: value[start : start + batch_size] for key, value in tensors.items()}
