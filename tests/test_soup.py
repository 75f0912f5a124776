"""Model soups of a study (python -m harness.soup): uniform and greedy, filed beside the trials
as runs the report reads; trial folders untouched; a second soup refused."""

from __future__ import annotations

import pytest
import torch

from harness import results, soup
from harness.report import load
from tests.helpers import TINY, default_run_dir, run_in_process

STUDY = [
    "workload=friedman",
    *TINY["friedman"],
    "ruleset=external",
    "study=1",
    "max_steps=30",
    "workload.eval_every_steps=15",
    "workload.target=0.0001",  # never reached: a soup's metric is compared, not its time
    "progress=none",
]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple:
    results_dir = tmp_path_factory.mktemp("soup") / "results"
    threads = torch.get_num_threads()
    try:
        for trial in range(3):
            run_in_process([*STUDY, f"trial={trial}", "keep_checkpoint=true"], results_dir)
    finally:
        torch.set_num_threads(threads)
    cell = default_run_dir(results_dir, study=1, ruleset="external").parent.parent
    return results_dir, cell


def test_uniform_and_greedy_soups_are_runs_beside_the_trials(study, capsys):
    results_dir, cell = study
    trial_files = {p: p.read_bytes() for p in cell.rglob("*") if p.is_file()}
    assert soup.main([str(cell), "--study", "1", "--device", "cpu"]) == 0
    trials = [
        results.load_record(default_run_dir(results_dir, study=1, trial=t, ruleset="external"))
        for t in range(3)
    ]
    runs = load.load(results_dir, use_cache=False).runs
    names = set(runs["submission"])
    assert {"adamw", "adamw+soup_uniform", "adamw+soup_greedy"} <= names
    for kind in ("uniform", "greedy"):
        folder = default_run_dir(results_dir, f"adamw+soup_{kind}", study=1, ruleset="external")
        record = results.load_record(folder)
        assert record.status == "not_reached" and record.n_evaluations == 1
        assert record.ruleset.num_trials == 1  # one soup per study: not a study missing trials
        assert record.accumulated_submission_time == pytest.approx(
            sum(t.accumulated_submission_time for t in trials)
        )
        assert record.global_step == 90 and record.hardware == trials[0].hardware
    uniform = results.load_record(
        default_run_dir(results_dir, "adamw+soup_uniform", study=1, ruleset="external")
    )
    assert uniform.hyperparameters["soup_trials"] == "0,1,2"
    greedy = results.load_record(
        default_run_dir(results_dir, "adamw+soup_greedy", study=1, ruleset="external")
    )
    best = min(trials, key=lambda r: r.final_validation_metric)
    assert greedy.hyperparameters["soup_trials"].split(",")[0] == str(best.trial)
    assert greedy.final_validation_metric <= best.final_validation_metric + 1e-12
    # The uniform soup's metric is that of the mean of the trials' final weights.
    checkpoints = [
        results.load_checkpoint(
            default_run_dir(results_dir, study=1, trial=t, ruleset="external")
            / results.CHECKPOINT_FILE
        )
        for t in range(3)
    ]
    models = [c["model"] for c in checkpoints]
    mean = {key: torch.stack([m[key] for m in models]).mean(0) for key in models[0]}
    evaluate = soup.Evaluator(
        default_run_dir(results_dir, study=1, ruleset="external"),
        trials[0].seed,
        torch.device("cpu"),
    )
    assert evaluate(mean, None)[evaluate.metric] == pytest.approx(uniform.final_validation_metric)
    assert {p: p.read_bytes() for p in trial_files} == trial_files, "a trial's file changed"

    assert soup.main([str(cell), "--study", "1", "--device", "cpu"]) == 2
    assert "already holds a soup" in capsys.readouterr().err


def test_a_study_without_final_weights_says_how_to_keep_them(study, tmp_path, capsys):
    _, cell = study
    assert soup.main([str(cell), "--study", "7"]) == 2
    assert "no runs of study 7" in capsys.readouterr().err
    run_in_process([*STUDY, "study=2", "trial=0"], tmp_path / "results")
    run_in_process([*STUDY, "study=2", "trial=1"], tmp_path / "results")
    folder = default_run_dir(tmp_path / "results", study=2, ruleset="external").parent.parent
    assert soup.main([str(folder), "--study", "2"]) == 2
    error = capsys.readouterr().err
    assert "keep_checkpoint=true" in error and "trial 0: no checkpoint.pt" in error
