"""Small datasets in the exact formats of the downloaded ones, so tests need no network.

CIFAR-10: a cifar-10-python.tar.gz whose batches are pickled as the official ones were (Python 2,
protocol 2: dicts of byte strings, numpy arrays reduced through numpy.core.multiarray).
California housing: the cal_housing_py3.pkz that scikit-learn's fetcher caches. Test-only.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from workloads.image_classification import cifar


class Python2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote: strings as byte strings (BINSTRING), and numpy's
    array reconstructor under its numpy 1 module name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_string(self, value: bytes | str) -> None:
        data = value.encode("latin-1") if isinstance(value, str) else value
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(value)

    dispatch[bytes] = save_py2_string
    dispatch[str] = save_py2_string

    def save_global(self, obj, name=None) -> None:
        if obj is cifar._reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def python2_pickle(value: object) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(value)
    return buffer.getvalue()


def cifar_batch(images: np.ndarray, labels: np.ndarray, label: str) -> bytes:
    """One batch file: the official keys, `data` as uint8 [n, 3072], `labels` a list of ints."""
    return python2_pickle(
        {
            b"batch_label": label.encode(),
            b"labels": [int(v) for v in labels],
            b"data": images.reshape(len(images), -1).astype(np.uint8),
            b"filenames": [f"image_{i}.png".encode() for i in range(len(images))],
        }
    )


def random_cifar(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num, 3, 32, 32), dtype=np.uint8)
    return images, rng.integers(0, 10, size=num)


def write_cifar_archive(path: Path, per_batch: int = 8, num_test: int = 16) -> dict:
    """A small cifar-10-python.tar.gz; returns the images and labels it holds."""
    train = [random_cifar(per_batch, seed=i) for i in range(5)]
    test = random_cifar(num_test, seed=5)
    files = {
        f"{cifar.BATCH_FOLDER}/data_batch_{i + 1}": cifar_batch(
            *batch, f"training batch {i + 1} of 5"
        )
        for i, batch in enumerate(train)
    }
    files[f"{cifar.BATCH_FOLDER}/test_batch"] = cifar_batch(*test, "testing batch 1 of 1")
    files[f"{cifar.BATCH_FOLDER}/batches.meta"] = python2_pickle(
        {b"num_cases_per_batch": per_batch, b"label_names": [b"airplane"] * 10, b"num_vis": 3072}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {
        "train_images": np.concatenate([images for images, _ in train]),
        "train_labels": np.concatenate([labels for _, labels in train]),
        "test_images": test[0],
        "test_labels": test[1],
    }


def write_california_cache(folder: Path, num: int = 5000) -> None:
    """scikit-learn's cache: [value in $, MedInc, HouseAge, rooms, bedrooms, population,
    households, latitude, longitude] per district, joblib-dumped as its fetcher does."""
    import joblib

    rng = np.random.default_rng(0)
    households = rng.uniform(100, 2000, num)
    columns = [
        rng.uniform(15_000, 500_000, num),
        rng.uniform(0.5, 15, num),
        rng.uniform(1, 52, num),
        households * rng.uniform(3, 8, num),
        households * rng.uniform(0.8, 1.5, num),
        households * rng.uniform(1.5, 4, num),
        households,
        rng.uniform(32.5, 42, num),
        rng.uniform(-124.3, -114.3, num),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(np.stack(columns, axis=1), folder / "cal_housing_py3.pkz", compress=6)
