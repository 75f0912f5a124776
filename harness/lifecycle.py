"""What may happen to a run folder, so that no finished result is ever lost.

- One process at a time: `RunLock` holds an OS lock on `<run>/.lock` for the whole attempt; the
  kernel releases it when the holder dies, so a lock left by a dead process is simply taken.
- A finished result is never removed or overwritten until its replacement has finished: a new
  attempt over a finished run trains in `<run>/.attempt/` and `promote` moves it into place
  only when it has finished itself, after `archive` has put the previous files aside.
- Nothing is deleted: files put aside go to `<run>/.replaced/<UTC time>/`, and the message that
  moved them says where. Hidden folders are never scanned (harness.results.find_run_dirs), so
  what is put aside is never scored.
- Temporary files of interrupted atomic writes (`.<name>.*.tmp`) are removed at the next start.

Never trains and never reads the clock; harness/launch.py decides what to do, this module does it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import results
from harness.errors import UserError
from harness.results import display_path as shown

LOCK_FILE = ".lock"
ATTEMPT_DIR = ".attempt"  # a replacement of a finished run trains here
REPLACED_DIR = ".replaced"  # files put aside, one folder per occasion
RESULT_FILES = (results.RECORD_FILE, results.EVAL_FILE, results.HPARAMS_FILE, results.CONFIG_FILE)
# What a fresh start must find free in the results folder: a record, evaluations and the first
# checkpoints of a small model. A full disk later in a run ends it `failed`, nothing lost.
MIN_FREE_BYTES = 64 * 2**20


class RunFolderBusy(UserError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """An exclusive lock on a run folder, held while a process trains in it (a context manager).

    `fcntl.lockf` locks are released by the kernel when the process exits however it exits, and
    work across the nodes of a cluster on NFS; the lock file names the holder for the message.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise RunFolderBusy(
                f"{shown(self.path.parent)} is in use by another process ({holder}); two "
                "processes on one run would overwrite each other's files. Wait for it to end, or "
                "stop it "
                "(a run stopped with SIGTERM checkpoints and resumes when started again)."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {platform.node()} pid {os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def remove_leftover_temporaries(run_dir: Path) -> list[Path]:
    """Remove `.<name>.*.tmp` files that an interrupted atomic write left (call under the lock)."""
    removed = []
    for folder in (Path(run_dir), Path(run_dir) / ATTEMPT_DIR):
        for path in folder.glob(".*.tmp") if folder.is_dir() else ():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def check_writable(run_dir: Path) -> None:
    """The run folder can be created and written, with room for a run; else one paragraph."""
    run_dir = Path(run_dir)
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise UserError(
            f"cannot create the run folder {shown(run_dir)}: {existing} is a file, "
            "not a folder. "
            "Choose another results_dir (or experiment_name), or move that file away."
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(
            f"cannot write into the run folder {shown(run_dir)} ({error.strerror or error}). "
            "Choose a results_dir you can write to (results_dir=PATH), or fix the folder's "
            "permissions."
        ) from None
    free = shutil.disk_usage(run_dir).free
    if free < MIN_FREE_BYTES:
        raise UserError(
            f"no space left on device: {shown(run_dir)} has {free / 2**20:.1f} MiB free, and a run "
            f"needs at least {MIN_FREE_BYTES / 2**20:.0f} MiB for its record, evaluations and "
            "checkpoints. Free some space or choose another results_dir."
        )


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")


def archive(
    run_dir: Path, names: tuple[str, ...] = (*RESULT_FILES, results.CHECKPOINT_FILE)
) -> Path | None:
    """Move the files `names` of `run_dir` that exist into `.replaced/<time>/`; returns that
    folder, or None when there was nothing to move."""
    present = [Path(run_dir) / name for name in names if (Path(run_dir) / name).exists()]
    if not present:
        return None
    folder = Path(run_dir) / REPLACED_DIR / _stamp()
    folder.mkdir(parents=True)
    for path in present:
        os.replace(path, folder / path.name)
    return folder


def attempt_dir(run_dir: Path) -> Path:
    return Path(run_dir) / ATTEMPT_DIR


def promote(run_dir: Path) -> Path | None:
    """Move a finished attempt into place: whatever it would replace (its files, and the result
    files of the run) goes to `.replaced/<time>/` first (returned), then the attempt's files
    (record, evaluations, config, a logger's files) move in, record.json last. Interrupted
    midway, the next start promotes what is left in `.attempt/` again."""
    staged = attempt_dir(run_dir)
    names = sorted(p.name for p in staged.iterdir() if not p.name.startswith("."))
    kept = archive(run_dir, tuple(sorted({*names, *RESULT_FILES, results.CHECKPOINT_FILE})))
    for name in sorted(names, key=lambda name: name == results.RECORD_FILE):
        os.replace(staged / name, Path(run_dir) / name)
    with contextlib.suppress(OSError):  # left in place if anything hidden is still in it
        staged.rmdir()
    return kept


# -- what determines a result --------------------------------------------------------------------
# Config keys that change where or how a run is shown or kept, never what it computes.
PRESENTATION_KEYS = (
    "results_dir",
    "experiment_name",
    "progress",
    "logger",
    "force",
    "skip_done",
    "checkpoint",
    "keep_checkpoint",
)


# Paths of files whose content the config names by hash (submission.sha256, an AlgoPerf
# submission file and its search space): the same file from another folder is the same run.
CONTENT_NAMED_PATHS = ("submission.file", "submission.search_space")


def identity(config_yaml: str) -> dict[str, Any]:
    """Everything a resolved config.yaml says that determines the run's result, as dotted keys.
    Computed from the YAML text for new and stored configs alike, so both read the same way."""
    data = yaml.safe_load(config_yaml) or {}
    for key in PRESENTATION_KEYS:
        data.pop(key, None)
    flat = _flatten(data)
    if flat.get("submission.sha256"):  # a file named by its content: where it lies is not
        for key in CONTENT_NAMED_PATHS:  # what determines the result
            flat.pop(key, None)
    if not flat.get("submission.averaging.suffix"):  # no weight averaging: the same result as
        for key in [k for k in flat if k.startswith("submission.averaging.")]:  # before the
            flat.pop(key)  # group existed, so earlier runs keep their fingerprints
    return flat


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def fingerprint(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_identity(folder: Path) -> dict[str, Any] | None:
    """The identity of the run whose config.yaml is in `folder`; None when it has none."""
    try:
        return identity((Path(folder) / results.CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return None


def differences(old: dict[str, Any] | None, new: dict[str, Any], limit: int = 8) -> str:
    """`key: old -> new` for every key that differs, for a message."""
    if old is None:
        return "its config.yaml is missing or unreadable, so its settings are unknown"
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, MISSING) != new.get(k, MISSING))
    shown = [f"{k}: {_show(old.get(k, MISSING))} -> {_show(new.get(k, MISSING))}" for k in keys]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return "; ".join(shown[:limit]) + more if shown else "no setting differs (another format)"


MISSING = object()


def _show(value: Any) -> str:
    return "(absent)" if value is MISSING else repr(value)


# -- deciding what to do with a run folder -------------------------------------------------------
@dataclass
class Plan:
    """What a new attempt does: `skip` (a finished run with the same settings), `resume` (from
    `checkpoint`), `start`, or `replace` (train in `folder` = .attempt/, promote when finished).
    `notes` say what was moved aside, for the log."""

    action: str
    folder: Path
    checkpoint: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


class SettingsChanged(UserError):
    """The folder holds a run made with other settings; force=true is needed to replace it."""


class UnreadableCheckpoint(UserError):
    """The folder's checkpoint cannot be read or was written by another format."""


class UnreadableRecord(UserError):
    """The folder's record.json cannot be read and no checkpoint says whose run it is."""


def finished_fingerprint(run_dir: Path) -> str | None:
    """The fingerprint of the finished run in `run_dir`; None if it holds none (records of
    format 1 have no fingerprint: their config.yaml gives it)."""
    record = results.read_record(run_dir)
    if record is None or not record.finished:
        return None
    if record.fingerprint is not None:
        return record.fingerprint
    stored = stored_identity(run_dir)
    return "unknown" if stored is None else fingerprint(stored)


def conflict(run_dir: Path, new_identity: dict[str, Any]) -> str | None:
    """What differs between the settings of the run already in `run_dir` (finished, or
    interrupted with a checkpoint) and `new_identity`; None when nothing is there or nothing
    differs. Reads records and configs only, never a checkpoint: for a sweep's check before
    launch."""
    record = results.read_record(run_dir)
    interrupted = (Path(run_dir) / results.CHECKPOINT_FILE).exists()
    if not interrupted and (record is None or not record.finished):
        return None
    stored = stored_identity(run_dir)
    old = record.fingerprint if record is not None and record.fingerprint else None
    if old is None and stored is not None:
        old = fingerprint(stored)
    return None if old == fingerprint(new_identity) else differences(stored, new_identity)


def plan(
    run_dir: Path,
    new_identity: dict[str, Any],
    *,
    force: bool,
    skip_done: bool,
    load_checkpoint: Callable[[Path], dict[str, Any]],
) -> Plan:
    """What a new attempt at the run in `run_dir` does with what the folder holds. Call it under
    the folder's RunLock. Raises SettingsChanged or UnreadableCheckpoint (one paragraph each)
    rather than touch a result or a checkpoint without force=true; with force=true nothing is
    deleted either: it is archived."""
    run_dir, notes = Path(run_dir), []
    staged = attempt_dir(run_dir)
    staged_record = results.read_record(staged)
    if staged_record is not None and staged_record.finished:  # a promotion was interrupted
        kept = promote(run_dir)
        notes.append(f"completed the replacement that was left in {staged}")
        if kept:
            notes.append(f"the result it replaced is in {kept}")
    new = fingerprint(new_identity)
    record, unreadable = None, None
    try:
        record = results.load_record(run_dir)
    except results.RecordError as error:
        if (run_dir / results.RECORD_FILE).exists():  # maybe a result, of another version
            unreadable = str(error)
    if record is None or not record.finished:
        return _plan_in(
            run_dir, "start", new, new_identity, force, load_checkpoint, notes, unreadable
        )
    if finished_fingerprint(run_dir) != new and not force:
        raise SettingsChanged(
            f"{shown(run_dir)} already holds a finished run made with other settings "
            f"({differences(stored_identity(run_dir), new_identity)}), and its result stays as "
            "it is. To replace it, run the same command with force=true (the earlier result is "
            f"kept in {shown(run_dir / REPLACED_DIR)}/); to keep both, choose another "
            "experiment_name; to repeat a run with new seeds, vary study=."
        )
    if not force and skip_done:
        return Plan("skip", run_dir, notes=notes)
    # Replace: train beside the finished result, which stays in place until this one finishes.
    return _plan_in(staged, "replace", new, new_identity, force, load_checkpoint, notes)


def _plan_in(
    folder: Path,
    start: str,
    new: str,
    new_identity: dict[str, Any],
    force: bool,
    load_checkpoint: Callable[[Path], dict[str, Any]],
    notes: list[str],
    unreadable: str | None = None,
) -> Plan:
    """Resume from `folder`'s checkpoint when it is this run's, else start there afresh with the
    folder's earlier files archived. A checkpoint of other settings, or a record that cannot be
    read (`unreadable`: why) without a checkpoint of this run, needs force=true."""
    path = folder / results.CHECKPOINT_FILE
    if path.exists():
        try:
            checkpoint = load_checkpoint(path)
            format_ = checkpoint.get("format")
        except results.CheckpointError as error:  # truncated, or not loadable safely
            if not force:
                raise UnreadableCheckpoint(
                    f"the checkpoint {shown(path)} cannot be read: {error}. A full disk or an "
                    "interrupted copy can cut a file short. To start this run over, run the same "
                    f"command with force=true; the file is moved to "
                    f"{shown(folder / REPLACED_DIR)}/, "
                    "not deleted."
                ) from None
        else:
            if format_ == results.CHECKPOINT_FORMAT and checkpoint.get("fingerprint") == new:
                return Plan("resume", folder, checkpoint, notes)
            if not force:
                why = (
                    f"its settings differ ({differences(stored_identity(folder), new_identity)})"
                    if format_ == results.CHECKPOINT_FORMAT
                    else f"it has checkpoint format {format_!r}, this version writes "
                    f"{results.CHECKPOINT_FORMAT}"
                )
                raise SettingsChanged(
                    f"{shown(folder)} holds an interrupted run that cannot be resumed by "
                    "this command: "
                    f"{why}. Run the command that started it to resume it, or run this one with "
                    f"force=true to start over (its files are moved to "
                    f"{shown(folder / REPLACED_DIR)}/, "
                    "not deleted)."
                )
    if unreadable is not None and not force:
        raise UnreadableRecord(
            f"{shown(folder / results.RECORD_FILE)} cannot be read ({unreadable}), "
            "and the folder "
            "holds no checkpoint "
            "of this run to resume from; it may hold a result of another version of the "
            "harness. To start this run over, run the same command with force=true; the "
            f"folder's files are moved to {shown(folder / REPLACED_DIR)}/, not deleted."
        )
    moved = archive(folder)
    if moved is not None:
        notes.append(f"moved the earlier attempt's files to {moved}")
    return Plan(start, folder, None, notes)
