"""Names and content hashes of AlgoPerf submission files (torch-free: config resolvers use it).

An AlgoPerf file is filed as submission `algoperf_<label>_<hash>`:
- <label>: the file's stem, or, for a file named `submission.py` (AlgoPerf's layout
  `<algorithm>/[pytorch/]submission.py`), the nearest folder above it that is not `pytorch` or
  `jax`;
- <hash>: the first 8 hex digits of `sources_sha256` (the file and its search space together).
Two different files, or one file with two different search spaces, are thus never filed under
the same name, and an edited file is a new submission. conf/submission/algoperf.yaml reaches
these through the `algoperf_name` and `algoperf_sha256` resolvers (harness/config.py).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

FRAMEWORK_FOLDERS = {"pytorch", "jax"}
NAME_PREFIX = "algoperf_"
HASH_DIGITS = 8


def file_label(path: str | Path) -> str:
    """What a file is called in its name: its stem, or its algorithm's folder."""
    path = Path(path)
    label = path.stem
    if label == "submission":
        for parent in path.resolve().parents:
            if parent.name and parent.name.lower() not in FRAMEWORK_FOLDERS:
                label = parent.name
                break
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_.") or "submission"


def sha256_of(path: str | Path | None) -> str | None:
    """The sha256 of a file's bytes; None when there is no path or it cannot be read."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except OSError:
        return None


def sources_sha256(file: str | Path, search_space: str | Path | None) -> str | None:
    """One hash of a submission file and its search space (none: the file alone); None when
    the file cannot be read."""
    file_hash = sha256_of(file)
    if file_hash is None:
        return None
    space_hash = sha256_of(search_space) if search_space is not None else ""
    return hashlib.sha256(f"{file_hash}\n{space_hash or 'unreadable'}".encode()).hexdigest()


def submission_name(file: str | Path, search_space: str | Path | None = None) -> str:
    """`algoperf_<label>_<8 hex digits>` (without the digits when the file cannot be read)."""
    digest = sources_sha256(file, search_space)
    name = NAME_PREFIX + file_label(file)
    return name if digest is None else f"{name}_{digest[:HASH_DIGITS]}"


def _paths(node: DictConfig) -> tuple[str | None, str | None]:
    """(file, search_space) of a submission config node; None for an unset file."""
    file = None if OmegaConf.is_missing(node, "file") else node.get("file")
    space = node.get("search_space")
    return (None if file is None else str(file)), (None if space is None else str(space))


def resolve_name(*, _parent_: Any) -> str:
    """Resolver `${algoperf_name:}`: the submission name of the node's file."""
    file, space = _paths(_parent_)
    return NAME_PREFIX.rstrip("_") if file is None else submission_name(file, space)


def resolve_sha256(*, _parent_: Any) -> str | None:
    """Resolver `${algoperf_sha256:}`: sources_sha256 of the node's file and search space."""
    file, space = _paths(_parent_)
    return None if file is None else sources_sha256(file, space)
