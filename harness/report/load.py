"""Load a results folder into pandas: one row per run (record.json) and one row per evaluation
(eval_measurements.csv), cached as parquet so that the second load of a large folder is fast.

Reads run folders through harness/results.py (the one scanner, the one record reader) and never
writes into them (the cache lives in <results>/.report_cache); never scores
(harness/report/scoring.py does). A partial or corrupt run folder is skipped with its reason.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from harness import results

CACHE_DIR = ".report_cache"
# Older caches are rebuilt: bump when the tables' columns change (the record format counts too,
# since the upgrade of older records decides what the runs table holds).
CACHE_FORMAT = 100 * results.RECORD_FORMAT + 4
RUN_FILES = (results.RECORD_FILE, results.EVAL_FILE, results.CONFIG_FILE)  # what a row reads
REQUIRED_EVAL_COLUMNS = ("global_step", "accumulated_submission_time")
# Relative tolerance when checking record.json's time_to_target against the evaluations.
TIME_TOLERANCE = 1e-9

RUN_COLUMNS = (
    "run_id",  # the run folder relative to the results folder: the key of every table
    "experiment_name",
    "ruleset",
    "submission",
    "workload",
    "study",
    "trial",
    "seed",
    "status",
    "time_to_target",  # seconds of submission time; inf = never reached
    "steps_to_target",  # NaN = never reached
    "target_metric",
    "target_value",
    "lower_is_better",
    "budget_sec",
    "max_runtime_sec",  # the workload's budget before the ruleset's factor; NaN: not recorded
    "step_hint",  # the workload's step hint (schedules decay over it); NaN: not recorded
    "hardware",
    "global_step",
    "final_validation_metric",
    "num_trials",  # trials per study the run's ruleset asks for; NaN if not recorded
    "num_studies",  # NaN: no fixed number (ruleset fixed) or not recorded
    "n_evaluations",
    "hyperparameters",  # JSON text
    "git_commit",
    "host",
    "started_at",
    "packages",  # JSON text
    "error",
    "disturbed",  # True: the run's times are not a quiet machine's (harness/speed.py)
    "disturbed_reason",
    "speed_index",  # the run's first reading; NaN for records before format 3
    "reference_speed_index",  # of the workload's calibration machine; NaN where none
    "time_to_target_resolution",  # seconds since the last evaluation that missed; NaN
    "evaluations_to_target",  # 0-based index of the first evaluation meeting the target; NaN
    "base_workload",  # a held-out variant's base workload ("" for others; the held-out rule)
    "benchmark_workloads",  # the benchmark's declared workloads, comma-separated ("" = none)
    "command",  # the command that reruns this run alone ("" where the record has none)
)


class CorruptRun(Exception):
    """A run folder that cannot be read; the message says why."""


@dataclass
class Results:
    """Every readable run under `root`; `skipped` names the folders left out, with the reason."""

    root: Path
    runs: pd.DataFrame
    evaluations: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per evaluation with its run's record fields alongside."""
        return self.evaluations.merge(self.runs, on="run_id", how="left", validate="many_to_one")


def file_signature(run_dir: Path) -> str:
    """Changes whenever one of the run's files is rewritten (atomic writes give a new mtime)."""
    parts = []
    folder = os.fspath(run_dir)
    for name in RUN_FILES:
        try:
            stat = os.stat(os.path.join(folder, name))
            parts.append(f"{stat.st_mtime_ns}:{stat.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


# -- parsing one run -----------------------------------------------------------------------------
def _float(value: float | int | None, none: float) -> float:
    return none if value is None else float(value)


def _setting(settings: dict[str, Any], key: str) -> float:
    value = settings.get(key)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number else math.nan


def parse_record(run_dir: Path, run_id: str) -> dict[str, Any]:
    """The run's row of the runs table; CorruptRun when its record cannot be scored."""
    try:
        record = results.load_record(run_dir)
    except results.RecordError as error:
        raise CorruptRun(str(error)) from error
    error = (record.error or "").strip().splitlines()[-1:] or ["no error recorded"]
    if record.target is None:
        raise CorruptRun(
            f"record.json has no target (status {record.status}: {error[0]}); nothing to score "
            "it against"
        )
    if record.hardware is None:
        raise CorruptRun(f"record.json names no hardware: the run never started ({error[0]})")
    # A run evaluates at least once unless it diverged or failed first (format 1 did not count
    # evaluations: a run that reached the target or the budget had at least one).
    evaluated = record.n_evaluations > 0 or record.status in ("reached", "not_reached")
    if evaluated and not (run_dir / results.EVAL_FILE).exists():
        raise CorruptRun(
            f"status {record.status} but eval_measurements.csv is missing (a partial copy?)"
        )
    ruleset = record.ruleset
    speed = record.speed_index or {}
    return {
        "run_id": run_id,
        "experiment_name": record.experiment_name,
        "ruleset": ruleset.name,
        "submission": record.submission,
        "workload": record.workload,
        "study": record.study,
        "trial": record.trial,
        "seed": _float(record.seed, math.nan),
        "status": record.status,
        "time_to_target": _float(record.time_to_target, math.inf),
        "steps_to_target": _float(record.steps_to_target, math.nan),
        "target_metric": record.target.metric,
        "target_value": record.target.value,
        "lower_is_better": record.target.lower_is_better,
        "budget_sec": _float(record.budget_sec, math.inf),
        "max_runtime_sec": _setting(record.workload_settings, "max_runtime_sec"),
        "step_hint": _setting(record.workload_settings, "step_hint"),
        "hardware": record.hardware,
        "global_step": float(record.global_step),
        "final_validation_metric": _float(record.final_validation_metric, math.nan),
        "num_trials": _float(ruleset.num_trials, math.nan),
        "num_studies": _float(ruleset.num_studies, math.nan),
        "n_evaluations": 0,
        "hyperparameters": json.dumps(record.hyperparameters, sort_keys=True),
        "git_commit": record.git_commit or "",
        "host": record.host or "",
        "started_at": record.started_at or "",
        "packages": json.dumps(record.packages, sort_keys=True),
        "error": record.error or "",
        "disturbed": bool(record.disturbed),
        "disturbed_reason": record.disturbed_reason or "",
        "speed_index": _float(speed.get("start"), math.nan),
        "reference_speed_index": _float(speed.get("reference"), math.nan),
        "time_to_target_resolution": _float(record.time_to_target_resolution, math.nan),
        "evaluations_to_target": math.nan,  # from the evaluations, in parse_runs
        "base_workload": str(record.workload_settings.get("base_workload") or ""),
        "benchmark_workloads": ",".join(record.workload_settings.get("benchmark_workloads") or ()),
        "command": record.command or "",
    }


# -- parsing many eval_measurements.csv at once -------------------------------------------------
def _parse_csv(text: str, columns: list[str]) -> pd.DataFrame:
    """Headerless rows; a row with more fields than the header is an error, not an index."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(
                io.StringIO(text), header=None, names=columns, index_col=False, engine="c"
            )
        except pd.errors.ParserWarning as error:
            raise CorruptRun("eval_measurements.csv has rows longer than its header") from error


def _check_eval_frame(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_EVAL_COLUMNS if c not in frame.columns]
    if missing:
        raise CorruptRun(f"eval_measurements.csv lacks the column(s) {', '.join(missing)}")
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise CorruptRun(f"eval_measurements.csv has non-numeric values in {column}")
    if frame[list(REQUIRED_EVAL_COLUMNS)].isna().any().any():
        raise CorruptRun("eval_measurements.csv has empty or short rows")


def parse_eval_files(texts: dict[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Parse eval_measurements.csv texts keyed by run_id; returns (evaluations, {run_id: reason}).

    Files with the same header are concatenated and parsed in one call (ten thousand small files
    parse in about a second this way); a batch that fails is parsed file by file to find the
    corrupt ones.
    """
    by_header: dict[str, list[tuple[str, str]]] = defaultdict(list)
    corrupt: dict[str, str] = {}
    for run_id, text in texts.items():
        header, _, body = text.partition("\n")
        if not header.strip():
            corrupt[run_id] = "eval_measurements.csv is empty"
            continue
        if _cut_short(text):
            corrupt[run_id] = (
                "eval_measurements.csv ends in an incomplete row: the file was cut short (an "
                "interrupted copy, or a full disk); the run's own writes are atomic"
            )
            continue
        by_header[header.strip()].append((run_id, body))
    frames = []
    for header, members in by_header.items():
        columns = header.split(",")
        try:
            frames.append(_parse_batch(columns, members))
        except (CorruptRun, ValueError, pd.errors.ParserError):
            for run_id, body in members:
                try:
                    frames.append(_parse_batch(columns, [(run_id, body)]))
                except (CorruptRun, ValueError, pd.errors.ParserError) as error:
                    corrupt[run_id] = str(error).splitlines()[0] or type(error).__name__
    return concat_evaluations([f for f in frames if len(f)]), corrupt


def _cut_short(text: str) -> bool:
    """Whether the file ends mid-row. Every writer of these files ends each row with a newline,
    and a row cut inside its last number would still parse: the missing newline is the sign."""
    return not text.endswith("\n")


def _parse_batch(columns: list[str], members: Sequence[tuple[str, str]]) -> pd.DataFrame:
    if len(set(columns)) != len(columns):
        raise CorruptRun("eval_measurements.csv has a repeated column name")
    bodies = [body if body.endswith("\n") or not body else body + "\n" for _, body in members]
    counts = [body.count("\n") - _trailing_blank_lines(body) for body in bodies]
    text = "".join(bodies)
    frame = _parse_csv(text, columns) if text.strip() else pd.DataFrame(columns=columns)
    if len(frame) != sum(counts):
        raise CorruptRun("eval_measurements.csv has blank or malformed lines")
    _check_eval_frame(frame)
    frame = frame.astype(float)
    codes = np.repeat(np.arange(len(members)), counts)
    run_ids = pd.Categorical.from_codes(codes, categories=[run_id for run_id, _ in members])
    frame.insert(0, "run_id", run_ids)
    return frame


def _trailing_blank_lines(body: str) -> int:
    stripped = body.rstrip("\n")
    return len(body) - len(stripped) - (1 if stripped else 0)


def concat_evaluations(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate evaluation tables keeping run_id categorical (a million strings otherwise)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({"run_id": pd.Categorical([]), "global_step": pd.Series(dtype=float)})
    run_ids = union_categoricals([pd.Categorical(f["run_id"]) for f in frames])
    joined = pd.concat([f.drop(columns="run_id") for f in frames], ignore_index=True)
    joined.insert(0, "run_id", run_ids.remove_unused_categories())
    return joined


# -- loading with the cache ----------------------------------------------------------------------
def parse_runs(
    root: Path, run_dirs: Iterable[Path]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict[str, str]]:
    """(runs, evaluations, {run_id: reason skipped}, {run_id: warning}) for the given run
    folders, without cache. The warnings name records that disagree with their evaluations."""
    rows, texts, skipped = [], {}, {}
    for run_dir in run_dirs:
        run_id = run_dir.relative_to(root).as_posix()
        try:
            row = parse_record(run_dir, run_id)
            eval_path = os.path.join(run_dir, results.EVAL_FILE)
            if os.path.exists(eval_path):
                with open(eval_path, encoding="utf-8") as handle:
                    texts[run_id] = handle.read()
        except (CorruptRun, OSError, UnicodeDecodeError) as error:
            skipped[run_id] = str(error)
            continue
        rows.append(row)
    evaluations, corrupt = parse_eval_files(texts)
    skipped.update(corrupt)
    runs = pd.DataFrame([r for r in rows if r["run_id"] not in corrupt], columns=RUN_COLUMNS)
    first_time, first_index = first_meeting_evaluation(runs, evaluations)  # one pass, two uses
    runs = _typed_runs(runs, evaluations, first_index)
    return runs, evaluations, skipped, _time_to_target_mismatches(runs, first_time)


def _typed_runs(
    runs: pd.DataFrame, evaluations: pd.DataFrame, evaluations_to_target: pd.Series
) -> pd.DataFrame:
    runs = runs.copy()
    counts = evaluations["run_id"].value_counts()
    runs["n_evaluations"] = runs["run_id"].map(counts).fillna(0).astype(int)
    runs["evaluations_to_target"] = evaluations_to_target.to_numpy()
    for column in ("study", "trial"):
        runs[column] = runs[column].astype(int)
    float_columns = [
        "seed",
        "time_to_target",
        "steps_to_target",
        "target_value",
        "budget_sec",
        "max_runtime_sec",
        "step_hint",
        "global_step",
        "final_validation_metric",
        "num_trials",
        "num_studies",
        "evaluations_to_target",
    ]
    runs[float_columns] = runs[float_columns].astype(float)
    runs["lower_is_better"] = runs["lower_is_better"].astype(object)
    return runs.sort_values("run_id", ignore_index=True)


MANIFEST_COLUMNS = ("run_id", "signature", "skip_reason", "warning", "format")


def _read_cache(cache: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    try:
        manifest = pd.read_parquet(cache / "manifest.parquet")
        if list(manifest.columns) != list(MANIFEST_COLUMNS):
            return None
        if len(manifest) and int(manifest["format"].iloc[0]) != CACHE_FORMAT:
            return None
        runs = pd.read_parquet(cache / "runs.parquet")
        evaluations = pd.read_parquet(cache / "evaluations.parquet")
        if list(runs.columns) != list(RUN_COLUMNS):
            return None
    except (OSError, ValueError, KeyError, ImportError):
        return None
    runs["lower_is_better"] = runs["lower_is_better"].astype(object)
    evaluations["run_id"] = evaluations["run_id"].astype("category")
    return manifest, runs, evaluations


def _write_cache(cache: Path, manifest, runs, evaluations) -> str | None:
    """Write the three tables; returns a warning when the folder is not writable."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for name, frame in (
            ("runs", runs),
            ("evaluations", evaluations),
            ("manifest", manifest),  # last: a cache without a fresh manifest is rebuilt
        ):
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            data = buffer.getvalue()
            results.atomic_write(cache / f"{name}.parquet", lambda h, d=data: h.write(d))
    except OSError as error:
        return f"cannot write the parquet cache in {cache} ({error}); loading without it"
    return None


def _empty_cache() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (
        pd.DataFrame(columns=list(MANIFEST_COLUMNS)),
        pd.DataFrame(columns=RUN_COLUMNS),
        concat_evaluations([]),
    )


def load(root: Path, use_cache: bool = True) -> Results:
    """Every run under `root`. With the cache, only run folders whose files changed are read."""
    root = Path(root)
    run_dirs = results.find_run_dirs(root)
    run_ids = [d.relative_to(root).as_posix() for d in run_dirs]
    signatures = dict(zip(run_ids, map(file_signature, run_dirs), strict=True))
    cache = root / CACHE_DIR
    cached = _read_cache(cache) if use_cache else None
    manifest, runs, evaluations = cached or _empty_cache()
    known = dict(zip(manifest["run_id"], manifest["signature"], strict=True))
    unchanged = {run_id for run_id, sig in signatures.items() if known.get(run_id) == sig}
    to_parse = [d for d, run_id in zip(run_dirs, run_ids, strict=True) if run_id not in unchanged]
    old = manifest[manifest["run_id"].isin(list(unchanged))]
    skipped = dict(zip(old["run_id"], old["skip_reason"], strict=True))
    notes = dict(zip(old["run_id"], old["warning"], strict=True))

    if to_parse or len(known) != len(unchanged) or cached is None:
        new_runs, new_evaluations, new_skips, new_notes = parse_runs(root, to_parse)
        skipped.update(new_skips)
        notes.update(new_notes)
        kept = list(unchanged)
        runs = pd.concat(
            [p for p in (runs[runs["run_id"].isin(kept)], new_runs) if len(p)] or [new_runs],
            ignore_index=True,
        ).sort_values("run_id", ignore_index=True)
        evaluations = concat_evaluations(
            [evaluations[evaluations["run_id"].isin(kept)], new_evaluations]
        )
        if use_cache:
            manifest = pd.DataFrame(
                {
                    "run_id": run_ids,
                    "signature": [signatures[r] for r in run_ids],
                    "skip_reason": [skipped.get(r) for r in run_ids],
                    "warning": [notes.get(r) for r in run_ids],
                    "format": CACHE_FORMAT,
                },
                columns=list(MANIFEST_COLUMNS),
            )
            problem = _write_cache(cache, manifest, runs, evaluations)
            if problem:
                notes[""] = problem
    skipped = {r: reason for r, reason in skipped.items() if isinstance(reason, str)}
    messages = [f"{r}: {m}" if r else m for r, m in sorted(notes.items()) if isinstance(m, str)]
    return Results(root, runs, evaluations, sorted(skipped.items()), messages)


def clear_cache(root: Path) -> None:
    shutil.rmtree(Path(root) / CACHE_DIR, ignore_errors=True)


# -- consistency ---------------------------------------------------------------------------------
def first_meeting_evaluation(
    runs: pd.DataFrame, evaluations: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Per run_id (in the order of `runs`): the submission time of the first evaluation that meets
    the target within the budget (inf when none does) and its 0-based index among the run's
    evaluations (NaN when none does); both NaN where the record has no target."""
    info = runs.set_index("run_id")
    known = (info["lower_is_better"].notna() & info["target_value"].notna()).to_numpy()
    first = np.full(len(info), np.inf)
    first_index = np.full(len(info), np.inf)
    if len(evaluations) and len(info):
        run_ids = pd.Categorical(evaluations["run_id"])
        position = info.index.get_indexer(run_ids.categories)[run_ids.codes]  # row in `info`
        order = pd.Series(run_ids.codes).groupby(run_ids.codes).cumcount().to_numpy(float)
        inside = position >= 0
        position, order = position[inside], order[inside]
        times = evaluations["accumulated_submission_time"].to_numpy(float)[inside]
        values = np.full(len(position), np.nan)
        metric_codes, metric_names = pd.factorize(info["target_metric"])
        row_metric = metric_codes[position]
        for code, name in enumerate(metric_names):
            if name in evaluations.columns:
                rows = row_metric == code
                values[rows] = evaluations[name].to_numpy(float)[inside][rows]
        target = info["target_value"].to_numpy(float)[position]
        lower = info["lower_is_better"].to_numpy(object)[position] == True  # noqa: E712
        with np.errstate(invalid="ignore"):
            met = np.where(lower, values <= target, values >= target)
        met &= times <= info["budget_sec"].to_numpy(float)[position]
        np.minimum.at(first, position[met], times[met])
        np.minimum.at(first_index, position[met], order[met])
    first_index[~np.isfinite(first_index)] = np.nan
    return (
        pd.Series(np.where(known, first, np.nan), index=info.index),
        pd.Series(np.where(known, first_index, np.nan), index=info.index),
    )


def _time_to_target_mismatches(runs: pd.DataFrame, first_time: pd.Series) -> dict[str, str]:
    """Finished runs whose record.json disagrees with their own evaluations (`first_time`, per
    run_id: first_meeting_evaluation's times)."""
    done = runs[runs["status"].isin(results.DONE_STATUSES)]
    if done.empty:
        return {}
    recorded = done.set_index("run_id")["time_to_target"]
    from_evaluations = first_time[recorded.index]
    both_inf = np.isinf(recorded) & np.isinf(from_evaluations)
    close = np.isclose(recorded, from_evaluations, rtol=TIME_TOLERANCE, atol=0.0)
    bad = from_evaluations.notna() & ~both_inf & ~close
    return {
        run_id: (
            f"record.json says time_to_target {recorded[run_id]:g} s but its evaluations "
            f"say {from_evaluations[run_id]:g} s; the report uses the record"
        )
        for run_id in recorded.index[bad]
    }
