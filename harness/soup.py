"""`python -m harness.soup RESULTS/<experiment>/<ruleset>/<submission>/<workload> --study K`:
model soups (Wortsman et al., 2022, arXiv:2203.05482) of a study's trials.

The final weights of the study's finished trials (their `checkpoint.pt`, kept with
`keep_checkpoint=true`: the weights of the last evaluation, averaged ones under
`submission/averaging`) are averaged uniformly, and greedily (in order of the trials' final
validation metric, a trial joins when the soup's validation metric gets no worse), evaluated on
the workload and written as runs of their own, `<submission>+soup_uniform` and
`<submission>+soup_greedy`, study K, trial 0, beside the trials, so that `python -m
harness.report` shows them as submissions. A soup costs every trial it was made from: its
submission time and steps are the trials' sums, its budget the trials' budgets summed. Never
writes into a trial's folder, and never over an existing soup.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from harness import environment, launch, results
from harness.errors import UserError
from harness.spec import Workload

KINDS = ("uniform", "greedy")
SOUP_MARK = "+soup_"


@dataclass
class Ingredient:
    run_dir: Path
    record: results.RunRecord
    weights: dict[str, torch.Tensor]
    model_state: Any


def study_trials(folder: Path, study: int) -> list[tuple[Path, results.RunRecord]]:
    """The finished trials of study `study` under `folder`, all of one submission on one
    workload (soups excluded)."""
    found = []
    for run_dir in results.find_run_dirs(folder):
        record = results.read_record(run_dir)
        if record is None or record.study != study or SOUP_MARK in record.submission:
            continue
        found.append((run_dir, record))
    cells = {(r.experiment_name, r.ruleset.name, r.submission, r.workload) for _, r in found}
    if not found:
        raise UserError(
            f"no runs of study {study} under {folder}: give the folder of one submission on one "
            "workload (RESULTS/<experiment>/<ruleset>/<submission>/<workload>) and a study "
            "that has run"
        )
    if len(cells) > 1:
        shown = ", ".join("/".join(cell) for cell in sorted(cells))
        raise UserError(
            f"{folder} holds study {study} of several submissions or workloads ({shown}); give "
            "the folder of one: RESULTS/<experiment>/<ruleset>/<submission>/<workload>"
        )
    return sorted(found, key=lambda item: item[1].trial)


def load_ingredients(
    trials: list[tuple[Path, results.RunRecord]],
) -> tuple[list[Ingredient], list[str]]:
    """The trials that can join a soup, and why each other one cannot."""
    ingredients, left_out = [], []
    for run_dir, record in trials:
        path = run_dir / results.CHECKPOINT_FILE
        if record.status not in ("reached", "not_reached"):
            left_out.append(f"trial {record.trial}: {record.status}")
        elif not path.exists():
            left_out.append(f"trial {record.trial}: no {results.CHECKPOINT_FILE}")
        else:
            checkpoint = results.load_checkpoint(path)
            if checkpoint.get("fingerprint") != record.fingerprint:
                left_out.append(f"trial {record.trial}: its checkpoint is of other settings")
            else:
                weights, state = checkpoint["model"], checkpoint.get("model_state")
                ingredients.append(Ingredient(run_dir, record, weights, state))
    return ingredients, left_out


def average(weights: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of every floating-point tensor; others (batch counts) from the first."""
    soup = {}
    for key, first in weights[0].items():
        if first.is_floating_point():
            soup[key] = torch.stack([w[key].double() for w in weights]).mean(0).to(first.dtype)
        else:
            soup[key] = first.clone()
    return soup


class Evaluator:
    """The workload of the trials, built from a trial's config.yaml, set up once."""

    def __init__(self, run_dir: Path, seed: int, device: torch.device) -> None:
        cfg = OmegaConf.load(run_dir / results.CONFIG_FILE)
        self.workload: Workload = launch.build(cfg.workload, "workload")
        self.workload.setup(device)
        self.model, _ = self.workload.init_model_fn(rng=seed)
        self.seed = seed
        self.metric = f"validation/{self.workload.target_metric_name}"
        self.lower = self.workload.target_metric_lower_is_better

    def __call__(self, weights: dict[str, torch.Tensor], model_state: Any) -> dict[str, float]:
        self.model.load_state_dict(weights)
        return self.workload.eval_model(self.model, model_state, rng=self.seed)

    def better_or_equal(self, new: float, old: float) -> bool:
        if not math.isfinite(new):
            return False
        return new <= old if self.lower else new >= old


def greedy(
    ingredients: list[Ingredient], evaluate: Evaluator
) -> tuple[list[Ingredient], dict[str, float]]:
    """Best trial first; each next one joins when the soup's validation metric gets no worse."""
    sign = 1.0 if evaluate.lower else -1.0
    ranked = sorted(
        ingredients,
        key=lambda i: (
            sign * _value(i.record.final_validation_metric, evaluate.lower),
            i.record.trial,
        ),
    )
    soup = [ranked[0]]
    metrics = evaluate(ranked[0].weights, ranked[0].model_state)
    for candidate in ranked[1:]:
        trial_soup = [*soup, candidate]
        trial_metrics = evaluate(average([i.weights for i in trial_soup]), soup[0].model_state)
        if evaluate.better_or_equal(trial_metrics[evaluate.metric], metrics[evaluate.metric]):
            soup, metrics = trial_soup, trial_metrics
    return soup, metrics


def _value(metric: float | None, lower_is_better: bool) -> float:
    if metric is None or not math.isfinite(metric):
        return math.inf if lower_is_better else -math.inf
    return metric


def soup_record(
    kind: str,
    members: list[Ingredient],
    trials: list[Ingredient],
    metrics: dict[str, float],
    eval_seconds: float,
    evaluate: Evaluator,
    command: str,
) -> tuple[results.RunRecord, dict[str, Any]]:
    """The soup's record and its one evaluation row. It costs every trial that was trained to
    make it (`trials`): the sums of their submission times, steps and budgets."""
    best = members[0].record
    seconds = sum(i.record.accumulated_submission_time for i in trials)
    steps = sum(i.record.global_step for i in trials)
    budget = sum(i.record.budget_sec or 0.0 for i in trials)
    value = metrics[evaluate.metric]
    reached = evaluate.workload.has_reached_validation_target(metrics) and seconds <= budget
    row = {
        "global_step": steps,
        "accumulated_submission_time": seconds,
        "accumulated_eval_time": eval_seconds,
        "accumulated_logging_time": 0.0,
        "preemption_count": 0,
        "speed_index": math.nan,
        "cpu_other_share": math.nan,
        "cpu_steal_share": math.nan,
        **metrics,
    }
    disturbed = [i.record.trial for i in trials if i.record.disturbed]
    record = results.RunRecord(
        experiment_name=best.experiment_name,
        # One soup per study: the report must not count it as a study missing trials.
        ruleset=dataclasses.replace(best.ruleset, num_trials=1),
        submission=f"{best.submission}{SOUP_MARK}{kind}",
        workload=best.workload,
        study=best.study,
        trial=0,
        seed=best.seed,
        hyperparameters={
            "soup": kind,
            "soup_trials": ",".join(str(i.record.trial) for i in members),
            "trained_trials": ",".join(str(i.record.trial) for i in trials),
        },
        target=best.target,
        budget_sec=budget,
        base_budget_sec=budget,
        batch_size=best.batch_size,
        workload_settings=best.workload_settings,
        status="reached" if reached else "not_reached",
        time_to_target=seconds if reached else None,
        steps_to_target=steps if reached else None,
        time_to_target_resolution=0.0 if reached else None,
        final_validation_metric=value,
        global_step=steps,
        n_evaluations=1,
        accumulated_submission_time=seconds,
        accumulated_eval_time=eval_seconds,
        disturbed=bool(disturbed),
        disturbed_reason=f"trials {disturbed} were disturbed" if disturbed else None,
        hardware=best.hardware,
        device=best.device,
        host=best.host,
        started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        command=command,
        git_commit=environment.git_commit(),
        packages=best.packages,
    )
    return record, row


def results_root(run_dir: Path, record: results.RunRecord) -> Path:
    """The results folder that holds `run_dir` (its record's layout, removed)."""
    depth = len(record.relative_dir().parts)
    return run_dir.parents[depth - 1]


def soup_dir(root: Path, trial: results.RunRecord, kind: str) -> Path:
    """Where the soup of `trial`'s study is filed; refused if a soup is there already."""
    name = f"{trial.submission}{SOUP_MARK}{kind}"
    folder = results.run_dir(
        root, trial.experiment_name, trial.ruleset.name, name, trial.workload, trial.study, 0
    )
    if folder.exists() and any(folder.iterdir()):
        raise UserError(
            f"{results.display_path(folder)} already holds a soup; a finished result is never "
            "overwritten. Move that folder away (or delete it) to make the soup again."
        )
    return folder


def make_soups(
    folder: Path, study: int, kinds: Sequence[str], device: str, command: str
) -> list[tuple[results.RunRecord, Path]]:
    trials = study_trials(folder, study)
    ingredients, left_out = load_ingredients(trials)
    for reason in left_out:
        print(f"left out: {reason}", file=sys.stderr)
    if len(ingredients) < 2:
        raise UserError(
            f"study {study} under {folder} has {len(ingredients)} trial(s) with final weights; a "
            "soup needs at least two. Run the trials with keep_checkpoint=true (their "
            "checkpoint.pt then holds the final weights), e.g. python run.py -m "
            "ruleset=external keep_checkpoint=true ... 'trial=range(5)'"
            + (f" ({'; '.join(left_out)})" if left_out else "")
        )
    best = ingredients[0]
    root = results_root(best.run_dir, best.record)
    folders = {kind: soup_dir(root, best.record, kind) for kind in kinds}  # refuse before work
    evaluate = Evaluator(best.run_dir, best.record.seed or 0, environment.resolve_device(device))
    made = []
    for kind in kinds:
        start = time.perf_counter()
        if kind == "uniform":
            members = ingredients
            metrics = evaluate(average([i.weights for i in members]), best.model_state)
        else:
            members, metrics = greedy(ingredients, evaluate)
        seconds = time.perf_counter() - start
        record, row = soup_record(kind, members, ingredients, metrics, seconds, evaluate, command)
        results.write_eval_measurements(folders[kind] / results.EVAL_FILE, [row])
        results.write_record(folders[kind], record)
        made.append((record, folders[kind]))
    return made


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.soup",
        description="Uniform and greedy model soups of a study's trials, written as runs.",
    )
    parser.add_argument(
        "folder", type=Path, help="RESULTS/<experiment>/<ruleset>/<submission>/<workload>"
    )
    parser.add_argument("--study", type=int, required=True, help="the study whose trials to mix")
    parser.add_argument(
        "--kind", choices=[*KINDS, "both"], default="both", help="which soup (default: both)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA if available) | cpu | cuda")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = KINDS if args.kind == "both" else (args.kind,)
    command = " ".join(["python -m harness.soup", *(sys.argv[1:] if argv is None else argv)])
    try:
        made = make_soups(args.folder, args.study, kinds, args.device, command)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for record, folder in made:
        print(
            f"{record.submission}: {record.target.metric if record.target else 'metric'} "
            f"{record.final_validation_metric:.4f}, {record.status}, trials "
            f"{record.hyperparameters['soup_trials']} | {results.display_path(folder)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
