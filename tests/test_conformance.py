"""Conformance suite: every submission YAML in conf/submission/, checked the same way (optax's
idea). A new YAML is covered without editing this file. tests/test_contract.py already runs
every submission through the full harness on each embedded workload; this suite adds what a
short run cannot see: checkpointed optimizer state, progress on an ill-conditioned quadratic,
the batch size, schedule swaps and search-space validation. Every weight averaging in
conf/submission/averaging/ is run on a few bases (AVERAGED_BASES) through the checkpoint and the
quadratic.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Iterator

import pytest
import torch
from hydra.utils import get_class, instantiate
from torch import nn

from harness.data import derive_seed
from harness.errors import UserError
from harness.launch import prepare, standalone_record
from harness.runner import Runner, RunSettings
from harness.spec import Batch, LossType, Workload
from harness.tuning import search_space_names
from submissions.generic import OptimizerSubmission
from submissions.schedules import Schedule
from tests.helpers import (
    CONF,
    EMBEDDED_WORKLOADS,
    TINY,
    Trainer,
    build_submission,
    compose_config,
    group_choices,
    run_cli,
    run_in_process,
    submission_config,
)
from workloads.common import mean_squared_error

SUBMISSIONS = group_choices("submission")
SCHEDULES = group_choices("submission/schedule")
# Every weight averaging but none, on base submissions of each kind: a torch.optim optimizer,
# schedule-free (its own train/eval swap inside ours) and an AlgoPerf file (five functions).
AVERAGING = [name for name in group_choices("submission/averaging") if name != "none"]
AVERAGED_BASES = ["adamw", "schedule_free_adamw", "algoperf"]
# Enough steps for periodic work (Sophia's Hessian estimate, SOAP's and Shampoo's
# preconditioners: every 10 steps by default) to be in the checkpointed state.
STEPS_BEFORE_CHECKPOINT = 12
STEPS_AFTER_CHECKPOINT = 2


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models: a second intra-op thread only adds synchronisation (and, on a busy
    machine, waiting for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def through_disk(state: dict) -> dict:
    """torch.save then torch.load(weights_only=True): what a checkpoint keeps."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("workload_name", EMBEDDED_WORKLOADS)
@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_state_survives_a_checkpoint_and_the_next_steps_are_identical(
    submission_name, workload_name, tiny_workloads
):
    # Small batches keep 14 steps cheap; the batch-size test below checks get_batch_size.
    check_resume(submission_name, tiny_workloads[workload_name], ["submission.batch_size=8"])


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
    overrides = ["submission.batch_size=8", f"submission/averaging={averaging}"]
    check_resume(submission_name, workload, overrides, steps_before=13, evaluated_differs=True)


def check_resume(
    submission_name: str,
    workload: Workload,
    overrides: list[str],
    steps_before: int = STEPS_BEFORE_CHECKPOINT,
    evaluated_differs: bool = False,
) -> None:
    """Train, prepare_for_eval, checkpoint, restore into a fresh submission and model, and
    train both on: every parameter identical at every step. `evaluated_differs`: the weights
    prepare_for_eval puts in the model must differ from the raw ones (an average)."""
    workload_name = workload.name
    submission, hyperparameters = build_submission(submission_name, overrides)
    queue = workload.build_input_queue(0, "train", submission.get_batch_size(workload.name))
    batches = [next(queue) for _ in range(steps_before + STEPS_AFTER_CHECKPOINT)]

    original = Trainer(submission, hyperparameters, workload, rng=0)
    start = original.parameters()
    for step in range(steps_before):
        loss = original.step(batches[step], step)
        assert torch.isfinite(loss), f"{submission_name}: loss {float(loss)} at step {step}"
    moved = original.parameters()
    assert any(not torch.equal(start[name], moved[name]) for name in start), (
        f"{submission_name} did not change any parameter in {steps_before} steps"
    )
    assert all(torch.isfinite(p).all() for p in moved.values())
    # The runner checkpoints at evaluations, after prepare_for_eval (schedule-free's swap).
    original.prepare_for_eval(steps_before)
    evaluated = original.parameters()
    if evaluated_differs:
        assert any(not torch.equal(evaluated[n], moved[n]) for n in moved), (
            f"{submission.name}: prepare_for_eval left the raw weights in the model"
        )
    checkpoint = through_disk(
        {
            "model": original.model.state_dict(),
            "optimizer": submission.optimizer_state_dict(original.optimizer_state),
        }
    )

    fresh_submission, _ = build_submission(submission_name, overrides)
    restored = Trainer(fresh_submission, hyperparameters, workload, rng=1)
    restored.model.load_state_dict(checkpoint["model"])
    restored.optimizer_state = fresh_submission.load_optimizer_state_dict(
        restored.optimizer_state, checkpoint["optimizer"]
    )
    for step in range(steps_before, len(batches)):
        before = original.parameters()
        original.step(batches[step], step)
        restored.step(batches[step], step)
        expected, actual = original.parameters(), restored.parameters()
        assert any(not torch.equal(before[name], expected[name]) for name in before)
        for name in expected:
            assert torch.equal(actual[name], expected[name]), (
                f"{submission_name} on {workload_name}: {name} differs at step {step} after "
                "restoring the optimizer state from a checkpoint"
            )


class IllConditionedQuadratic(Workload):
    """Noise-free least squares with input scales 1 to 1/30: a quadratic in the weights whose
    Hessian has condition number ~1000. A 2-D weight (ParameterType.WEIGHT) and a bias, so
    that Muon's and Shampoo's matrix paths and the fallback paths all run."""

    target_metric_name = "loss"
    target_metric_lower_is_better = True
    loss_type = LossType.MEAN_SQUARED_ERROR
    head_module = None  # the layer's weight is a hidden WEIGHT, not a head
    scales = (1.0, 0.3, 0.1, 0.03)

    def setup(self, device: torch.device) -> None:
        generator = torch.Generator().manual_seed(0)
        inputs = torch.randn(256, len(self.scales), generator=generator) * torch.tensor(self.scales)
        true_weight = torch.randn(2, len(self.scales), generator=generator)
        self.data = {"inputs": inputs, "targets": inputs @ true_weight.T + 1.0}

    @property
    def num_train_examples(self) -> int:
        return 256

    @property
    def num_validation_examples(self) -> int:
        return 256

    def build_input_queue(
        self, seed: int, split: str, global_batch_size: int, start_step: int = 0
    ) -> Iterator[Batch]:
        step = start_step
        while True:
            generator = torch.Generator().manual_seed(derive_seed(seed, step))
            indices = torch.randint(0, 256, (global_batch_size,), generator=generator)
            yield {key: value[indices] for key, value in self.data.items()}
            step += 1

    def init_model_fn(self, rng: int) -> tuple[nn.Module, None]:
        torch.manual_seed(rng)
        return nn.Linear(len(self.scales), 2), None

    def model_fn(self, params, batch, model_state, mode, rng, update_batch_norm):
        return params(batch["inputs"]), model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        return mean_squared_error(label_batch, logits_batch, mask_batch)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        yield self.data


QUADRATIC_STEPS = 60


@pytest.fixture
def quadratic() -> IllConditionedQuadratic:
    workload = IllConditionedQuadratic(
        name="quadratic",
        target=0.0,
        max_runtime_sec=600,
        step_hint=QUADRATIC_STEPS,
        eval_every_steps=QUADRATIC_STEPS // 2,
        batch_size=32,
    )
    workload.setup(torch.device("cpu"))
    return workload


@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_defaults_decrease_an_ill_conditioned_quadratic(submission_name, quadratic, tmp_path):
    """Through the real runner, so evaluation sees the parameters prepare_for_eval chose."""
    check_decrease(submission_name, [], quadratic, tmp_path)


@pytest.mark.parametrize("averaging", AVERAGING)
@pytest.mark.parametrize("submission_name", AVERAGED_BASES)
def test_averaged_defaults_decrease_an_ill_conditioned_quadratic(
    submission_name, averaging, quadratic, tmp_path
):
    """Evaluated at the average (prepare_for_eval), with the averaging's default settings."""
    check_decrease(submission_name, [f"submission/averaging={averaging}"], quadratic, tmp_path)


def check_decrease(submission_name: str, overrides: list[str], quadratic, tmp_path) -> None:
    submission, hyperparameters = build_submission(submission_name, overrides)
    model, model_state = quadratic.init_model_fn(rng=0)
    initial = quadratic.eval_model(model, model_state, rng=0)["validation/loss"]
    settings = RunSettings(
        seed=0,
        budget_sec=600.0,
        batch_size=submission.get_batch_size(quadratic.name) or quadratic.default_batch_size,
        stop_at_target=False,
        max_steps=QUADRATIC_STEPS,
        checkpoint=False,
        progress="none",
    )
    runner = Runner(
        quadratic,
        submission,
        hyperparameters,
        settings,
        tmp_path / "run",
        standalone_record(quadratic),
    )
    record = runner.run()
    assert record.status == "not_reached", record.error
    final = runner.state.eval_measurements[-1]["validation/loss"]
    # Sign-based methods move each weight by at most ~lr per step, so the bar is a decrease,
    # not convergence: a step that does nothing (ratio exactly 1) or goes uphill fails it.
    assert final < 0.99 * initial, (
        f"{submission_name} with its defaults took the quadratic's loss from {initial:.4g} "
        f"to {final:.4g} in {QUADRATIC_STEPS} steps; expected a decrease of at least 1%"
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


def learning_rates(optimizer_state) -> list[float]:
    return [
        group["lr"]
        for optimizer in optimizer_state["optimizers"].values()
        for group in optimizer.param_groups
    ]


@dataclasses.dataclass(frozen=True)
class Fixed(Schedule):
    """A learning-rate multiplier set by the test."""

    value: float = 1.0
    warmup_fraction: float = 0.0

    def factor(self, step: int, total_steps: int) -> float:
        return self.value


def step_taken_at(name: str, workload: Workload, factor: float, warm_steps: int = 3) -> float:
    """Norm of one step's change of the parameters when the schedule says `factor`, after
    `warm_steps` steps at factor 1 (so that the optimizer has state); same batch every time."""
    submission, hyperparameters = build_submission(name, [])
    trainer = Trainer(submission, hyperparameters, workload, rng=0)
    batch = next(workload.build_input_queue(0, "train", 8))
    trainer.optimizer_state["schedule"] = Fixed(1.0)
    for step in range(warm_steps):
        trainer.step(batch, step)
    before = trainer.parameters()
    trainer.optimizer_state["schedule"] = Fixed(factor)
    trainer.step(batch, warm_steps)
    after = trainer.parameters()
    return float(torch.sqrt(sum(((after[n] - before[n]) ** 2).sum() for n in before)))


@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_the_step_follows_the_scheduled_learning_rate(submission_name, quadratic):
    """An optimizer that ignores its schedule (a learning rate read once, at construction)
    takes the same step whatever the schedule says."""
    submission, _ = build_submission(submission_name, [])
    if not isinstance(submission, OptimizerSubmission):
        pytest.skip("the learning rates of a five-function submission are its own business")
    full, half, none = (step_taken_at(submission_name, quadratic, f) for f in (1.0, 0.5, 0.0))
    assert full > 0 and len({full, half, none}) == 3, (
        f"{submission_name}: steps of {full:.3g}, {half:.3g} and {none:.3g} at scheduled rates "
        "1, 0.5 and 0: the step does not follow the schedule"
    )
    if submission.update_proportional_to_learning_rate:
        assert none == 0.0, f"{submission_name} moved by {none:.3g} at a learning rate of 0"
        assert half / full == pytest.approx(0.5, rel=0.01), submission_name


class FlatQuadratic(IllConditionedQuadratic):
    """The quadratic with its loss multiplied by 0: every gradient is zero, so only weight
    decay can move the parameters."""

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        losses = mean_squared_error(label_batch, logits_batch, mask_batch)
        return {**losses, "summed": losses["summed"] * 0.0}


def weight_decay_keys(name: str) -> list[str]:
    """Hyperparameters named *weight_decay in a submission's defaults or search space (as built:
    an AlgoPerf file's search space is a file of its own)."""
    submission, hyperparameters = build_submission(name, [])
    names = [*vars(hyperparameters), *search_space_names(submission.search_space)]
    return sorted({key for key in names if key.endswith("weight_decay")})


WEIGHT_DECAY = [(s, key) for s in SUBMISSIONS for key in weight_decay_keys(s)]


@pytest.mark.parametrize("submission_name, key", WEIGHT_DECAY)
def test_weight_decay_shrinks_the_weights(submission_name, key):
    """With every gradient zero, a weight decay of 0.1 must shrink the parameters (and 0 leave
    them): an optimizer that ignores its weight decay fails here."""
    workload = FlatQuadratic(
        name="flat",
        target=0.0,
        max_runtime_sec=600,
        step_hint=60,
        eval_every_steps=30,
        batch_size=32,
    )
    workload.setup(torch.device("cpu"))
    batch = next(workload.build_input_queue(0, "train", 8))
    others = [f"++submission.hyperparameters.{k}=0.0" for k in weight_decay_keys(submission_name)]
    norms = {}
    for value in (0.0, 0.1):
        submission, hyperparameters = build_submission(
            submission_name, [*others, f"++submission.hyperparameters.{key}={value}"]
        )
        trainer = Trainer(submission, hyperparameters, workload, rng=0)
        start = float(torch.sqrt(sum((p**2).sum() for p in trainer.parameters().values())))
        for step in range(10):
            trainer.step(batch, step)
        norms[value] = float(torch.sqrt(sum((p**2).sum() for p in trainer.parameters().values())))
    assert norms[0.0] == pytest.approx(start, rel=1e-7), "no gradient and no decay: no move"
    assert norms[0.1] < start * (1 - 1e-5), (
        f"{submission_name}: {key}=0.1 left the parameters' norm at {norms[0.1]:.7g} (from "
        f"{start:.7g}) in 10 steps without gradients: the weight decay is ignored"
    )


def is_optimizer_yaml(name: str) -> bool:
    """A submission made of an optimizer class and a schedule (OptimizerSubmission), not one
    whose algorithm, schedule included, is its own code (an AlgoPerf file)."""
    target = submission_config(name, ()).submission._target_
    return issubclass(get_class(target), OptimizerSubmission)


@pytest.mark.parametrize("schedule_name", SCHEDULES)
@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_every_schedule_can_replace_the_default(submission_name, schedule_name, quadratic):
    if not is_optimizer_yaml(submission_name):
        pytest.skip("a five-function submission has no schedule to swap: it is its own code")
    swap = [f"submission/schedule={schedule_name}"]
    cfg = submission_config(submission_name, tuple(swap))
    submission, hyperparameters = build_submission(submission_name, swap)
    expected = type(instantiate(cfg.submission.schedule))
    assert type(submission.schedule) is expected
    if not isinstance(submission, OptimizerSubmission):
        pytest.skip("the learning rates of a five-function submission are its own business")
    trainer = Trainer(submission, hyperparameters, quadratic, rng=0)
    base = learning_rates(trainer.optimizer_state)
    schedule = trainer.optimizer_state["schedule"]
    batch = next(quadratic.build_input_queue(0, "train", 8))
    for step in (0, QUADRATIC_STEPS // 2, QUADRATIC_STEPS - 1):
        trainer.step(batch, step)
        factor = schedule.factor(step, quadratic.step_hint)
        assert learning_rates(trainer.optimizer_state) == pytest.approx(
            [rate * factor for rate in base]
        ), f"{submission_name} with {schedule_name} at step {step}"


@pytest.mark.parametrize("submission_name", SUBMISSIONS)
def test_every_submission_declares_its_schedule_batch_size_and_search_space(submission_name):
    text = (CONF / "submission" / f"{submission_name}.yaml").read_text()
    cfg = submission_config(submission_name, ())
    assert "batch_size" in cfg.submission, "declare batch_size (null: the workload's)"
    if not is_optimizer_yaml(submission_name):  # an AlgoPerf file: both come with the file
        assert "search_space" in cfg.submission and "hyperparameters" in cfg.submission
        submission, hyperparameters = build_submission(submission_name, [])
        assert submission.search_space and vars(hyperparameters), submission_name
        return
    assert "- schedule:" in text, "name a default schedule in the defaults list"
    assert cfg.submission.search_space, "give an AlgoPerf-format search_space"
    assert cfg.submission.hyperparameters, "give default hyperparameters"


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
