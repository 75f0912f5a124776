"""Workload x submission pairs run a few steps through the real config and leaves a
complete, well-formed results folder. New YAMLs are covered without editing this file."""

from __future__ import annotations

import math

import pytest
import torch

from harness import results
from harness.launch import build
from harness.spec import ForwardPassMode, LossType
from tests.helpers import (
    EMBEDDED_WORKLOADS,
    SMOKE,
    compose_config,
    group_choices,
    read_csv,
    run_dir_of,
    run_in_process,
)

# Every workload with the reference submission, and every submission on the embedded workloads.
# The second set is `slow` (66 runs through the whole harness): the conformance suite runs every
# submission on the same workloads, made tiny, in the fast subset.
PAIRS = [
    pytest.param(w, s, marks=[] if s == "adamw" else [pytest.mark.slow])
    for w, s in sorted(
        {(workload, "adamw") for workload in group_choices("workload")}
        | {(w, s) for w in EMBEDDED_WORKLOADS for s in group_choices("submission")}
    )
]


# Evaluation dominates a 6-step run; a smaller evaluation set keeps every submission x every
# embedded workload affordable (the full set is exercised by the runs with adamw elsewhere).
CHEAP_EVALUATION = {"shakespeare": ["workload.eval_tokens=8192"]}


@pytest.mark.parametrize("workload, submission", PAIRS)
def test_short_run_writes_complete_results(workload, submission, results_dir):
    record = run_in_process(
        [
            f"workload={workload}",
            f"submission={submission}",
            *SMOKE,
            *CHEAP_EVALUATION.get(workload, []),
        ],
        results_dir,
    )
    assert record.status in results.DONE_STATUSES, record.error
    assert record.global_step == 6
    run_dir = run_dir_of(record, results_dir)
    rows = read_csv(run_dir / results.EVAL_FILE)
    assert [int(row["global_step"]) for row in rows] == [3, 6]
    metric = record.target.metric
    for row in rows:
        assert math.isfinite(float(row[metric])), (
            f"{metric} is not finite at step {row['global_step']}"
        )
    assert (run_dir / results.CONFIG_FILE).exists()
    assert (run_dir / results.HPARAMS_FILE).exists()


@pytest.mark.parametrize("workload", group_choices("workload"))
def test_workload_follows_the_contract(workload, results_dir):
    built = build(compose_config([f"workload={workload}"], results_dir).workload, "workload")
    built.setup(torch.device("cpu"))
    model, model_state = built.init_model_fn(rng=0)
    assert built.num_train_examples > 0 and built.num_validation_examples > 0
    batch_size = 8
    queue = built.build_input_queue(seed=0, split="train", global_batch_size=batch_size)
    batch = next(queue)
    assert {"inputs", "targets"} <= set(batch)
    assert batch["targets"].shape[0] == batch_size

    logits, _ = built.model_fn(model, batch, model_state, ForwardPassMode.TRAIN, 0, True)
    loss = built.loss_fn(batch["targets"], logits)
    assert set(loss) == {"summed", "n_valid_examples", "per_example"}
    assert loss["summed"].ndim == 0 and torch.isfinite(loss["summed"])
    assert torch.allclose(loss["per_example"].sum(), loss["summed"])
    mask = torch.zeros(batch["targets"].shape)
    mask[0] = 1.0
    masked = built.loss_fn(batch["targets"], logits, mask)
    assert float(masked["n_valid_examples"]) == mask.sum()
    assert built.loss_type in LossType

    types = built.model_params_types(model)
    assert set(types) == {name for name, _ in model.named_parameters()}

    # The batch of step s depends only on (seed, s): the data position of a resumed run.
    resumed = next(
        built.build_input_queue(seed=0, split="train", global_batch_size=8, start_step=5)
    )
    for _ in range(4):
        next(queue)
    fifth = next(queue)
    assert all(torch.equal(fifth[key], resumed[key]) for key in fifth)


@pytest.mark.parametrize(
    "workload",
    [  # a full evaluation of the character model takes seconds on a CPU
        pytest.param(w, marks=[pytest.mark.slow] if w == "shakespeare" else [])
        for w in group_choices("workload")
    ],
)
def test_eval_reports_train_and_validation_metrics(workload, results_dir):
    built = build(compose_config([f"workload={workload}"], results_dir).workload, "workload")
    built.setup(torch.device("cpu"))
    model, model_state = built.init_model_fn(rng=0)
    metrics = built.eval_model(model, model_state, rng=0)
    target = f"validation/{built.target_metric_name}"
    assert target in metrics and "train/loss" in metrics and "validation/loss" in metrics
    assert metrics == built.eval_model(model, model_state, rng=1), (
        "evaluation must be deterministic"
    )
    # The target is met exactly at its value and missed just beyond it, in either direction.
    value = built.validation_target_value
    beyond = 1e-6 * max(1.0, abs(value))
    worse = value + beyond if built.target_metric_lower_is_better else value - beyond
    assert built.has_reached_validation_target({**metrics, target: value}) is True
    assert built.has_reached_validation_target({**metrics, target: worse}) is False
