"""`digits`: scikit-learn's 8x8 handwritten digits (embedded, no network) with a small CNN.

1,797 images, split once with a fixed permutation into 1,437 train / 360 validation.
Augmentation: a random shift of up to one pixel per image, as one batched gather per step.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.data import AUGMENTATION, step_generator
from harness.spec import Batch, ModelState
from workloads.common import ACTIVATIONS, ClassificationWorkload, choose
from workloads.image_classification.augment import random_translate

NUM_VALIDATION = 360
SPLIT_SEED = 0


class DigitsCNN(nn.Module):
    def __init__(self, width: int = 32, activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            activation(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            activation(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            activation(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class DigitsWorkload(ClassificationWorkload):
    def __init__(
        self, width: int = 32, activation: str = "relu", augment: bool = True, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.activation = choose("digits", "activation", activation, ACTIVATIONS)
        self.use_augmentation = augment

    def setup(self, device: torch.device) -> None:
        from sklearn.datasets import load_digits

        self.device = device
        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        mean, std = images.mean(), images.std()
        images = (images - mean) / std
        self.background = float(-mean / std)  # a blank pixel after normalisation
        labels = torch.tensor(digits.target, dtype=torch.long)
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
        val, train = order[:NUM_VALIDATION], order[NUM_VALIDATION:]
        self.train = {"inputs": images[train].to(device), "targets": labels[train].to(device)}
        self.validation = {"inputs": images[val].to(device), "targets": labels[val].to(device)}

    def augment(self, batch: Batch, seed: int, step: int) -> Batch:
        if not self.use_augmentation:
            return batch
        generator = step_generator(seed, step, AUGMENTATION)
        shifted = random_translate(batch["inputs"], 1, generator, fill=self.background)
        return {**batch, "inputs": shifted}

    def init_model_fn(self, rng: int) -> tuple[nn.Module, ModelState]:
        torch.manual_seed(rng)
        model = DigitsCNN(self.width, self.activation).to(self.device)
        return model, None
