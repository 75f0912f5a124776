"""`python -m harness.algoperf import LOGS OUT --targets TARGETS.json`: AlgoPerf's logs as our runs.

AlgoPerf (mlcommons/algorithmic-efficiency) writes one `eval_measurements.csv` per trial under
`<ruleset>_tuning/<submission>/study_<k>/<workload>_<jax|pytorch>/trial_<j>/`. This module turns
every such trial into a run folder of ours (`OUT/<experiment>/<ruleset>/<submission>/<workload>/
study_<k>/trial_<j>/` with `record.json` and the original `eval_measurements.csv`), so that
`python -m harness.report` scores AlgoPerf's published logs beside, or instead of, our own runs.

Rules (docs/algoperf.md):
- the target of a workload comes from AlgoPerf's targets file (`workload_targets_*.json`);
- time-to-target is AlgoPerf's: the `accumulated_submission_time` of the first evaluation whose
  validation metric meets the target (AlgoPerf writes the same number as `score`); there is no
  budget cut, since AlgoPerf's runs stopped at their own budget;
- the framework suffix is dropped (`ogbg_jax` is `ogbg`);
- each workload variant is a workload of its own; a held-out variant is tied to its base workload
  (`workload_settings.base_workload`), which turns on the held-out rule of the report, and every
  record declares the benchmark's base workloads (`workload_settings.benchmark_workloads`), the
  denominator of the score.

Importing never overwrites a run of ours, and never a different import: a trial imported before
from the same file (same sha256) is left as it is, so an import can be repeated or resumed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shlex
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import results

SOURCE_FORMAT = "algoperf"
FRAMEWORK_SUFFIX = re.compile(r"^(?P<workload>.+)_(?P<framework>jax|pytorch)$")
STUDY_FOLDER = re.compile(r"^study_(\d+)$")
TRIAL_FOLDER = re.compile(r"^trial_(\d+)$")
RULESET_FOLDERS = {"external_tuning": "external", "self_tuning": "self"}
# AlgoPerf's metric directions (targets files before v0.6 do not say target_metric_goal).
MINIMIZED = {"loss", "ce_loss", "ctc_loss", "l1_loss", "error_rate", "wer", "cer", "ppl"}
MAXIMIZED = {"accuracy", "bleu", "ssim", "mean_average_precision", "auc"}
TIME_COLUMN = "accumulated_submission_time"
PROGRESS_SECONDS = 2.0  # a progress line at most this often when stderr is not a terminal


class ImportProblem(Exception):
    """A problem with the command's inputs (not with one trial); the message says what to do."""


class UnreadableTrial(Exception):
    """One trial that cannot be imported; the message says why."""


# -- the targets file ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkloadTarget:
    metric: str  # validation/<name>
    value: float
    lower_is_better: bool
    step_hint: int | None
    max_runtime_sec: float | None


@dataclass(frozen=True)
class Benchmark:
    """One AlgoPerf benchmark version: its workloads' targets, base workloads and held-out set."""

    version: str
    base_workloads: tuple[str, ...]
    held_out: tuple[str, ...]
    workloads: dict[str, WorkloadTarget]

    def base_of(self, workload: str) -> str | None:
        """The base workload a variant belongs to (the longest base name it extends)."""
        bases = [b for b in self.base_workloads if workload == b or workload.startswith(b + "_")]
        return max(bases, key=len) if bases else None

    def settings(self, workload: str, framework: str) -> dict[str, Any]:
        """What a record says about the workload and the benchmark it belongs to."""
        target = self.workloads[workload]
        settings: dict[str, Any] = {
            "benchmark": f"algoperf v{self.version}",
            "benchmark_workloads": list(self.base_workloads),
            "framework": framework,
            "step_hint": target.step_hint,
        }
        if target.max_runtime_sec is not None:
            settings["max_runtime_sec"] = target.max_runtime_sec
        if workload in self.held_out:
            settings["base_workload"] = self.base_of(workload)
        return settings


def _direction(name: str, spec: dict[str, Any], path: Path) -> bool:
    goal = spec.get("target_metric_goal")
    if goal in ("minimize", "maximize"):
        return goal == "minimize"
    if name in MINIMIZED or name in MAXIMIZED:
        return name in MINIMIZED
    raise ImportProblem(
        f"{path} does not say whether {name!r} is minimized: add "
        '"target_metric_goal": "minimize" (or "maximize") to that workload\'s entry.'
    )


def read_targets(path: Path, held_out_path: Path | None = None) -> Benchmark:
    """AlgoPerf's targets file (and optionally its held-out list, which then takes precedence)."""
    raw = _read_json(path, "the targets file")
    try:
        workloads = {}
        for name, spec in raw["workloads"].items():
            metric = str(spec["target_metric_name"])
            workloads[name] = WorkloadTarget(
                metric=f"validation/{metric}",
                value=float(spec["validation_target_value"]),
                lower_is_better=_direction(metric, spec, path),
                step_hint=spec.get("step_hint"),
                max_runtime_sec=spec.get("max_allowed_runtime_sec"),
            )
        base = tuple(raw["base_workloads"])
        held_out = tuple(raw.get("held_out_workloads") or ())
        version = str(raw.get("benchmark_version", "unknown"))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ImportProblem(
            f"{path} is not an AlgoPerf targets file (workload_targets_*.json with "
            f"base_workloads and workloads.<name>.target_metric_name / "
            f"validation_target_value): {type(error).__name__}: {error}"
        ) from error
    if held_out_path is not None:
        listed = _read_json(held_out_path, "the held-out file")
        if not isinstance(listed, list) or not all(isinstance(w, str) for w in listed):
            raise ImportProblem(
                f"{held_out_path} should be a JSON list of workload names, as AlgoPerf's "
                "held_out_workloads_*.json is"
            )
        held_out = tuple(listed)
    benchmark = Benchmark(version, base, held_out, workloads)
    unknown = [w for w in base + held_out if w not in workloads]
    untied = [w for w in held_out if benchmark.base_of(w) is None]
    if unknown or untied:
        raise ImportProblem(
            f"the base and held-out workloads must have targets in {path} and each held-out "
            f"variant must extend a base workload's name; not so for "
            f"{', '.join(unknown + untied)}"
        )
    return benchmark


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ImportProblem(f"cannot read {what} {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise ImportProblem(f"{what} {path} is not valid JSON: {error}") from error


# -- finding trials ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """Where one AlgoPerf trial's eval_measurements.csv is, and what its path says."""

    path: Path
    relative: str  # to LOGS, the trial's name in messages and in its record
    ruleset: str
    submission: str
    study: int
    workload: str  # without the framework suffix
    framework: str
    trial: int


def find_trials(logs: Path, ruleset: str | None) -> tuple[list[Trial], list[tuple[str, str]]]:
    """Every trial under `logs` in AlgoPerf's layout, and (path, reason) for files that are not."""
    trials, unreadable = [], []
    for path in _eval_files(logs):
        relative = path.relative_to(logs).as_posix()
        try:
            trials.append(_trial_from_path(path, relative, ruleset))
        except UnreadableTrial as error:
            unreadable.append((relative, str(error)))
    return trials, unreadable


def _eval_files(logs: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(logs):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        if results.EVAL_FILE in files:
            yield Path(folder, results.EVAL_FILE)


def _trial_from_path(path: Path, relative: str, ruleset: str | None) -> Trial:
    parts = Path(relative).parts[:-1]
    layout = "<submission>/study_<k>/<workload>_<jax|pytorch>/trial_<j>/eval_measurements.csv"
    trial = TRIAL_FOLDER.match(parts[-1]) if parts else None
    workload = FRAMEWORK_SUFFIX.match(parts[-2]) if len(parts) >= 2 else None
    study = STUDY_FOLDER.match(parts[-3]) if len(parts) >= 3 else None
    if not (trial and workload and study and len(parts) >= 4):
        raise UnreadableTrial(f"not in AlgoPerf's layout {layout}")
    named = [RULESET_FOLDERS[p] for p in parts[:-4] if p in RULESET_FOLDERS]
    if named and ruleset is not None and named[-1] != ruleset:
        raise UnreadableTrial(f"in a {named[-1]}_tuning folder, but --ruleset {ruleset} was given")
    if not named and ruleset is None:
        raise UnreadableTrial(
            "no external_tuning/ or self_tuning/ folder above it: say which with --ruleset"
        )
    return Trial(
        path=path,
        relative=relative,
        ruleset=named[-1] if named else str(ruleset),
        submission=parts[-4],
        study=int(study.group(1)),
        workload=workload.group("workload"),
        framework=workload.group("framework"),
        trial=int(trial.group(1)),
    )


# -- one trial -----------------------------------------------------------------------------------
def _number(text: str) -> float:
    try:
        return float(text) if text.strip() else math.nan
    except ValueError:
        raise UnreadableTrial(f"non-numeric value {text!r}") from None


@dataclass
class Measurements:
    """What a record needs from one eval_measurements.csv: its columns at the evaluation that
    met the target and at the last one."""

    n_evaluations: int
    reached_at: int | None  # the evaluation (row) that first met the target
    rows: dict[int, dict[str, float]]  # row -> {column: value}, for reached_at and the last row

    def at(self, column: str, row: int) -> float:
        return self.rows[row].get(column, math.nan)

    def last(self, column: str) -> float:
        return self.at(column, self.n_evaluations - 1)


def read_measurements(text: str, target: WorkloadTarget) -> Measurements:
    """Parse one eval_measurements.csv and find the first evaluation that meets the target."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise UnreadableTrial("eval_measurements.csv has no evaluations")
    if not text.endswith("\n"):
        raise UnreadableTrial("eval_measurements.csv ends in an incomplete row (cut short?)")
    header = lines[0].split(",")
    wanted = ("global_step", TIME_COLUMN, target.metric)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise UnreadableTrial(f"eval_measurements.csv lacks the column(s) {', '.join(missing)}")
    rows = [line.split(",") for line in lines[1:]]
    for number, fields in enumerate(rows, start=2):
        if len(fields) != len(header):
            raise UnreadableTrial(
                f"line {number} of eval_measurements.csv has {len(fields)} fields"
            )
    position = header.index(target.metric)
    metric = [_number(fields[position]) for fields in rows]
    reached_at = None
    for row, value in enumerate(metric):  # NaN meets no target
        if value <= target.value if target.lower_is_better else value >= target.value:
            reached_at = row
            break
    columns = [*wanted, *(c for c in results.EVAL_COLUMNS if c in header and c not in wanted)]
    picked = {}
    for row in {len(rows) - 1, *(() if reached_at is None else (reached_at,))}:
        picked[row] = {c: _number(rows[row][header.index(c)]) for c in columns}
        if math.isnan(picked[row]["global_step"]) or math.isnan(picked[row][TIME_COLUMN]):
            raise UnreadableTrial(f"eval_measurements.csv has empty values on line {row + 2}")
    return Measurements(len(rows), reached_at, picked)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def make_record(
    trial: Trial,
    measurements: Measurements,
    benchmark: Benchmark,
    *,
    experiment: str,
    counts: tuple[int, int],
    hardware: str,
    sha256: str,
    hyperparameters: dict[str, Any],
    command: str,
) -> results.RunRecord:
    target = benchmark.workloads[trial.workload]
    final = _finite(measurements.last(target.metric))
    reached = measurements.reached_at
    if reached is not None:
        status = "reached"
    else:
        status = "not_reached" if final is not None else "diverged"
    num_studies, num_trials = counts

    def last(column: str, default: float = 0.0) -> float:
        value = _finite(measurements.last(column))
        return default if value is None else value

    return results.RunRecord(
        experiment_name=experiment,
        ruleset=results.RulesetSettings(
            name=trial.ruleset,
            tune=trial.ruleset == "external",
            budget_factor=None,
            num_studies=num_studies,
            num_trials=num_trials,
        ),
        submission=trial.submission,
        workload=trial.workload,
        study=trial.study,
        trial=trial.trial,
        seed=None,
        hyperparameters=hyperparameters,
        target=results.Target(target.metric, target.value, target.lower_is_better),
        workload_settings=benchmark.settings(trial.workload, trial.framework),
        status=status,
        time_to_target=None if reached is None else measurements.at(TIME_COLUMN, reached),
        steps_to_target=None if reached is None else int(measurements.at("global_step", reached)),
        final_validation_metric=final,
        global_step=int(last("global_step")),
        n_evaluations=measurements.n_evaluations,
        accumulated_submission_time=last(TIME_COLUMN),
        accumulated_eval_time=last("accumulated_eval_time"),
        accumulated_logging_time=last("accumulated_logging_time"),
        preemption_count=int(last("preemption_count")),
        hardware=hardware,
        command=command,
        source={"format": SOURCE_FORMAT, "path": trial.relative, "sha256": sha256},
    )


def _hyperparameters(trial: Trial) -> dict[str, Any]:
    """AlgoPerf writes hparams.json beside the measurements of an external-tuning trial."""
    path = trial.path.parent / "hparams.json"
    if not path.exists():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnreadableTrial(f"hparams.json cannot be read: {error}") from error
    return values if isinstance(values, dict) else {"hparams": values}


# -- the import ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    imported: list[str]
    unchanged: list[str]
    unreadable: list[tuple[str, str]]
    conflicts: list[tuple[str, str]]
    runs_root: Path
    submissions: dict[str, set[str]]  # ruleset -> submissions imported


def _counts(trials: Sequence[Trial]) -> dict[str, tuple[int, int]]:
    """Per ruleset: the most studies any (submission, workload) has and the most trials any
    study has, which the records state as the ruleset's num_studies and num_trials."""
    studies: dict[tuple, set[int]] = defaultdict(set)
    members: Counter = Counter()
    for t in trials:
        studies[(t.ruleset, t.submission, t.workload)].add(t.study)
        members[(t.ruleset, t.submission, t.workload, t.study)] += 1
    counts: dict[str, tuple[int, int]] = {}
    for ruleset in {t.ruleset for t in trials}:
        most_studies = max(len(v) for k, v in studies.items() if k[0] == ruleset)
        most_trials = max(n for k, n in members.items() if k[0] == ruleset)
        counts[ruleset] = (most_studies, most_trials)
    return counts


class _Progress:
    """A bar on a terminal; elsewhere a line every PROGRESS_SECONDS."""

    def __init__(self, total: int):
        self.total, self.done, self.next_line = total, 0, time.monotonic() + PROGRESS_SECONDS
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="trial", desc="importing", file=sys.stderr)

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif time.monotonic() >= self.next_line:
            print(f"imported {self.done}/{self.total} trials", file=sys.stderr, flush=True)
            self.next_line = time.monotonic() + PROGRESS_SECONDS

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def import_logs(
    logs: Path,
    out: Path,
    benchmark: Benchmark,
    *,
    ruleset: str | None = None,
    experiment: str | None = None,
    hardware: str | None = None,
    command: str = "",
) -> Outcome:
    """Write one run folder per AlgoPerf trial under OUT/<experiment>; see the module doc."""
    experiment = experiment or f"algoperf_v{benchmark.version}"
    hardware = hardware or f"AlgoPerf v{benchmark.version} logs"
    trials, unreadable = find_trials(logs, ruleset)
    no_target = [t for t in trials if t.workload not in benchmark.workloads]
    unreadable += [
        (t.relative, f"the targets file has no workload {t.workload!r}") for t in no_target
    ]
    trials = [t for t in trials if t.workload in benchmark.workloads]
    trials, duplicates = _one_per_folder(trials)
    unreadable += duplicates
    counts = _counts(trials) if trials else {}
    outcome = Outcome([], [], unreadable, [], out / experiment, defaultdict(set))
    progress = _Progress(len(trials))
    try:
        for trial in trials:
            _import_one(trial, out, benchmark, experiment, counts, hardware, command, outcome)
            progress.step()
    finally:
        progress.close()
    return outcome


def _one_per_folder(trials: list[Trial]) -> tuple[list[Trial], list[tuple[str, str]]]:
    """Two trials that would land in one run folder (the same trial logged by both frameworks):
    the first by path is imported, the other listed."""
    seen: dict[tuple, Trial] = {}
    kept, dropped = [], []
    for trial in trials:
        key = (trial.ruleset, trial.submission, trial.workload, trial.study, trial.trial)
        if key in seen:
            dropped.append(
                (trial.relative, f"the same trial as {seen[key].relative}; not imported")
            )
            continue
        seen[key] = trial
        kept.append(trial)
    return kept, dropped


def _import_one(
    trial: Trial,
    out: Path,
    benchmark: Benchmark,
    experiment: str,
    counts: dict[str, tuple[int, int]],
    hardware: str,
    command: str,
    outcome: Outcome,
) -> None:
    try:
        data = trial.path.read_bytes()
        text = data.decode("utf-8")
        measurements = read_measurements(text, benchmark.workloads[trial.workload])
        hyperparameters = _hyperparameters(trial)
    except (OSError, UnicodeDecodeError) as error:
        outcome.unreadable.append((trial.relative, f"cannot be read: {error}"))
        return
    except UnreadableTrial as error:
        outcome.unreadable.append((trial.relative, str(error)))
        return
    sha256 = hashlib.sha256(data).hexdigest()
    record = make_record(
        trial,
        measurements,
        benchmark,
        experiment=experiment,
        counts=counts[trial.ruleset],
        hardware=hardware,
        sha256=sha256,
        hyperparameters=hyperparameters,
        command=command,
    )
    folder = out / record.relative_dir()
    name = record.relative_dir().as_posix()
    if (folder / results.RECORD_FILE).exists() or (folder / results.EVAL_FILE).exists():
        existing = results.read_record(folder)
        source = (existing.source or {}) if existing else {}
        if source.get("sha256") == sha256:
            outcome.unchanged.append(name)
        else:
            why = "a run of ours" if existing and not source else "a different import"
            outcome.conflicts.append((name, f"holds {why}; left as it is"))
        return
    # Not flushed to disk one by one (the logs can be imported again): 2x faster on many files.
    results.write_text(folder / results.EVAL_FILE, text, durable=False)
    results.write_record(folder, record, durable=False)  # last: no record, no run
    outcome.imported.append(name)
    outcome.submissions[trial.ruleset].add(trial.submission)


# -- command line --------------------------------------------------------------------------------
def _list(title: str, items: Sequence[tuple[str, str]], limit: int = 20) -> None:
    if not items:
        return
    print(f"{title} ({len(items)}):", file=sys.stderr)
    for path, reason in items[:limit]:
        print(f"  {path}: {reason}", file=sys.stderr)
    if len(items) > limit:
        print(f"  ... and {len(items) - limit} more", file=sys.stderr)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.algoperf",
        description="Work with MLCommons AlgoPerf's logs (see docs/algoperf.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser(
        "import",
        help="turn AlgoPerf trial logs into run folders that python -m harness.report scores",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    imp.add_argument("logs", type=Path, help="AlgoPerf's logs folder (holding *_tuning/ folders)")
    imp.add_argument("out", type=Path, help="results folder to write the runs into")
    imp.add_argument(
        "--targets", type=Path, required=True, help="AlgoPerf's workload_targets_*.json"
    )
    imp.add_argument(
        "--held-out",
        type=Path,
        help="AlgoPerf's held_out_workloads_*.json (default: the targets file's list)",
    )
    imp.add_argument(
        "--ruleset",
        choices=("external", "self"),
        help="the ruleset of logs not under external_tuning/ or self_tuning/",
    )
    imp.add_argument(
        "--experiment", help="experiment name of the imported runs (default: algoperf_v<version>)"
    )
    imp.add_argument(
        "--hardware",
        help="what the report says the runs ran on (default: 'AlgoPerf v<version> logs')",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not args.logs.is_dir():
        print(f"error: {args.logs} is not a folder: give AlgoPerf's logs folder", file=sys.stderr)
        return 2
    try:
        benchmark = read_targets(args.targets, args.held_out)
    except ImportProblem as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    outcome = import_logs(
        args.logs,
        args.out,
        benchmark,
        ruleset=args.ruleset,
        experiment=args.experiment,
        hardware=args.hardware,
        command=shlex.join(["python", "-m", "harness.algoperf", *argv]),
    )
    _list("not imported: unreadable or not in AlgoPerf's layout", outcome.unreadable)
    _list("not imported: the run folder is taken", outcome.conflicts)
    seconds = time.perf_counter() - started
    rulesets = "; ".join(
        f"{ruleset}: {len(names)} submission(s)"
        for ruleset, names in sorted(outcome.submissions.items())
    )
    print(
        f"imported {len(outcome.imported)} trial(s) into {results.display_path(outcome.runs_root)}"
        + (f" ({rulesets})" if rulesets else "")
        + (f", {len(outcome.unchanged)} already there" if outcome.unchanged else "")
        + (f", {len(outcome.unreadable)} unreadable" if outcome.unreadable else "")
        + (f", {len(outcome.conflicts)} in the way" if outcome.conflicts else "")
        + f" in {seconds:.1f} s"
    )
    if not outcome.imported and not outcome.unchanged:
        print(
            f"error: no trial under {args.logs} could be imported (see above); AlgoPerf's layout "
            "is <ruleset>_tuning/<submission>/study_<k>/<workload>_<framework>/trial_<j>/"
            "eval_measurements.csv",
            file=sys.stderr,
        )
        return 1
    print(
        "score them the way AlgoPerf does: python -m harness.report "
        f"{shlex.quote(results.display_path(outcome.runs_root))} --algoperf"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
