"""The results folder: its layout, the run record, and atomic file writes.

This module is the one seam between running and reporting (docs/design.md, "Results"):
- `run_subdir` is the only place that spells the run-folder layout (conf/config.yaml reaches it
  through the `run_subdir` resolver registered in harness/config.py);
- `find_run_dirs` is the only scanner of a results folder;
- `RunRecord` is the schema of record.json, `write_record` its one writer and `load_record` its
  one reader; records of older formats are upgraded on reading, here and nowhere else.

Every file is written to a temporary name in the same folder and renamed into place, so a killed
run never leaves a half-written file. Nothing here is a pickle; checkpoints are plain tensors and
values, loadable with `torch.load(..., weights_only=True)`. Never imports torch at import time:
the report reads results on machines without it.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("running", "reached", "not_reached", "diverged", "failed")
DONE_STATUSES = ("reached", "not_reached", "diverged")
EVAL_COLUMNS = (  # AlgoPerf's column names, then ours (MEASUREMENT_COLUMNS), then metrics
    "global_step",
    "accumulated_submission_time",
    "accumulated_eval_time",
    "accumulated_logging_time",
    "preemption_count",
)
# harness/speed.py's readings at each evaluation: the speed index, and the shares of the run's
# CPU time other processes and the hypervisor took since the previous evaluation.
MEASUREMENT_COLUMNS = ("speed_index", "cpu_other_share", "cpu_steal_share")
CONFIG_FILE = "config.yaml"
HPARAMS_FILE = "hparams.json"
EVAL_FILE = "eval_measurements.csv"
RECORD_FILE = "record.json"
CHECKPOINT_FILE = "checkpoint.pt"
# Format 1: the ruleset's settings were only in config.yaml (see _upgrade_v1). Format 2: no
# speed index, CPU shares or disturbance (read as not disturbed: nothing was measured).
RECORD_FORMAT = 3
CHECKPOINT_FORMAT = 2  # 2: identified by the run's fingerprint; bump when the keys change


# -- layout --------------------------------------------------------------------------------------
def run_subdir(ruleset: str, submission: str, workload: str, study: int, trial: int) -> str:
    """A run's folder inside its experiment's folder."""
    return f"{ruleset}/{submission}/{workload}/study_{study}/trial_{trial}"


def run_dir(
    results_dir: Path | str,
    experiment_name: str,
    ruleset: str,
    submission: str,
    workload: str,
    study: int,
    trial: int,
) -> Path:
    """<results_dir>/<experiment>/<ruleset>/<submission>/<workload>/study_<k>/trial_<j>."""
    return Path(
        results_dir, experiment_name, run_subdir(ruleset, submission, workload, study, trial)
    )


def display_path(path: Path | str) -> str:
    """Relative to the working directory when inside it: shorter, and copy-pasteable."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def find_run_dirs(root: Path) -> list[Path]:
    """Every run folder under `root` (a folder holding record.json or eval_measurements.csv),
    sorted. Hidden folders (.report_cache, .hydra) and a run folder's own subfolders (wandb/)
    are not searched."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        if RECORD_FILE in files or EVAL_FILE in files:
            found.append(Path(folder))
            subfolders[:] = []
    return sorted(found)


# -- the run record ------------------------------------------------------------------------------
class RecordError(ValueError):
    """record.json is missing, unreadable or lacks what a reader needs; the message says which."""


@dataclass(frozen=True)
class RulesetSettings:
    """The ruleset a run was filed under (conf/ruleset/<name>.yaml)."""

    name: str
    tune: bool | None  # hyperparameters from the search space (external) or the defaults
    budget_factor: float | None  # multiplies the workload's max_runtime_sec
    num_studies: int | None  # None: no fixed number (ruleset fixed), or not recorded
    num_trials: int | None


@dataclass(frozen=True)
class Target:
    """What a run must reach: `metric` (validation/<name>) at or beyond `value`."""

    metric: str
    value: float
    lower_is_better: bool

    def text(self) -> str:
        return f"{self.metric} {'≤' if self.lower_is_better else '≥'} {self.value:g}"


@dataclass(frozen=True)
class RunRecord:
    """record.json: who ran what, under which rules, on which machine, and how it ended.

    Written when a run starts (status `running`), at every evaluation and when it ends. A
    `failed` record may lack what only a started run knows (target None: the run was rejected
    before its workload was built; hardware None: it never started). The report scores from
    this record alone.
    """

    # -- identity: where the run is filed and what determines its result
    experiment_name: str
    ruleset: RulesetSettings
    submission: str
    workload: str
    study: int
    trial: int
    seed: int | None
    hyperparameters: dict[str, Any]  # effective: as the algorithm uses them
    search_point: dict[str, Any] = field(default_factory=dict)  # external ruleset: the sample
    fingerprint: str | None = None  # of every setting that determines the result
    target: Target | None = None
    budget_sec: float | None = None  # seconds of submission time: workload budget x factor
    batch_size: int | None = None
    workload_settings: dict[str, Any] = field(default_factory=dict)  # step_hint, eval cadence...
    # -- outcome
    status: str = "running"
    time_to_target: float | None = None  # submission seconds; None = not (yet) reached
    steps_to_target: int | None = None
    final_validation_metric: float | None = None
    global_step: int = 0
    n_evaluations: int = 0
    accumulated_submission_time: float = 0.0
    accumulated_eval_time: float = 0.0
    accumulated_logging_time: float = 0.0
    preemption_count: int = 0
    wall_time_sec: float = 0.0
    error: str | None = None
    # Measurement (harness/speed.py, docs/design.md "Measurement").
    base_budget_sec: float | None = None  # before scaling by the speed index
    time_to_target_resolution: float | None = None  # since the last evaluation that missed
    speed_index: dict[str, Any] | None = None  # unit, start, min, max, reference
    cpu: dict[str, Any] | None = None  # threads, cpus, other_share, steal_share
    disturbed: bool = False
    disturbed_reason: str | None = None
    # -- provenance
    hardware: str | None = None  # the fingerprint that separates leaderboards; None: not started
    device: str | None = None
    host: str | None = None
    pid: int | None = None
    slurm_job_id: str | None = None
    started_at: str | None = None
    command: str | None = None  # reruns this run alone, from any shell (harness/provenance.py)
    git_commit: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    # An AlgoPerf submission file's run (submissions/algoperf.py): {path, sha256, search_space,
    # search_space_sha256} of the file and its search space; None for YAML submissions.
    submission_file: dict[str, Any] | None = None
    # A run imported from another harness's logs (python -m harness.algoperf import): the
    # format, the log file it was made from (relative to the imported folder) and its sha256.
    source: dict[str, Any] | None = None
    # Modules outside this repository that define the submission or workload (a `_target_`'s
    # module): {module: {file, sha256, distribution, version}} (harness/provenance.py).
    external_code: dict[str, Any] | None = None
    # A data-parallel run (docs/design.md, "Distributed runs"): its number of processes and
    # their torch.distributed backend (gloo, nccl); 1 and None for one process.
    world_size: int = 1
    backend: str | None = None
    record_format: int = RECORD_FORMAT

    @property
    def reached(self) -> bool:
        return self.time_to_target is not None

    @property
    def finished(self) -> bool:
        return self.status in DONE_STATUSES

    def relative_dir(self) -> Path:
        """The run's folder relative to the results folder."""
        return run_dir(
            "",
            self.experiment_name,
            self.ruleset.name,
            self.submission,
            self.workload,
            self.study,
            self.trial,
        )

    def replace(self, **changes: Any) -> RunRecord:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["reached"] = self.reached  # derived; written for readers of the raw JSON
        return data

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """Parse and check a record of the current format; RecordError says what is wrong."""
        if not isinstance(data, dict):
            raise RecordError("record.json is not a JSON object")
        missing = [k for k in _REQUIRED if data.get(k) is None]
        if missing:
            raise RecordError(f"record.json lacks {', '.join(missing)}")
        if data["status"] not in STATUSES:
            raise RecordError(f"record.json has an unknown status {data['status']!r}")
        values: dict[str, Any] = {}
        for key, kind in _KINDS.items():
            value = data.get(key)
            if value is None:
                continue  # the field's default
            if not _is_kind(value, kind):
                raise RecordError(f"record.json's {key} is not {_KIND_NAMES[kind]}: {value!r}")
            values[key] = float(value) if kind == "number" else value
        for key in ("study", "trial"):
            if values[key] < 0:
                raise RecordError(f"record.json's {key} is negative")
        for key in ("start", "min", "max", "median", "reference"):
            value = (values.get("speed_index") or {}).get(key)
            if value is not None and not _is_number(value):
                raise RecordError(f"record.json's speed_index.{key} is not a number: {value!r}")
        values.setdefault("seed", None)  # imported runs record none
        values.setdefault("hyperparameters", {})
        values["ruleset"] = _ruleset(data["ruleset"])
        values["target"] = _target(data.get("target"))
        return cls(**values)


_REQUIRED = ("experiment_name", "ruleset", "submission", "workload", "study", "trial", "status")
# The JSON type of every field but ruleset and target (parsed on their own).
_KINDS = {
    **dict.fromkeys(("experiment_name", "submission", "workload", "status"), "name"),
    **dict.fromkeys(
        ("study", "trial", "seed", "batch_size", "steps_to_target", "global_step"), "int"
    ),
    **dict.fromkeys(
        ("n_evaluations", "preemption_count", "pid", "record_format", "world_size"), "int"
    ),
    **dict.fromkeys(
        (
            "hyperparameters",
            "search_point",
            "workload_settings",
            "packages",
            "speed_index",
            "cpu",
            "source",
            "submission_file",
            "external_code",
        ),
        "object",
    ),
    "disturbed": "bool",
    **dict.fromkeys(
        (
            "time_to_target",
            "budget_sec",
            "final_validation_metric",
            "accumulated_submission_time",
            "accumulated_eval_time",
            "accumulated_logging_time",
            "wall_time_sec",
            "base_budget_sec",
            "time_to_target_resolution",
        ),
        "number",
    ),
    **dict.fromkeys(
        (
            "fingerprint",
            "error",
            "hardware",
            "device",
            "host",
            "slurm_job_id",
            "started_at",
            "command",
            "git_commit",
            "backend",
            "disturbed_reason",
        ),
        "text",
    ),
}
_KIND_NAMES = {
    "name": "a non-empty string",
    "text": "a string",
    "int": "an integer",
    "number": "a finite number",
    "object": "a JSON object",
    "bool": "true or false",
}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "name":
        return isinstance(value, str) and bool(value)
    if kind == "text":
        return isinstance(value, str)
    if kind == "int":
        return _is_int(value)
    if kind == "number":
        return _is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, dict)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float (json.loads accepts NaN and Infinity; a record never holds them)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _ruleset(value: Any) -> RulesetSettings:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise RecordError("record.json's ruleset is not an object with a name")
    kinds = {"tune": bool, "budget_factor": (int, float), "num_studies": int, "num_trials": int}
    for key, kind in kinds.items():
        if value.get(key) is not None and (
            not isinstance(value[key], kind) or (kind is not bool and isinstance(value[key], bool))
        ):
            raise RecordError(f"record.json's ruleset.{key} is not valid: {value[key]!r}")
    return RulesetSettings(value["name"], *(value.get(key) for key in kinds))


def _target(value: Any) -> Target | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("metric"), str)
        or not value["metric"]
        or not _is_number(value.get("value"))
        or not isinstance(value.get("lower_is_better"), bool)
    ):
        raise RecordError(
            "record.json's target is not {metric: <name>, value: <number>, lower_is_better: "
            f"true|false}}: {value!r}"
        )
    return Target(value["metric"], float(value["value"]), value["lower_is_better"])


def _upgrade_v1(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Format 1 (before record_format existed): the ruleset was a name, its settings only in the
    run's config.yaml; the target held the workload's settings; a run rejected before it started
    had a placeholder target and no hardware."""
    data = dict(data)
    name = data.get("ruleset")
    ruleset = {"name": name if isinstance(name, str) and name else "unknown"}
    config = _config_ruleset(folder / CONFIG_FILE)
    ruleset.update(
        {k: config.get(k) for k in ("tune", "budget_factor", "num_studies", "num_trials")}
    )
    if ruleset["num_studies"] == 1000000:
        ruleset["num_studies"] = None  # format 1's "no fixed number" (ruleset fixed)
    data["ruleset"] = ruleset
    old = data.get("target") or {}
    if isinstance(old, dict) and old.get("target_value") is not None:
        data["target"] = {
            "metric": old.get("target_metric"),
            "value": old.get("target_value"),
            "lower_is_better": old.get("lower_is_better"),
        }
        data["workload_settings"] = {
            k: v
            for k, v in old.items()
            if k not in ("workload", "target_metric", "target_value", "lower_is_better")
        }
    else:
        data["target"] = None
    data["record_format"] = RECORD_FORMAT
    return data


_RULESET_BLOCK = re.compile(r"^ruleset:[ \t]*\n(?:[ \t]+.*(?:\n|$))*", flags=re.MULTILINE)


def _config_ruleset(path: Path) -> dict[str, Any]:
    """The `ruleset:` block of a format-1 run's config.yaml; {} when there is none. Only that
    block is parsed, once per distinct text: a whole config per run costs seconds on 10,000."""
    try:
        block = _RULESET_BLOCK.search(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}
    return dict(_parse_ruleset_block(block.group(0))) if block else {}


@functools.lru_cache(maxsize=256)
def _parse_ruleset_block(block: str) -> tuple[tuple[str, Any], ...]:
    import yaml

    try:
        ruleset = yaml.load(block, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["ruleset"]
    except (yaml.YAMLError, TypeError, KeyError):
        return ()
    return tuple(ruleset.items()) if isinstance(ruleset, dict) else ()


def load_record(folder: Path) -> RunRecord:
    """The record of the run in `folder`, upgraded to the current format; RecordError if it is
    missing, unreadable or malformed (the message is the reason, for skip lists)."""
    path = Path(folder) / RECORD_FILE
    if not path.exists():
        raise RecordError("no record.json (a run that never started, or a partial copy)")
    try:
        data = read_json(path)
    except (OSError, ValueError) as error:
        raise RecordError(f"record.json cannot be read: {error}") from error
    if isinstance(data, dict) and data.get("record_format", 1) == 1:
        data = _upgrade_v1(data, Path(folder))
    elif isinstance(data, dict) and data["record_format"] not in (2, RECORD_FORMAT):
        raise RecordError(
            f"record.json has record_format {data['record_format']!r}; this version reads "
            f"formats 1 to {RECORD_FORMAT} (update the harness)"
        )
    return RunRecord.from_json(data)


def read_record(folder: Path) -> RunRecord | None:
    """The run's record, or None when there is none or it cannot be read."""
    try:
        return load_record(folder)
    except RecordError:
        return None


def write_record(folder: Path, record: RunRecord, durable: bool = True) -> None:
    write_json(Path(folder) / RECORD_FILE, record.to_json(), durable=durable)


# -- atomic writes -------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would have given; mkstemp alone gives 0600


def atomic_write(
    path: Path, write: Callable[[io.BufferedWriter], None], durable: bool = True
) -> None:
    """Write `path` through `write(handle)` into a temporary file, then rename it into place.

    `durable`: flush to the disk before the rename (a crash of the machine then leaves the old
    file or the new one). Files that can be written again from elsewhere (an import) skip it:
    the rename alone still never leaves a half-written file to a reader."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)  # "No space left on device" says where
        raise


def write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), durable)


def _json_safe(value: Any) -> Any:
    """Infinity and NaN are not JSON: infinite times are stored as null (= never reached)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Mapping[str, Any], durable: bool = True) -> None:
    write_text(path, json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n", durable)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def eval_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    present = {key for row in rows for key in row}
    measured = [key for key in MEASUREMENT_COLUMNS if key in present]
    metrics = sorted(present - set(EVAL_COLUMNS) - set(MEASUREMENT_COLUMNS))
    return [*EVAL_COLUMNS, *measured, *metrics]


def write_eval_measurements(path: Path, rows: list[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=eval_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # str(float) round-trips exactly in Python 3
    write_text(path, buffer.getvalue())


# torch is imported where a checkpoint is touched: the report reads results without it.
def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Serialised in memory first, then written like any file: a full disk then raises OSError
    (ENOSPC, naming the path), where torch's own writer says only "unexpected pos"."""
    import torch

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely; the message says why, in the harness's words."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, loaded with weights_only=True (tensors and plain values only,
    so a tampered file cannot run code); CheckpointError when it cannot be, whose message never
    advises loading it otherwise."""
    import pickle

    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _unpickling_detail(str(error))
        raise CheckpointError(
            f"it holds something other than tensors and plain values{detail}, which a safe load "
            "refuses: not a checkpoint of this harness, or a damaged or tampered file"
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as error:
        reason = str(error).strip().split(". ")[0] if not isinstance(error, KeyError) else ""
        detail = f" ({reason[:160]})" if reason else ""
        raise CheckpointError(f"it is damaged or not a checkpoint{detail}") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"it holds a {type(checkpoint).__name__}, not a checkpoint")
    return checkpoint


def _unpickling_detail(message: str) -> str:
    """torch's reason after its advice (which we never repeat): 'unsupported GLOBAL x.y', ..."""
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("Trying to load unsupported", "Unsupported")):
            return f" ({line.rstrip('.')})"
    return ""
