"""Downloaded datasets without a network: cache folder, download and checksum, the offline
error, CIFAR-10 parsing and augmentation, the LM corpus options, California housing, and one
training step of each full-size model (the generic tests run them at CPU size)."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from harness.errors import DatasetMissingError, UserError
from harness.launch import build
from harness.spec import ForwardPassMode
from tests import fake_datasets
from tests.helpers import CONF, compose_config, run_in_process
from workloads import datasets
from workloads.image_classification import cifar
from workloads.image_classification.augment import random_cutout, random_flip, random_translate

# -- the cache folder and fetch ---------------------------------------------------------------


def test_data_dir_prefers_config_then_environment_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_VARIABLE, str(tmp_path / "from_env"))
    assert datasets.data_dir(str(tmp_path / "configured")) == tmp_path / "configured"
    assert datasets.data_dir(None) == tmp_path / "from_env"
    monkeypatch.delenv(datasets.DATA_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert datasets.data_dir(None) == tmp_path / "cache" / "optbench"


def remote_for(source: Path, checksum: str | None = None) -> datasets.RemoteFile:
    return datasets.RemoteFile(
        description="test data",
        filename="data.bin",
        url=source.as_uri(),
        checksum=checksum or f"sha256:{datasets.file_digest(source, 'sha256')}",
    )


def test_fetch_downloads_verifies_and_then_uses_the_cached_file(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(os.urandom(3000))
    remote = remote_for(source)
    path = datasets.fetch(remote, tmp_path / "cache")
    assert path == tmp_path / "cache" / "data.bin"
    assert path.read_bytes() == source.read_bytes()
    source.unlink()  # the cached copy is used from now on
    assert datasets.fetch(remote, tmp_path / "cache") == path
    assert [p.name for p in path.parent.iterdir()] == ["data.bin"], "no temporary files left"


def test_download_with_the_wrong_checksum_saves_nothing(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"not what was published")
    remote = remote_for(source, checksum="md5:" + "0" * 32)
    with pytest.raises(datasets.DatasetChecksumError, match="not the published"):
        datasets.fetch(remote, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_present_file_with_the_wrong_checksum_is_used_with_a_warning(tmp_path, caplog):
    source = tmp_path / "served.bin"
    source.write_bytes(b"published")
    remote = remote_for(source)
    (tmp_path / "cache").mkdir()
    present = tmp_path / "cache" / "data.bin"
    present.write_bytes(b"a stand-in")
    with caplog.at_level("WARNING", logger="harness"):
        assert datasets.fetch(remote, tmp_path / "cache") == present
    assert present.read_bytes() == b"a stand-in", "a file the user put there is never replaced"
    assert str(present) in caplog.text and remote.digest in caplog.text
    with pytest.raises(datasets.DatasetChecksumError):
        datasets.verify(present, remote)


@pytest.fixture
def offline(monkeypatch):
    """Every download fails as it does without a network."""

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets, "urlopen", no_network)
    monkeypatch.setattr("sklearn.datasets._base.urlretrieve", no_network)


def test_offline_error_says_what_to_put_where(tmp_path, offline):
    remote = dataclasses.replace(cifar.ARCHIVE)
    with pytest.raises(DatasetMissingError) as error:
        datasets.fetch(remote, tmp_path)
    message = str(error.value)
    for part in (str(tmp_path / remote.filename), remote.url, remote.digest, "OPTBENCH_DATA_DIR"):
        assert part in message
    assert isinstance(error.value, UserError)


def test_cifar_run_offline_fails_with_the_clear_error(tmp_path, offline, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_VARIABLE, str(tmp_path / "empty"))
    record = run_in_process(["workload=cifar", "max_steps=1", "progress=none"], tmp_path)
    assert record.status == "failed"
    assert "DatasetMissingError" in record.error
    assert str(tmp_path / "empty" / "cifar-10-python.tar.gz") in record.error


# -- CIFAR-10 -----------------------------------------------------------------------------


def test_a_generated_cifar_archive_in_the_cache_is_extracted_and_parsed(tmp_path, caplog):
    written = fake_datasets.write_cifar_archive(tmp_path / cifar.ARCHIVE.filename, per_batch=3)
    with caplog.at_level("WARNING", logger="harness"):
        loaded = cifar.load_cifar10(tmp_path)
    assert "is not the published CIFAR-10" in caplog.text  # its md5 is not the official one
    for array, key in zip(loaded, written, strict=True):
        np.testing.assert_array_equal(array, written[key])
    assert loaded[0].shape == (15, 3, 32, 32) and loaded[0].dtype == np.uint8
    (tmp_path / cifar.ARCHIVE.filename).unlink()  # extracted once; the batches are reused
    np.testing.assert_array_equal(cifar.load_cifar10(tmp_path)[2], written["test_images"])


def test_cifar_unpickler_refuses_anything_but_numpy_arrays(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": os.system, b"labels": []}, protocol=2))
    with pytest.raises(UserError, match="may not refer to"):
        cifar.read_batch(path)


def test_cifar_batch_of_the_wrong_shape_is_rejected(tmp_path):
    path = tmp_path / "data_batch_1"
    images, labels = fake_datasets.random_cifar(2, seed=0)
    path.write_bytes(fake_datasets.cifar_batch(images, labels, "x")[:-40])
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        cifar.read_batch(path)
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    path.write_bytes(fake_datasets.python2_pickle(batch))
    with pytest.raises(UserError, match="expected data of shape"):
        cifar.read_batch(path)


def test_python2_style_batch_loads_like_the_official_files():
    images, labels = fake_datasets.random_cifar(4, seed=1)
    data = fake_datasets.cifar_batch(images, labels, "training batch 1 of 5")
    batch = pickle.load(io.BytesIO(data), encoding="bytes")  # the CIFAR page's instructions
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].shape == (4, 3072) and batch[b"labels"] == labels.tolist()


def test_cifar_inputs_are_normalised_once_on_the_device(results_dir):
    workload = build(compose_config(["workload=cifar"], results_dir).workload, "workload")
    workload.setup(torch.device("cpu"))
    inputs = workload.train["inputs"]
    assert inputs.dtype == torch.float32 and inputs.shape[1:] == (3, 32, 32)
    assert torch.allclose(inputs.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(inputs.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    assert workload.num_validation_examples == 16


def images_of(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_translate_reflects_the_border_and_keeps_the_shape():
    images = images_of(6)
    shifted = random_translate(images, 4, torch.Generator().manual_seed(0), padding_mode="reflect")
    assert shifted.shape == images.shape and shifted.is_contiguous()
    constant = torch.full((5, 3, 32, 32), 2.5)
    reflected = random_translate(
        constant, 4, torch.Generator().manual_seed(0), padding_mode="reflect"
    )
    assert torch.equal(reflected, constant), "reflect padding brings in no fill value"
    zero_shift = random_translate(
        images, 0, torch.Generator().manual_seed(0), padding_mode="reflect"
    )
    assert torch.equal(zero_shift, images)


def test_augmentations_are_deterministic_per_generator_seed():
    images = images_of(8)
    for augment in (
        lambda g: random_translate(images, 4, g, padding_mode="reflect"),
        lambda g: random_flip(images, g),
        lambda g: random_cutout(images, 8, g),
    ):
        first = augment(torch.Generator().manual_seed(3))
        assert first.shape == images.shape
        assert torch.equal(first, augment(torch.Generator().manual_seed(3)))
        assert not torch.equal(first, augment(torch.Generator().manual_seed(4)))


def test_cutout_zeroes_one_square_per_image_at_most():
    images = torch.ones(64, 3, 32, 32)
    cut = random_cutout(images, 8, torch.Generator().manual_seed(0))
    zeroed = (cut == 0).all(dim=1).sum(dim=(1, 2))  # pixels zeroed in every channel, per image
    assert (zeroed <= 64).all() and (zeroed >= 16).all()  # a centre inside: >= a 4x4 corner
    assert ((cut == 0) | (cut == 1)).all()


# -- language model corpora ---------------------------------------------------------------


def build_lm(results_dir: Path, *overrides: str):
    cfg = compose_config(["workload=lm_tiny", *overrides], results_dir)
    return build(cfg.workload, "workload")


def test_lm_reads_a_corpus_file_at_byte_level(tmp_path, results_dir):
    text = "To be, or not to be — that is the question.\n" * 200
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text(text, encoding="utf-8")
    workload = build_lm(results_dir, f"workload.corpus={corpus_file}", "workload.tokenizer=byte")
    workload.setup(torch.device("cpu"))
    assert workload.vocab_size == 256
    encoded = text.encode("utf-8")
    split = round(len(text) * 0.9)  # the last 10% of the characters is held out
    assert workload.num_train_examples == len(text[:split].encode("utf-8"))
    assert bytes(workload.validation_tokens.tolist()) == encoded[len(text[:split].encode()) :]
    model, _ = workload.init_model_fn(rng=0)
    assert model.head.out_features == 256


def test_lm_rejects_a_missing_corpus_and_downloads_tiny_shakespeare(tmp_path, results_dir, offline):
    workload = build_lm(results_dir, f"workload.corpus={tmp_path / 'absent.txt'}")
    with pytest.raises(UserError, match="is not a file"):
        workload.setup(torch.device("cpu"))
    workload = build_lm(
        results_dir, "workload.corpus=tiny_shakespeare", f"workload.data_dir={tmp_path}"
    )
    with pytest.raises(DatasetMissingError, match=r"tiny_shakespeare\.txt"):
        workload.setup(torch.device("cpu"))


# -- California housing -------------------------------------------------------------------


def test_california_offline_error_names_the_cache_file(tmp_path, offline):
    from workloads.regression.california import fetch_california

    with pytest.raises(DatasetMissingError) as error:
        fetch_california(tmp_path)
    message = str(error.value)
    assert "cal_housing_py3.pkz" in message and str(tmp_path) in message


def test_california_is_standardised_and_scored_in_original_units(results_dir):
    workload = build(compose_config(["workload=california"], results_dir).workload, "workload")
    workload.setup(torch.device("cpu"))
    train_x = workload.train["inputs"]
    assert torch.allclose(train_x.mean(dim=0), torch.zeros(8), atol=1e-4)
    assert torch.allclose(train_x.std(dim=0), torch.ones(8), atol=1e-4)
    assert workload.num_validation_examples == 4128
    # Predicting the training mean scores the validation variance, in $100,000s squared.
    targets = workload.validation["targets"]
    batch = {"inputs": workload.validation["inputs"], "targets": targets}
    mse = workload.extra_metric_sums(torch.zeros_like(targets), batch)["mse"] / len(targets)
    original = targets * workload.target_std + workload.target_mean
    expected = ((original - workload.target_mean) ** 2).mean()
    assert torch.isclose(mse, expected, rtol=1e-4)


# -- full-size models (the generic tests shrink them) -------------------------------------


@pytest.mark.parametrize("workload_name", ["cifar", "cifar_resnet18", "lm"])
def test_full_size_model_takes_a_training_step(workload_name):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"workload={workload_name}"])
    workload = build(cfg.workload, "workload")
    workload.setup(torch.device("cpu"))
    model, model_state = workload.init_model_fn(rng=0)
    batch = next(workload.build_input_queue(seed=0, split="train", global_batch_size=2))
    logits, _ = workload.model_fn(model, batch, model_state, ForwardPassMode.TRAIN, 0, True)
    loss = workload.loss_fn(batch["targets"], logits)
    (loss["summed"] / loss["n_valid_examples"]).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert torch.isfinite(loss["summed"])
