"""What may be scored together: several results folders and experiments pooled into one
leaderboard, copies of a run counted once, and pools refused when targets, budgets or trials clash.

Decides and explains (PoolingError is one paragraph for the user); never scores and never
writes. A "sweep" is one experiment in one results folder: the unit that is pooled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.report import load

# What makes two rows one run: a copy of a run folder (another results folder, or the same
# experiment copied) has every one of these equal; two different runs never do in practice.
IDENTITY = (
    "experiment_name",
    "ruleset",
    "submission",
    "workload",
    "study",
    "trial",
    "seed",
    "status",
    "hardware",
    "host",
    "started_at",
    "git_commit",
    "hyperparameters",
    "time_to_target",
    "steps_to_target",
    "global_step",
    "final_validation_metric",
    "n_evaluations",
)
SLOT = ["submission", "workload", "study", "trial"]
MIXES = ("targets", "budgets")  # what the user may ask to pool anyway (--mix-targets, ...)
EXAMPLES = 3  # clashing runs named in one error


def split_groups(
    runs: pd.DataFrame, mix_hardware: bool, by_experiment: bool = False
) -> list[tuple[dict[str, str], pd.DataFrame]]:
    """(what the leaderboard is, its runs): one per ruleset (different games are never pooled)
    and hardware (unless mix_hardware), and per experiment only with by_experiment; otherwise
    the experiments and folders of a ruleset pool (pooling.check says whether they may)."""
    keys = (["experiment_name"] if by_experiment else []) + ["ruleset"]
    keys += [] if mix_hardware else ["hardware"]
    return [
        (dict(zip(keys, map(str, values), strict=True)), group)
        for values, group in runs.groupby(keys, sort=True)
    ]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def group_names(keys: list[dict[str, str]]) -> list[str]:
    """A short readable name per leaderboard from what tells them apart (the ruleset, the
    hardware, the experiment), for section titles and file suffixes; '' when there is one."""
    if len(keys) < 2:
        return [""] * len(keys)
    varying = [k for k in keys[0] if len({key[k] for key in keys}) > 1]
    names = [slug("-".join(key[k] for k in varying)) for key in keys]
    if len(set(names)) < len(names):  # two fingerprints that differ only in punctuation
        names = [f"{name}-{i}" for i, name in enumerate(names, start=1)]
    return names


class PoolingError(Exception):
    """Runs that must not be scored together; the message says which, why and what to do."""


def combine(loaded: Sequence[tuple[Path, load.Results]]) -> load.Results:
    """One Results from several folders: run ids get their folder in front (two folders may hold
    the same relative paths), and the column `source` names the folder of each run."""
    if len(loaded) == 1:
        folder, only = loaded[0]
        return load.Results(
            only.root,
            only.runs.assign(source=folder.as_posix()),
            only.evaluations,
            only.skipped,
            only.warnings,
        )
    runs, evaluations, skipped, warnings = [], [], [], []
    for folder, results in loaded:
        prefix = folder.as_posix().rstrip("/") + "/"
        runs.append(
            results.runs.assign(run_id=prefix + results.runs["run_id"], source=folder.as_posix())
        )
        ids = pd.Categorical(results.evaluations["run_id"])
        renamed = [prefix + str(run_id) for run_id in ids.categories]
        evaluations.append(results.evaluations.assign(run_id=ids.rename_categories(renamed)))
        skipped += [(prefix + run_id, reason) for run_id, reason in results.skipped]
        warnings += [f"{folder.as_posix()}: {message}" for message in results.warnings]
    joined = pd.concat(runs, ignore_index=True).sort_values("run_id", ignore_index=True)
    return load.Results(Path("."), joined, load.concat_evaluations(evaluations), skipped, warnings)


def check_folders(folders: Sequence[Path]) -> None:
    """The same folder twice (or one inside another) would count its runs twice."""
    resolved = [folder.resolve() for folder in folders]
    for i, a in enumerate(resolved):
        for j, b in enumerate(resolved):
            if i != j and (a == b or b in a.parents):
                raise PoolingError(
                    f"{folders[i]} and {folders[j]} are the same folder or one holds the other; "
                    "its runs would be counted twice. Give each results folder once."
                )


def drop_copies(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Runs present more than once (a run folder copied into another results folder or
    experiment) count once: the first by run id. Returns the runs and a note ('' when none)."""
    key = [c for c in IDENTITY if c in runs.columns]
    copies = runs.duplicated(key, keep="first")
    if not copies.any():
        return runs, ""
    kept = runs[~copies]
    originals = kept[[*key, "run_id"]].rename(columns={"run_id": "original"})
    named = runs[copies].merge(originals, on=key, how="left").head(EXAMPLES)
    pairs = [f"{row.run_id} (= {row.original})" for row in named.itertuples(index=False)]
    more = int(copies.sum()) - len(pairs)
    return kept.reset_index(drop=True), (
        f"{int(copies.sum())} run(s) are copies of another run (the same record) and count "
        "once: " + ", ".join(pairs) + (f" and {more} more" if more > 0 else "")
    )


def sweep_labels(runs: pd.DataFrame) -> pd.Series:
    """Per run: its sweep, the experiment and, when runs come from several folders, the folder."""
    several = runs["source"].nunique() > 1 if "source" in runs.columns else False
    if not several:
        return runs["experiment_name"].astype(str)
    return runs["experiment_name"].astype(str) + " (" + runs["source"].astype(str) + ")"


def sweeps_text(runs: pd.DataFrame) -> list[str]:
    """'experiment (folder): N runs' for each sweep of a leaderboard, in order."""
    counts = sweep_labels(runs).value_counts().sort_index()
    return [f"{label}: {count} runs" for label, count in counts.items()]


def check(runs: pd.DataFrame, mix: Sequence[str] = ()) -> None:
    """PoolingError when the sweeps of one leaderboard ran against different targets or budgets
    (unless `mix` names them) or hold different runs in the same trial slot."""
    sweeps = sweep_labels(runs)
    if sweeps.nunique() < 2:
        return
    runs = runs.assign(_sweep=sweeps)
    if "targets" not in mix:
        _check_setting(
            runs,
            ["target_metric", "target_value", "lower_is_better"],
            "targets",
            _target_text,
            "a time to one target says nothing about another",
            "--mix-targets pools them with the workload split into one column per target",
        )
    if "budgets" not in mix:
        for column, describe in (
            ("max_runtime_sec", lambda row: f"max runtime {row['max_runtime_sec']:g} s"),
            ("step_hint", lambda row: f"step hint {row['step_hint']:g}"),
        ):
            _check_setting(
                runs,
                [column],
                "budgets",
                describe,
                "a run with the shorter budget counts as a miss where the other could still "
                "reach the target, and schedules decay over the step hint",
                "--mix-budgets pools them anyway, each run scored within its own budget",
            )
    _check_slots(runs)


def _target_text(row: pd.Series) -> str:
    sign = "≤" if row["lower_is_better"] else "≥"
    return f"target {row['target_metric']} {sign} {row['target_value']:g}"


def _check_setting(runs, columns, what, describe, why, remedy) -> None:
    """Per workload, the sweeps' sets of values of `columns` must be the same; a run that did
    not record them (older records, imports) matches anything."""
    for workload, group in runs.groupby("workload", sort=True):
        per_sweep = {}
        for sweep, rows in group.groupby("_sweep", sort=True):
            known = rows.dropna(subset=columns).drop_duplicates(columns)
            if len(known):
                values = frozenset(known[columns].itertuples(index=False, name=None))
                per_sweep[sweep] = (values, known.iloc[0])
        if len({values for values, _ in per_sweep.values()}) < 2:
            continue
        examples = [
            f"{describe(row)} in sweep {sweep} (e.g. run {row['run_id']})"
            for sweep, (_, row) in per_sweep.items()
        ][:EXAMPLES]
        raise PoolingError(
            f"cannot pool these sweeps into one leaderboard: their {what} differ on workload "
            f"{workload}: " + "; ".join(examples) + f". They are different races ({why}). "
            "Report them separately (one folder at a time, or --by-experiment for one "
            f"leaderboard per experiment), or {remedy}."
        )


def _check_slots(runs: pd.DataFrame) -> None:
    """Two different runs in one (submission, workload, study, trial) slot from two sweeps: the
    study would pick the faster of two sweeps' trials. Copies were dropped before."""
    clash = runs[runs.duplicated(SLOT, keep=False)]
    if clash.empty:
        return
    per_slot = clash.groupby(SLOT, sort=True)["_sweep"].nunique()
    across = per_slot[per_slot > 1]
    if across.empty:  # reruns inside one sweep: the audit lists them
        return
    lines = []
    for slot in across.index[:EXAMPLES]:
        rows = clash[(clash[SLOT] == pd.Series(slot, index=SLOT)).all(axis=1)]
        submission, workload, study, trial = slot
        lines.append(
            f"{submission} on {workload}, study {study}, trial {trial}: "
            + " and ".join(f"{r.run_id}" for r in rows.itertuples())
        )
    more = len(across) - len(lines)
    raise PoolingError(
        f"cannot pool these sweeps into one leaderboard: {len(across)} trial(s) were run in more "
        "than one sweep with different results (not copies), so a study would take the faster "
        "of two sweeps' trials: "
        + "; ".join(lines)
        + (f"; and {more} more" if more > 0 else "")
        + ". Keep each submission's runs in one sweep (move the other sweep's copy of it out of "
        "the results folder), or report the sweeps separately (one folder at a time, or "
        "--by-experiment)."
    )
