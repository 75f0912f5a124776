"""Weight averaging (submissions/averaging.py): the fast rules against their slow reference,
training untouched by the average, a killed run resumed bitwise, tuning, and run folders.
The conformance suite (tests/test_conformance.py) runs every averaging on several bases."""

from __future__ import annotations

import copy
import itertools
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from harness import launch, preemption, results
from harness.errors import UserError
from submissions.averaging import EMA, LAWA, SWA, Averaging, reference_average, tracked
from tests.helpers import (
    CONF,
    TINY,
    Trainer,
    build_submission,
    compose_config,
    compose_with_hydra,
    group_choices,
    make_runner,
    read_csv,
)

AVERAGING = [name for name in group_choices("submission/averaging") if name != "none"]
TOTAL = 40


def weight_sequence(steps: int) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    generator = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (3,), (5,)]
    initial = [torch.randn(s, generator=generator) for s in shapes]
    walk, sequence = [w.clone() for w in initial], []
    for _ in range(steps):
        walk = [w + 0.1 * torch.randn(w.shape, generator=generator) for w in walk]
        sequence.append([w.clone() for w in walk])
    return initial, sequence


@pytest.mark.parametrize(
    "rule",
    [
        EMA(ema_decay=0.9),
        EMA(ema_decay=0.999),
        SWA(swa_start_fraction=0.5, swa_every=3),
        SWA(swa_start_fraction=2.0),  # never starts: the raw weights are evaluated
        LAWA(lawa_queue_length=4, lawa_every_fraction=0.1, lawa_start_fraction=0.25),
        LAWA(lawa_queue_length=50, lawa_every_fraction=0.01),
    ],
    ids=repr,
)
def test_the_fast_rule_matches_its_reference(rule: Averaging):
    initial, sequence = weight_sequence(TOTAL)
    state = rule.start([w.clone() for w in initial], TOTAL)
    for step, weights in enumerate(sequence):
        rule.update(state, [w.clone() for w in weights], step, TOTAL)
        expected = reference_average(rule, initial, sequence[: step + 1], TOTAL)
        actual = rule.average(state)
        if expected is None:
            assert actual is None, f"{rule} averaged before it should at step {step}"
            continue
        assert actual is not None, f"{rule} has no average at step {step}"
        for a, e in zip(actual, expected, strict=True):
            torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-6)


def test_switch_ema_copies_the_average_into_the_trained_weights():
    rule = EMA(ema_decay=0.9, ema_switch_every_fraction=0.25)  # every 10 of 40 steps
    assert [s for s in range(TOTAL) if rule.switches(s, TOTAL)] == [9, 19, 29, 39]
    assert not any(EMA().switches(s, TOTAL) for s in range(TOTAL))


class Tiny(nn.Module):
    """A linear layer and a batch norm: parameters and floating-point buffers are averaged,
    the integer batch count is not."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.norm = nn.Linear(4, 3), nn.BatchNorm1d(3)


def test_parameters_and_float_buffers_are_averaged():
    model = Tiny()
    names = [n for n, _ in model.named_parameters()] + ["norm.running_mean", "norm.running_var"]
    assert len(tracked(model)) == len(names) == 4 + 2


@pytest.mark.parametrize("averaging", AVERAGING)
def test_training_continues_from_the_raw_weights(averaging, tiny_workloads):
    """The same steps with and without averaging, evaluations in between: the trained (raw)
    weights are identical, until Switch EMA copies the average into them (then they are the
    average), and the evaluated ones are the average. A hint of 12: SWA starts at step 9."""
    workload = copy.copy(tiny_workloads["friedman"])
    workload.step_hint = 12
    batches = list(itertools.islice(workload.build_input_queue(0, "train", 8), 10))
    plain = Trainer(*build_submission("adamw", ["submission.batch_size=8"]), workload, rng=0)
    overrides = ["submission.batch_size=8", f"submission/averaging={averaging}"]
    averaged = Trainer(*build_submission("adamw", overrides), workload, rng=0)
    rule = averaged.submission.rule
    switched, evaluated_average = False, False
    for step, batch in enumerate(batches):
        plain.step(batch, step)
        averaged.step(batch, step)
        if rule.switches(step, workload.step_hint):
            switched = True
            average = rule.average(averaged.submission.state)
            assert all(
                torch.equal(w, a) for w, a in zip(tracked(averaged.model), average, strict=True)
            )
        if not switched:
            raw = averaged.parameters()
            assert all(torch.equal(raw[n], p) for n, p in plain.parameters().items()), step
        if step % 3 == 2:
            averaged.prepare_for_eval(step + 1)
            average = rule.average(averaged.submission.state)
            if average is not None:
                evaluated_average = True
                for weight, mean in zip(tracked(averaged.model), average, strict=True):
                    assert torch.equal(weight, mean), f"{averaging}: not the average at {step}"
    assert evaluated_average, f"{averaging} never averaged in 10 steps of a hint of 12"


def eval_rows(run_dir: Path) -> list[dict]:
    rows = read_csv(run_dir / results.EVAL_FILE)
    return [
        {k: v for k, v in row.items() if k.startswith(("train/", "validation/"))} for row in rows
    ]


RUN = ["workload=friedman", *TINY["friedman"], "workload.eval_every_steps=4"]


@pytest.mark.parametrize("averaging", AVERAGING)
def test_a_killed_averaged_run_resumes_bitwise(averaging, tmp_path, monkeypatch):
    """Killed right after the checkpoint of its first evaluation (the average in the model),
    resumed, then preempted between evaluations (the raw weights in the model) and resumed
    again: it evaluates exactly as the uninterrupted run."""
    # A hint of 4: every rule has an average by the first evaluation (SWA from step 3).
    overrides = [*RUN, "workload.step_hint=4", f"submission/averaging={averaging}"]
    whole = make_runner(overrides, tmp_path / "whole", max_steps=12)
    assert whole.run().status == "not_reached"
    expected = eval_rows(tmp_path / "whole")
    assert len(expected) == 3

    folder = tmp_path / "interrupted"
    make_runner(overrides, folder, max_steps=4).run()  # as a kill right after its checkpoint
    checkpoint = results.load_checkpoint(folder / results.CHECKPOINT_FILE)
    assert checkpoint["optimizer"]["averaging"]["raw"] is not None, "the average was in"
    calls = itertools.count(5)
    monkeypatch.setattr(
        preemption, "requested", lambda: signal.SIGUSR2 if next(calls) == 6 else None
    )
    with pytest.raises(preemption.Preempted):  # at step 6, between two evaluations
        make_runner(overrides, folder, checkpoint=checkpoint, max_steps=12).run()
    monkeypatch.undo()
    checkpoint = results.load_checkpoint(folder / results.CHECKPOINT_FILE)
    assert checkpoint["train_state"]["global_step"] == 6
    assert checkpoint["optimizer"]["averaging"]["raw"] is None, "the raw weights were in"
    make_runner(overrides, folder, checkpoint=checkpoint, max_steps=12).run()
    assert eval_rows(folder) == expected


def test_averaging_hyperparameters_are_tuned_by_the_search_space(results_dir):
    space = "+submission.search_space.ema_decay={min:0.9,max:0.99,scaling:log}"
    decays = set()
    for trial in range(3):
        cfg = compose_config(
            ["submission/averaging=ema", space, "ruleset=external", f"trial={trial}"],
            results_dir,
        )
        workload, submission, hyperparameters = launch.prepare(cfg)
        assert 0.9 <= hyperparameters["ema_decay"] <= 0.99
        decays.add(hyperparameters["ema_decay"])
        workload.setup(torch.device("cpu"))
        trainer = Trainer(submission, SimpleNamespace(**hyperparameters), workload, rng=0)
        assert trainer.submission.rule.ema_decay == hyperparameters["ema_decay"]
    assert len(decays) == 3


@pytest.mark.parametrize(
    "override, expected",
    [
        ("submission.averaging.ema_decay=1.5", "ema_decay must be in [0, 1)"),
        ("++submission.hyperparameters.ema_decay=fast", "ema_decay must be a number"),
    ],
)
def test_a_bad_averaging_value_is_refused_before_the_run(override, expected, results_dir):
    cfg = compose_config(["submission/averaging=ema", override], results_dir)
    with pytest.raises(UserError, match=expected.replace("[", r"\[").replace(")", r"\)")):
        launch.prepare(cfg)


@pytest.mark.parametrize("averaging", group_choices("submission/averaging"))
def test_an_averaged_run_is_filed_under_its_own_name(averaging, results_dir):
    overrides = [f"submission/averaging={averaging}", "workload=friedman"]
    cfg = compose_config(overrides, results_dir)
    suffix = instantiate(cfg.submission.averaging).suffix
    assert (suffix == "") == (averaging == "none")
    _, submission, _ = launch.prepare(cfg)
    assert submission.name == f"adamw{suffix}" == launch.submission_name(cfg)
    hydra = compose_with_hydra([f"results_dir={results_dir}", *overrides])
    assert Path(hydra.hydra.run.dir) == launch.run_folder(cfg)
    assert f"/adamw{suffix}/friedman/" in hydra.hydra.run.dir
    assert (CONF / "submission" / "averaging" / f"{averaging}.yaml").read_text().startswith("#")


def test_no_averaging_leaves_the_fingerprint_of_earlier_runs(results_dir):
    """Runs made before the averaging group existed keep their fingerprints (a sweep skips
    them, a rerun resumes them); an averaging's settings are part of its runs' identity."""
    plain = launch.run_identity(compose_config(["workload=friedman"], results_dir))
    assert not [key for key in plain if key.startswith("submission.averaging")]
    ema = launch.run_identity(
        compose_config(["workload=friedman", "submission/averaging=ema"], results_dir)
    )
    assert ema["submission.averaging.ema_decay"] == 0.999
    assert {k: v for k, v in ema.items() if not k.startswith("submission.averaging")} == plain
