"""Conformance suite: every submission YAML in conf/submission/, checked the same way (optax's
idea) by the checks of harness/conformance.py, which `python -m harness.check` runs on any
submission (a user's own too). A new YAML is covered without editing this file.
tests/test_contract.py already runs every submission through the full harness on each embedded
workload; this suite adds what a short run cannot see: checkpointed optimizer state, progress on
an ill-conditioned quadratic, the batch size, schedule swaps and search-space validation. Every
weight averaging in conf/submission/averaging/ is run on a few bases (AVERAGED_BASES) through
the checkpoint and the quadratic.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from hydra.utils import get_class

from harness import conformance
from harness.errors import UserError
from harness.launch import prepare
from tests.helpers import (
    CONF,
    EMBEDDED_WORKLOADS,
    TINY,
    build_submission,
    compose_config,
    group_choices,
    run_cli,
    run_in_process,
    submission_config,
)

SUBMISSIONS = group_choices("submission")
SCHEDULES = group_choices("submission/schedule")
# Every weight averaging but none, on base submissions of each kind: a torch.optim optimizer,
# schedule-free (its own train/eval swap inside ours) and an AlgoPerf file (five functions).
AVERAGING = [name for name in group_choices("submission/averaging") if name != "none"]
AVERAGED_BASES = ["adamw", "schedule_free_adamw", "algoperf"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models: a second intra-op thread only adds synchronisation (and, on a busy
    machine, waiting for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def builder(name: str, extra: tuple[str, ...] = ()) -> conformance.Builder:
    """The submission `name` as a run builds it, with `extra` and the check's own overrides
    (harness.conformance)."""

    def build(overrides: list[str]) -> conformance.Built:
        overrides = [*extra, *overrides]
        submission, hyperparameters = build_submission(name, overrides)
        return conformance.Built(
            submission, hyperparameters, submission_config(name, tuple(overrides))
        )

    return build


def check(function, *args) -> None:
    """A check of harness/conformance.py; not applicable is a skip, a failure its sentence."""
    try:
        function(*args)
    except conformance.NotApplicable as reason:
        pytest.skip(str(reason))
    except conformance.Failure as failure:
        pytest.fail(str(failure), pytrace=False)


@pytest.mark.parametrize("workload_name", EMBEDDED_WORKLOADS)
@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_state_survives_a_checkpoint_and_the_next_steps_are_identical(
    submission_name, workload_name, tiny_workloads
):
    check(
        conformance.state_survives_a_checkpoint,
        builder(submission_name),
        tiny_workloads[workload_name],
    )


@pytest.mark.parametrize("averaging", AVERAGING)
@pytest.mark.parametrize("submission_name", AVERAGED_BASES)
def test_averaged_weights_survive_a_checkpoint_and_the_next_steps_are_identical(
    submission_name, averaging, tiny_workloads
):
    """The checkpoint is taken with the average in the model (after prepare_for_eval): the
    raw weights, the average and the optimizer state must all come back. A step hint of 16
    puts every rule to work before the checkpoint after 13 steps: SWA averages steps 12 and
    13, Switch EMA switches every 2 steps (last at step 12), LAWA's queue holds steps 9-13."""
    workload = copy.copy(tiny_workloads["friedman"])
    workload.step_hint = 16
    check(
        conformance.state_survives_a_checkpoint,
        builder(submission_name, (f"submission/averaging={averaging}",)),
        workload,
        13,
        True,
    )


@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_defaults_decrease_an_ill_conditioned_quadratic(submission_name, tmp_path):
    check(
        conformance.defaults_decrease_an_ill_conditioned_quadratic,
        builder(submission_name),
        tmp_path / "run",
    )


@pytest.mark.parametrize("averaging", AVERAGING)
@pytest.mark.parametrize("submission_name", AVERAGED_BASES)
def test_averaged_defaults_decrease_an_ill_conditioned_quadratic(
    submission_name, averaging, tmp_path
):
    """Evaluated at the average (prepare_for_eval), with the averaging's default settings."""
    check(
        conformance.defaults_decrease_an_ill_conditioned_quadratic,
        builder(submission_name, (f"submission/averaging={averaging}",)),
        tmp_path / "run",
    )


@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_update_params_sees_the_batch_size_from_get_batch_size(
    submission_name, monkeypatch, results_dir
):
    """Through launch, which asks get_batch_size; 24 is nobody's default."""
    overrides = [
        f"submission={submission_name}",
        "submission.batch_size=24",
        "workload=friedman",
        *TINY["friedman"],
        "max_steps=2",
        "progress=none",
        "checkpoint=false",
    ]
    cls = get_class(compose_config(overrides, results_dir).submission._target_)
    seen: list[int] = []
    original_update_params = cls.update_params

    def spy(self, workload, params, types, model_state, hp, batch, *args, **kwargs):
        seen.append(batch["inputs"].shape[0])
        assert self.get_batch_size(workload.name) == 24
        return original_update_params(
            self, workload, params, types, model_state, hp, batch, *args, **kwargs
        )

    monkeypatch.setattr(cls, "update_params", spy)
    record = run_in_process(overrides, results_dir)
    assert record.status != "failed", record.error
    assert seen == [24, 24] and record.batch_size == 24


@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_the_step_follows_the_scheduled_learning_rate(submission_name):
    check(conformance.step_follows_the_scheduled_learning_rate, builder(submission_name))


WEIGHT_DECAY = [(s, key) for s in SUBMISSIONS for key in conformance.weight_decay_keys(builder(s))]


@pytest.mark.parametrize("submission_name, key", WEIGHT_DECAY)
def test_weight_decay_shrinks_the_weights(submission_name, key):
    check(conformance.weight_decay_shrinks_the_weights, builder(submission_name), key)


@pytest.mark.parametrize("schedule_name", SCHEDULES)
@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_every_schedule_can_replace_the_default(submission_name, schedule_name):
    check(conformance.schedule_can_replace_the_default, builder(submission_name), schedule_name)


@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_every_submission_declares_its_schedule_batch_size_and_search_space(submission_name):
    text = (CONF / "submission" / f"{submission_name}.yaml").read_text()
    check(
        conformance.declares_schedule_batch_size_and_search_space,
        builder(submission_name),
        text,
    )


@pytest.mark.parametrize(
    "override, expected",
    [
        ("submission.search_space.learning_rate.scaling=cubic", "scaling 'cubic'"),
        ("submission.search_space.learning_rate=0.1", "must be a mapping"),
        ("submission.search_space.momentum.feasible_points=[0.9,fast]", "holds 'fast'"),
        ("++submission.search_space.no_such_key={min:1,max:2,scaling:log}", "'no_such_key'"),
    ],
)
def test_malformed_search_space_names_submission_key_and_valid_forms(
    override, expected, results_dir
):
    with pytest.raises(UserError) as error:
        prepare(compose_config(["submission=muon", "ruleset=external", override], results_dir))
    message = str(error.value)
    assert expected in message
    assert "submission muon" in message and "search space entry" in message
    assert "{min: <number>, max: <number>, scaling: log|linear}" in message
    assert "feasible_points" in message


def test_a_search_space_may_list_points(results_dir):
    """AlgoPerf's newer format: trial j runs point j; its values are checked like ranges."""
    points = "[{learning_rate:0.001},{learning_rate:0.002,weight_decay:0.5}]"
    swap = ["submission=adamw", "~submission.search_space", f"+submission.search_space={points}"]
    _, _, hyperparameters = prepare(
        compose_config([*swap, "ruleset=external", "trial=1"], results_dir)
    )
    assert hyperparameters["learning_rate"] == 0.002 and hyperparameters["weight_decay"] == 0.5
    bad = [*swap[:2], "+submission.search_space=[{learning_rate:0.001},{learning_rate:fast}]"]
    with pytest.raises(UserError, match="submission adamw: search space point 1 holds 'fast'"):
        prepare(compose_config(bad, results_dir))


@pytest.mark.slow
def test_malformed_search_space_is_one_paragraph_on_the_command_line(tmp_path):
    result = run_cli(
        ["submission=sophia", "submission.search_space.rho.scaling=cubic", "max_steps=1"],
        tmp_path,
    )
    assert result.returncode == 2
    assert "submission sophia: search space entry 'rho'" in result.stderr
    assert "Valid forms" in result.stderr and "Traceback" not in result.stderr
