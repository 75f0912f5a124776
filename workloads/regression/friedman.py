"""`friedman`: an MLP on scikit-learn's make_friedman1 (embedded, no network).

y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise, noise sigma 1, so the best
possible validation MSE is 1.0. Features x6..x10 are distractors. Fixed seed and size.
Targets are standardised for training; the target metric `mse` is in the original units.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.spec import Batch, LossType, ModelState
from workloads.common import ACTIVATIONS, InMemoryWorkload, choose, mean_squared_error


class MLP(nn.Module):
    def __init__(self, in_features: int, width: int, depth: int, activation: type[nn.Module]):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_features if i == 0 else width, width), activation()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(-1)


class FriedmanWorkload(InMemoryWorkload):
    target_metric_name = "mse"
    target_metric_lower_is_better = True
    loss_type = LossType.MEAN_SQUARED_ERROR

    def __init__(
        self,
        num_train: int = 16384,
        num_validation: int = 4096,
        noise: float = 1.0,
        width: int = 128,
        depth: int = 3,
        activation: str = "relu",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_train, self.num_validation, self.noise = num_train, num_validation, noise
        self.width, self.depth = width, depth
        self.activation = choose("friedman", "activation", activation, ACTIVATIONS)

    def setup(self, device: torch.device) -> None:
        from sklearn.datasets import make_friedman1

        self.device = device
        x, y = make_friedman1(
            n_samples=self.num_train + self.num_validation,
            n_features=10,
            noise=self.noise,
            random_state=0,
        )
        x = torch.tensor(x, dtype=torch.float32)
        y = torch.tensor(y, dtype=torch.float32)
        x = (x - 0.5) * (12**0.5)  # uniform[0, 1] -> zero mean, unit variance
        train_y = y[: self.num_train]
        self.target_mean, self.target_std = float(train_y.mean()), float(train_y.std())
        y = (y - self.target_mean) / self.target_std
        n = self.num_train
        self.train = {"inputs": x[:n].to(device), "targets": y[:n].to(device)}
        self.validation = {"inputs": x[n:].to(device), "targets": y[n:].to(device)}

    def init_model_fn(self, rng: int) -> tuple[nn.Module, ModelState]:
        torch.manual_seed(rng)
        return MLP(10, self.width, self.depth, self.activation).to(self.device), None

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        return mean_squared_error(label_batch, logits_batch, mask_batch)

    def extra_metric_sums(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        squared_error = (logits - batch["targets"]) ** 2 * self.target_std**2
        return {"mse": squared_error.sum()}
