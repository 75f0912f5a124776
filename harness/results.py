"""The results layout (DESIGN §7) and atomic file writes.

Every file is written to a temporary name in the same folder and renamed into place, so a
killed run never leaves a half-written file. Nothing here is a pickle; checkpoints are
plain tensors and values, loadable with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

STATUSES = ("running", "reached", "not_reached", "diverged", "failed")
DONE_STATUSES = ("reached", "not_reached", "diverged")
EVAL_COLUMNS = (  # AlgoPerf's column names, then train/* and validation/* metrics
    "global_step",
    "accumulated_submission_time",
    "accumulated_eval_time",
    "accumulated_logging_time",
    "preemption_count",
)
CONFIG_FILE = "config.yaml"
HPARAMS_FILE = "hparams.json"
EVAL_FILE = "eval_measurements.csv"
RECORD_FILE = "record.json"
CHECKPOINT_FILE = "checkpoint.pt"


def run_subdir(ruleset: str, submission: str, workload: str, study: int, trial: int) -> str:
    return f"{ruleset}/{submission}/{workload}/study_{study}/trial_{trial}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would have given; mkstemp alone gives 0600


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _json_safe(value: Any) -> Any:
    """Infinity and NaN are not JSON: infinite times are stored as null (= never reached)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def eval_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    metrics = sorted({key for row in rows for key in row if key not in EVAL_COLUMNS})
    return [*EVAL_COLUMNS, *metrics]


def write_eval_measurements(path: Path, rows: list[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=eval_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # str(float) round-trips exactly in Python 3
    write_text(path, buffer.getvalue())


# torch is imported where a checkpoint is touched: the report reads results without it.
def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    import torch

    _atomic_write(path, lambda handle: torch.save(dict(state), handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's record, or None when there is none or it cannot be parsed."""
    try:
        return read_json(Path(run_dir) / RECORD_FILE)
    except (OSError, ValueError):
        return None
