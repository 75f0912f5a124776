"""`cifar`: CIFAR-10 from the official python archive, with a fast ResNet (default) or ResNet-18.

The archive is downloaded once from its canonical URL into the data folder, checked against its
published md5 and its six pickled batches extracted (workloads/datasets.py says where and how).
Every setup parses the batches with an unpickler that admits only the numpy globals those files
contain, moves all 60,000 images to the device as one uint8 tensor and normalises them there,
once. The official test batch is the validation set. Augmentation (reflect-pad crop, flip,
cutout) is a few batched tensor ops per step. Never unpickles anything else.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.data import AUGMENTATION, step_generator
from harness.errors import DatasetMissingError, UserError
from harness.spec import Batch, ForwardPassMode, ModelState
from workloads import datasets
from workloads.accelerate import Acceleration
from workloads.common import ACTIVATIONS, ClassificationWorkload, choose
from workloads.image_classification.augment import random_cutout, random_flip, random_translate
from workloads.image_classification.resnet import MODELS

try:  # numpy >= 2 keeps it in numpy._core; the CIFAR files (numpy 1, Python 2) name numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

ARCHIVE = datasets.RemoteFile(
    description="CIFAR-10 (python version)",
    filename="cifar-10-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    checksum="md5:c58f30108f718f92721af3b95e74349a",  # published on the CIFAR-10 page
    size_bytes=170_498_071,
)
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10

# The only globals the official batches refer to: how numpy pickles a uint8 array.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class BatchUnpickler(pickle.Unpickler):
    """Refuses every class but the numpy array pieces a CIFAR-10 batch is made of."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"a CIFAR-10 batch may not refer to {module}.{name}"
            ) from None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n, 3, 32, 32], labels int64 [n]) from one pickled batch file."""
    try:
        with open(path, "rb") as handle:
            batch = BatchUnpickler(handle, encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise UserError(
            f"{path} is not a CIFAR-10 python batch ({type(error).__name__}: {error}); delete "
            f"{path.parent} and run again to extract it from the archive"
        ) from error
    per_image = int(np.prod(IMAGE_SHAPE))
    if images.ndim != 2 or images.shape[1] != per_image or labels.shape != images.shape[:1]:
        raise UserError(
            f"{path}: expected data of shape (n, {per_image}) and n labels, found "
            f"{images.shape} and {labels.shape}"
        )
    if labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
        raise UserError(f"{path}: labels outside 0..{NUM_CLASSES - 1}")
    return images.reshape(-1, *IMAGE_SHAPE), labels


def extract_batches(archive: Path, destination: Path) -> None:
    """Copy the six batch files out of the archive by name (no path from the archive is used),
    into a private folder that is renamed into place, so parallel runs never see half a folder."""
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in (*TRAIN_BATCHES, TEST_BATCH):
                source = tar.extractfile(f"{BATCH_FOLDER}/{name}")
                if source is None:
                    raise UserError(f"{archive} holds {BATCH_FOLDER}/{name} but not as a file")
                with source, open(staging / name, "wb") as target:
                    shutil.copyfileobj(source, target)
        try:
            os.rename(staging, destination)
        except OSError:
            if not batches_present(destination):  # not another run that extracted it first
                raise UserError(
                    f"{destination} exists but lacks some of {(*TRAIN_BATCHES, TEST_BATCH)}; "
                    "delete it and run again"
                ) from None
    except KeyError as error:
        raise UserError(f"{archive} is not the CIFAR-10 python archive: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def batches_present(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))


def load_cifar10(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels), fetching and extracting the
    archive into `folder` first if its batches are not there yet."""
    batches = folder / BATCH_FOLDER
    if not batches_present(batches):
        try:
            archive = datasets.fetch(ARCHIVE, folder)
        except DatasetMissingError as error:
            raise DatasetMissingError(
                f"{error} The archive's extracted {BATCH_FOLDER} folder, put in {folder}, "
                "works too."
            ) from error
        extract_batches(archive, batches)
    train = [read_batch(batches / name) for name in TRAIN_BATCHES]
    test_images, test_labels = read_batch(batches / TEST_BATCH)
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    return train_images, train_labels, test_images, test_labels


def normalise(images: torch.Tensor, num_train: int, dtype: torch.dtype) -> torch.Tensor:
    """uint8 images to zero mean, unit variance per channel, with the training set's statistics."""
    pixels = images.float().div_(255)
    mean = pixels[:num_train].mean(dim=(0, 2, 3), keepdim=True)
    std = pixels[:num_train].std(dim=(0, 2, 3), keepdim=True)
    return pixels.sub_(mean).div_(std).to(dtype)


class CifarWorkload(ClassificationWorkload):
    def __init__(
        self,
        model: str = "fast_resnet",
        width: int = 64,
        activation: str = "relu",
        translate: int = 4,
        flip: bool = True,
        cutout: int = 8,
        bf16: bool = True,
        channels_last: bool = True,
        compile: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.model_class = choose(self.name, "model", model, MODELS)
        self.activation = choose(self.name, "activation", activation, ACTIVATIONS)
        if not 0 <= translate < IMAGE_SHAPE[1] or cutout < 0:
            raise ValueError(f"{self.name}: translate must be in 0..31 and cutout >= 0")
        self.width = width
        self.translate, self.flip, self.cutout = translate, flip, cutout
        self.speed_settings = dict(bf16=bf16, channels_last=channels_last, compile=compile)
        self.acceleration = Acceleration(self.device, **self.speed_settings)

    def setup(self, device: torch.device) -> None:
        self.device = device
        self.acceleration = Acceleration(device, **self.speed_settings)
        train_images, train_labels, test_images, test_labels = load_cifar10(
            datasets.data_dir(self.data_dir)
        )
        images = torch.from_numpy(np.concatenate([train_images, test_images])).to(device)
        labels = torch.from_numpy(np.concatenate([train_labels, test_labels])).to(device)
        n = len(train_labels)
        inputs = normalise(images, n, self.acceleration.input_dtype)
        self.train = {"inputs": inputs[:n], "targets": labels[:n]}
        self.validation = {"inputs": inputs[n:], "targets": labels[n:]}

    def augment(self, batch: Batch, seed: int, step: int) -> Batch:
        # A generator on the data's device: no per-step host-to-device copy (and so no sync).
        generator = step_generator(seed, step, AUGMENTATION, self.device)
        images = batch["inputs"]
        if self.translate:
            images = random_translate(images, self.translate, generator, padding_mode="reflect")
        if self.flip:
            images = random_flip(images, generator)
        if self.cutout:
            images = random_cutout(images, self.cutout, generator)
        return {**batch, "inputs": images}

    def init_model_fn(self, rng: int) -> tuple[nn.Module, ModelState]:
        torch.manual_seed(rng)
        model = self.model_class(NUM_CLASSES, self.width, self.activation).to(self.device)
        return self.acceleration.prepare_model(model), None

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: Batch,
        model_state: ModelState,
        mode: ForwardPassMode,
        rng: int,
        update_batch_norm: bool,
    ) -> tuple[torch.Tensor, ModelState]:
        batch = augmented_and_preprocessed_input_batch
        batch = {**batch, "inputs": self.acceleration.prepare_images(batch["inputs"])}
        with self.acceleration.autocast():
            return super().model_fn(params, batch, model_state, mode, rng, update_batch_norm)
