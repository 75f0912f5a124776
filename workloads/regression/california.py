"""`california`: an MLP on the California housing data (20,640 districts, 8 features).

scikit-learn's `fetch_california_housing` downloads the data once (its own URL and sha256) into
the data folder and caches it there as cal_housing_py3.pkz; offline and without that file, the
error says what to put where. A fixed permutation holds out `num_validation` districts. Features
and target are standardised with training statistics; the target metric `mse` is in the
original units (median house value in $100,000s). Never downloads anything else.
"""

from __future__ import annotations

import urllib.error

import numpy as np
import torch
from torch import nn

from harness.errors import DatasetMissingError
from harness.spec import LossType, ModelState
from workloads import datasets
from workloads.common import ACTIVATIONS, InMemoryWorkload, choose
from workloads.regression.friedman import MLP, FriedmanWorkload

SPLIT_SEED = 0
CACHE_FILE = "cal_housing_py3.pkz"  # what scikit-learn's fetcher writes and reads


def fetch_california(folder) -> tuple[np.ndarray, np.ndarray]:
    """(features [n, 8], target [n]) through scikit-learn, cached in `folder`."""
    from sklearn.datasets import fetch_california_housing
    from sklearn.datasets._california_housing import ARCHIVE

    try:
        return fetch_california_housing(data_home=str(folder), return_X_y=True)
    except (urllib.error.URLError, OSError) as error:
        raise DatasetMissingError(
            f"The California housing data is not in {folder} and scikit-learn could not "
            f"download it ({getattr(error, 'reason', None) or error}). On a machine with "
            f'internet access run `python -c "from sklearn.datasets import '
            f"fetch_california_housing as f; f(data_home='DIR')\"` and copy DIR/{CACHE_FILE} "
            f"to {folder}, or put {ARCHIVE.filename} from {ARCHIVE.url} (sha256 "
            f"{ARCHIVE.checksum}) there (scikit-learn >= 1.6 reads it), or point "
            f"{datasets.DATA_DIR_VARIABLE} (or the workload's data_dir) at a folder that holds "
            "one of them."
        ) from error


class CaliforniaWorkload(InMemoryWorkload):
    target_metric_name = "mse"
    target_metric_lower_is_better = True
    loss_type = LossType.MEAN_SQUARED_ERROR

    def __init__(
        self,
        num_validation: int = 4128,
        width: int = 256,
        depth: int = 3,
        activation: str = "relu",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_validation = num_validation
        self.width, self.depth = width, depth
        self.activation = choose(self.name, "activation", activation, ACTIVATIONS)

    def setup(self, device: torch.device) -> None:
        self.device = device
        features, target = fetch_california(datasets.data_dir(self.data_dir))
        x = torch.tensor(features, dtype=torch.float32)
        y = torch.tensor(target, dtype=torch.float32)
        if not 0 < self.num_validation < len(y):
            raise ValueError(f"{self.name}: num_validation must be in 1..{len(y) - 1}")
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
        val, train = order[: self.num_validation], order[self.num_validation :]
        mean, std = x[train].mean(dim=0), x[train].std(dim=0).clamp_min(1e-12)
        x = (x - mean) / std
        self.target_mean, self.target_std = float(y[train].mean()), float(y[train].std())
        y = (y - self.target_mean) / self.target_std
        self.train = {"inputs": x[train].to(device), "targets": y[train].to(device)}
        self.validation = {"inputs": x[val].to(device), "targets": y[val].to(device)}

    def init_model_fn(self, rng: int) -> tuple[nn.Module, ModelState]:
        torch.manual_seed(rng)
        in_features = self.train["inputs"].shape[1]
        return MLP(in_features, self.width, self.depth, self.activation).to(self.device), None

    # Same loss and metric as friedman: MSE on standardised targets, `mse` in original units.
    loss_fn = FriedmanWorkload.loss_fn
    extra_metric_sums = FriedmanWorkload.extra_metric_sums
