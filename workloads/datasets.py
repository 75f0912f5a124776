"""Downloaded datasets: where they are cached, how they are fetched, how they are verified.

A dataset file is named by a `RemoteFile` (canonical URL and published checksum). `fetch` returns
its verified path in the cache folder, downloading it first when absent; when it cannot be
downloaded the error says which file to put where. This module never parses a dataset.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

from harness.errors import DatasetMissingError, UserError

log = logging.getLogger("harness")

DATA_DIR_VARIABLE = "OPTBENCH_DATA_DIR"
DOWNLOAD_TIMEOUT_SEC = 60  # per socket operation, so an offline compute node fails fast


class DatasetChecksumError(UserError):
    """A downloaded file is not the published file (cut short, or the server changed it)."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its canonical URL and the checksum its publisher gives for it."""

    description: str  # for messages, e.g. "CIFAR-10 (python version)"
    filename: str  # name in the cache folder
    url: str
    checksum: str  # "md5:<hex>" or "sha256:<hex>"
    size_bytes: int | None = None  # for messages only

    @property
    def algorithm(self) -> str:
        return self.checksum.split(":", 1)[0]

    @property
    def digest(self) -> str:
        return self.checksum.split(":", 1)[1].lower()


def data_dir(configured: str | os.PathLike | None = None) -> Path:
    """The cache folder: the configured one, else $OPTBENCH_DATA_DIR, else ~/.cache/optbench."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(DATA_DIR_VARIABLE):
        return Path(os.environ[DATA_DIR_VARIABLE]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "optbench"


def file_digest(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def verify(path: Path, remote: RemoteFile) -> None:
    """Raise DatasetChecksumError unless `path` has the published checksum."""
    actual = file_digest(path, remote.algorithm)
    if actual != remote.digest:
        raise DatasetChecksumError(
            f"{path} is not the published {remote.description} file: its {remote.algorithm} is "
            f"{actual}, expected {remote.digest}: it is truncated or a different file. To use the "
            f"published one, delete it and run again to download it from {remote.url}."
        )


def where_to_put_it(remote: RemoteFile, folder: Path) -> str:
    size = f", {remote.size_bytes / 1e6:.0f} MB" if remote.size_bytes else ""
    return (
        f"Download {remote.url} ({remote.algorithm} {remote.digest}{size}) on a machine with "
        f"internet access and put it at {folder / remote.filename}, or point "
        f"{DATA_DIR_VARIABLE} (or the workload's data_dir) at a folder that holds "
        f"{remote.filename}."
    )


def download(remote: RemoteFile, destination: Path) -> None:
    """Download to a temporary file beside `destination`, verify it, then rename it into place.

    A partial or corrupt download therefore never appears under the final name.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s to %s", remote.description, remote.url, destination)
    handle, temporary_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{remote.filename}.", suffix=".part"
    )
    temporary = Path(temporary_name)
    try:
        with (
            os.fdopen(handle, "wb") as file,
            urlopen(remote.url, timeout=DOWNLOAD_TIMEOUT_SEC) as response,
        ):
            shutil.copyfileobj(response, file, length=1 << 20)
        actual = file_digest(temporary, remote.algorithm)
        if actual != remote.digest:
            raise DatasetChecksumError(
                f"the {remote.description} file downloaded from {remote.url} has "
                f"{remote.algorithm} {actual}, not the published {remote.digest}: the download "
                "was cut short or the server now serves another file. Nothing was saved."
            )
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def fetch(remote: RemoteFile, folder: Path) -> Path:
    """The path of `remote` in `folder`, downloading (and verifying) it first if it is not there.

    A download must match the published checksum. A file someone put in the cache is checked
    too, but a mismatch is only a warning: it may be a deliberate stand-in (a subset, a file
    generated for a test, a re-packed copy), and a broken file fails loudly when it is parsed.
    """
    path = folder / remote.filename
    if path.exists():
        try:
            verify(path, remote)
        except DatasetChecksumError as mismatch:
            log.warning("%s Using it as given.", mismatch)
        return path
    try:
        download(remote, path)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DatasetMissingError(
            f"{remote.description} is not in {folder} and could not be downloaded "
            f"({reason}). {where_to_put_it(remote, folder)}"
        ) from error
    return path
