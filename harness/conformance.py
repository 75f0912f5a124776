"""The conformance checks every submission must pass (optax's idea): optimizer state that survives
a checkpoint, progress on an ill-conditioned quadratic, steps that follow the scheduled learning
rate, a weight decay that acts, schedule swaps, a declared batch size and search space.

One copy of each check, used by tests/test_conformance.py (parameterised over conf/submission/)
and by `python -m harness.check` (any submission, the user's own included). A check raises
`Failure` with a sentence saying what is wrong, or `NotApplicable`. Never reads the clock; imports
neither workloads/ nor submissions/ (a submission is only what the builder returns).
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from harness.data import PREPARE_FOR_EVAL, derive_seed, step_seed
from harness.runner import Runner, RunSettings
from harness.spec import Batch, LossType, Submission, Workload
from harness.tuning import search_space_names


class Failure(AssertionError):
    """A check failed; the message says what the submission did."""


class NotApplicable(Exception):
    """The check does not apply to this submission (the message says why)."""


@dataclasses.dataclass
class Built:
    """A submission built and validated as a run builds it, with the config it came from."""

    submission: Submission
    hyperparameters: SimpleNamespace
    config: DictConfig  # the composed run config (its `submission` node)


# overrides (e.g. ["submission.batch_size=8"]) -> a new Built, exactly as a run builds it
Builder = Callable[[list[str]], Built]

# The embedded workloads made tiny: same data, model family and contract, millisecond steps.
TINY = {
    "digits": ["workload.width=4"],
    "friedman": [
        "workload.width=16",
        "workload.depth=2",
        "workload.num_train=512",
        "workload.num_validation=256",
    ],
    "shakespeare": [
        "workload.width=16",
        "workload.depth=1",
        "workload.num_heads=2",
        "workload.context_length=16",
        "workload.eval_tokens=256",
    ],
}
# Enough steps for periodic work (Sophia's Hessian estimate, SOAP's and Shampoo's
# preconditioners: every 10 steps by default) to be in the checkpointed state.
STEPS_BEFORE_CHECKPOINT = 12
STEPS_AFTER_CHECKPOINT = 2
QUADRATIC_STEPS = 60


def fail_unless(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


class Trainer:
    """Calls the submission functions the way harness/runner.py does, without the clock."""

    def __init__(self, submission: Submission, hyperparameters, workload: Workload, rng: int):
        self.submission, self.hyperparameters, self.workload = submission, hyperparameters, workload
        self.model, self.model_state = workload.init_model_fn(rng=rng)
        self.types = workload.model_params_types(self.model)
        self.optimizer_state = submission.init_optimizer_state(
            workload, self.model, self.model_state, hyperparameters, rng=rng
        )

    def step(self, batch: Batch, global_step: int) -> torch.Tensor:
        torch.manual_seed(derive_seed(7, global_step))  # as if restored from a checkpoint
        self.optimizer_state, self.model, self.model_state = self.submission.update_params(
            self.workload,
            self.model,
            self.types,
            self.model_state,
            self.hyperparameters,
            batch,
            self.workload.loss_type,
            self.optimizer_state,
            [],
            global_step,
            step_seed(0, global_step),
        )
        return self.submission.last_loss

    def prepare_for_eval(self, global_step: int) -> None:
        self.optimizer_state, self.model, self.model_state = self.submission.prepare_for_eval(
            self.workload,
            self.model,
            self.types,
            self.model_state,
            self.hyperparameters,
            self.workload.loss_type,
            self.optimizer_state,
            global_step,
            derive_seed(0, global_step, PREPARE_FOR_EVAL),
        )

    def parameters(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.model.named_parameters()}


def through_disk(state: dict) -> dict:
    """torch.save then torch.load(weights_only=True): what a checkpoint keeps."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def follows_a_schedule(submission: Submission) -> bool:
    """A submission made of an optimizer class and a schedule (the generic one and its
    subclasses), not one whose algorithm, schedule included, is its own code (an AlgoPerf file)."""
    schedule = getattr(submission, "schedule", None)
    return callable(getattr(schedule, "factor", None)) and hasattr(
        submission, "update_proportional_to_learning_rate"
    )


# -- the checks -----------------------------------------------------------------------------------
def state_survives_a_checkpoint(
    build: Builder,
    workload: Workload,
    steps_before: int = STEPS_BEFORE_CHECKPOINT,
    evaluated_differs: bool = False,
) -> None:
    """Train, checkpoint the model and optimizer state through torch.save/load, restore into a
    fresh submission: the next steps must be identical. `evaluated_differs`: the weights
    prepare_for_eval puts in the model must differ from the raw ones (a weight average)."""
    overrides = ["submission.batch_size=8"]  # small batches keep 14 steps cheap
    built = build(overrides)
    submission, hyperparameters = built.submission, built.hyperparameters
    name = submission.name
    queue = workload.build_input_queue(0, "train", submission.get_batch_size(workload.name))
    batches = [next(queue) for _ in range(steps_before + STEPS_AFTER_CHECKPOINT)]
    original = Trainer(submission, hyperparameters, workload, rng=0)
    start = original.parameters()
    for step in range(steps_before):
        loss = original.step(batches[step], step)
        fail_unless(bool(torch.isfinite(loss)), f"{name}: loss {float(loss)} at step {step}")
    moved = original.parameters()
    fail_unless(
        any(not torch.equal(start[n], moved[n]) for n in start),
        f"{name} did not change any parameter in {steps_before} steps",
    )
    fail_unless(all(torch.isfinite(p).all() for p in moved.values()), f"{name}: non-finite")
    # The runner checkpoints at evaluations, after prepare_for_eval (schedule-free's swap).
    original.prepare_for_eval(steps_before)
    if evaluated_differs:
        evaluated = original.parameters()
        fail_unless(
            any(not torch.equal(evaluated[n], moved[n]) for n in moved),
            f"{name}: prepare_for_eval left the raw weights in the model",
        )
    checkpoint = through_disk(
        {
            "model": original.model.state_dict(),
            "optimizer": submission.optimizer_state_dict(original.optimizer_state),
        }
    )
    fresh = build(overrides).submission
    restored = Trainer(fresh, hyperparameters, workload, rng=1)
    restored.model.load_state_dict(checkpoint["model"])
    restored.optimizer_state = fresh.load_optimizer_state_dict(
        restored.optimizer_state, checkpoint["optimizer"]
    )
    for step in range(steps_before, len(batches)):
        before = original.parameters()
        original.step(batches[step], step)
        restored.step(batches[step], step)
        expected, actual = original.parameters(), restored.parameters()
        fail_unless(
            any(not torch.equal(before[n], expected[n]) for n in before),
            f"{name} did not move at step {step}",
        )
        for key in expected:
            fail_unless(
                torch.equal(actual[key], expected[key]),
                f"{name} on {workload.name}: {key} differs at step {step} after restoring the "
                "optimizer state from a checkpoint",
            )


def mean_squared_error(label_batch, logits_batch, mask_batch=None) -> dict[str, Any]:
    per_example = (logits_batch.float().reshape(label_batch.shape) - label_batch) ** 2
    if mask_batch is not None:
        per_example = per_example * mask_batch
    count = per_example.numel() if mask_batch is None else mask_batch.sum()
    return {"summed": per_example.sum(), "n_valid_examples": count, "per_example": per_example}


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


class FlatQuadratic(IllConditionedQuadratic):
    """The quadratic with its loss multiplied by 0: every gradient is zero, so only weight
    decay can move the parameters."""

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        losses = mean_squared_error(label_batch, logits_batch, mask_batch)
        return {**losses, "summed": losses["summed"] * 0.0}


def quadratic(cls: type[IllConditionedQuadratic] = IllConditionedQuadratic) -> Workload:
    workload = cls(
        name="quadratic",
        target=0.0,
        max_runtime_sec=600,
        step_hint=QUADRATIC_STEPS,
        eval_every_steps=QUADRATIC_STEPS // 2,
        batch_size=32,
    )
    workload.setup(torch.device("cpu"))
    return workload


def defaults_decrease_an_ill_conditioned_quadratic(build: Builder, folder: Path) -> None:
    """Through the real runner, so evaluation sees the parameters prepare_for_eval chose."""
    built, workload = build([]), quadratic()
    submission = built.submission
    model, model_state = workload.init_model_fn(rng=0)
    initial = workload.eval_model(model, model_state, rng=0)["validation/loss"]
    settings = RunSettings(
        seed=0,
        budget_sec=600.0,
        batch_size=submission.get_batch_size(workload.name) or workload.default_batch_size,
        stop_at_target=False,
        max_steps=QUADRATIC_STEPS,
        checkpoint=False,
        progress="none",
    )
    from harness.launch import standalone_record  # launch imports the whole run side

    runner = Runner(
        workload, submission, built.hyperparameters, settings, folder, standalone_record(workload)
    )
    record = runner.run()
    fail_unless(record.status == "not_reached", f"the run ended {record.status}: {record.error}")
    final = runner.state.eval_measurements[-1]["validation/loss"]
    # Sign-based methods move each weight by at most ~lr per step, so the bar is a decrease,
    # not convergence: a step that does nothing (ratio exactly 1) or goes uphill fails it.
    fail_unless(
        final < 0.99 * initial,
        f"{submission.name} with its defaults took the quadratic's loss from {initial:.4g} to "
        f"{final:.4g} in {QUADRATIC_STEPS} steps; expected a decrease of at least 1%",
    )


@dataclasses.dataclass(frozen=True)
class Fixed:
    """A learning-rate multiplier set by the check (a schedule's interface)."""

    value: float = 1.0

    def factor(self, step: int, total_steps: int) -> float:
        return self.value


def learning_rates(optimizer_state) -> list[float]:
    return [
        group["lr"]
        for optimizer in optimizer_state["optimizers"].values()
        for group in optimizer.param_groups
    ]


def step_taken_at(build: Builder, workload: Workload, factor: float, warm_steps: int = 3) -> float:
    """Norm of one step's change of the parameters when the schedule says `factor`, after
    `warm_steps` steps at factor 1 (so that the optimizer has state); same batch every time."""
    built = build([])
    trainer = Trainer(built.submission, built.hyperparameters, workload, rng=0)
    batch = next(workload.build_input_queue(0, "train", 8))
    trainer.optimizer_state["schedule"] = Fixed(1.0)
    for step in range(warm_steps):
        trainer.step(batch, step)
    before = trainer.parameters()
    trainer.optimizer_state["schedule"] = Fixed(factor)
    trainer.step(batch, warm_steps)
    after = trainer.parameters()
    return float(torch.sqrt(sum(((after[n] - before[n]) ** 2).sum() for n in before)))


def step_follows_the_scheduled_learning_rate(build: Builder) -> None:
    """An optimizer that ignores its schedule (a learning rate read once, at construction)
    takes the same step whatever the schedule says."""
    submission = build([]).submission
    if not follows_a_schedule(submission):
        raise NotApplicable("the learning rates of a five-function submission are its own")
    workload, name = quadratic(), submission.name
    full, half, none = (step_taken_at(build, workload, f) for f in (1.0, 0.5, 0.0))
    fail_unless(
        full > 0 and len({full, half, none}) == 3,
        f"{name}: steps of {full:.3g}, {half:.3g} and {none:.3g} at scheduled rates 1, 0.5 and "
        "0: the step does not follow the schedule",
    )
    if submission.update_proportional_to_learning_rate:
        fail_unless(none == 0.0, f"{name} moved by {none:.3g} at a learning rate of 0")
        fail_unless(
            abs(half / full - 0.5) <= 0.005,
            f"{name}: the step at half the learning rate is {half / full:.4f} of the full one",
        )


def weight_decay_keys(build: Builder) -> list[str]:
    """Hyperparameters named *weight_decay in a submission's defaults or search space (as built:
    an AlgoPerf file's search space is a file of its own)."""
    built = build([])
    names = [*vars(built.hyperparameters), *search_space_names(built.submission.search_space)]
    return sorted({key for key in names if key.endswith("weight_decay")})


def weight_decay_shrinks_the_weights(build: Builder, key: str) -> None:
    """With every gradient zero, a weight decay of 0.1 must shrink the parameters (and 0 leave
    them): an optimizer that ignores its weight decay fails here."""
    workload = quadratic(FlatQuadratic)
    batch = next(workload.build_input_queue(0, "train", 8))
    others = [f"++submission.hyperparameters.{k}=0.0" for k in weight_decay_keys(build)]
    norms, start = {}, 0.0
    for value in (0.0, 0.1):
        built = build([*others, f"++submission.hyperparameters.{key}={value}"])
        trainer = Trainer(built.submission, built.hyperparameters, workload, rng=0)
        start = float(torch.sqrt(sum((p**2).sum() for p in trainer.parameters().values())))
        for step in range(10):
            trainer.step(batch, step)
        norms[value] = float(torch.sqrt(sum((p**2).sum() for p in trainer.parameters().values())))
    name = built.submission.name
    fail_unless(
        abs(norms[0.0] - start) <= 1e-7 * abs(start),
        f"{name}: with no gradient and {key}=0 the parameters' norm moved from {start:.7g} to "
        f"{norms[0.0]:.7g}",
    )
    fail_unless(
        norms[0.1] < start * (1 - 1e-5),
        f"{name}: {key}=0.1 left the parameters' norm at {norms[0.1]:.7g} (from {start:.7g}) in "
        "10 steps without gradients: the weight decay is ignored",
    )


def schedule_can_replace_the_default(build: Builder, schedule_name: str) -> None:
    """`submission/schedule=NAME` builds that schedule, and the learning rates follow it."""
    if not follows_a_schedule(build([]).submission):
        raise NotApplicable("a five-function submission has no schedule to swap: it is its code")
    built = build([f"submission/schedule={schedule_name}"])
    submission = built.submission
    expected = type(instantiate(built.config.submission.schedule))
    fail_unless(
        type(submission.schedule) is expected,
        f"{submission.name} built a {type(submission.schedule).__name__}, not the "
        f"{expected.__name__} of schedule {schedule_name}",
    )
    workload = quadratic()
    trainer = Trainer(submission, built.hyperparameters, workload, rng=0)
    base = learning_rates(trainer.optimizer_state)
    schedule = trainer.optimizer_state["schedule"]
    batch = next(workload.build_input_queue(0, "train", 8))
    for step in (0, QUADRATIC_STEPS // 2, QUADRATIC_STEPS - 1):
        trainer.step(batch, step)
        factor = schedule.factor(step, workload.step_hint)
        rates, wanted = learning_rates(trainer.optimizer_state), [r * factor for r in base]
        fail_unless(
            all(
                abs(a - b) <= max(1e-6 * abs(b), 1e-12) for a, b in zip(rates, wanted, strict=True)
            ),
            f"{submission.name} with {schedule_name} at step {step}: learning rates {rates}, "
            f"the schedule says {wanted}",
        )


def declares_schedule_batch_size_and_search_space(build: Builder, yaml_text: str) -> None:
    """The YAML declares batch_size, default hyperparameters, a search space and (for an
    optimizer with a schedule) a default schedule in its defaults list."""
    built = build([])
    node = built.config.submission
    fail_unless("batch_size" in node, "declare batch_size (null: the workload's)")
    if not follows_a_schedule(built.submission):  # an AlgoPerf file: both come with the file
        fail_unless(
            "search_space" in node and "hyperparameters" in node,
            "declare search_space and hyperparameters",
        )
        fail_unless(
            bool(built.submission.search_space) and bool(vars(built.hyperparameters)),
            "the submission has no search space or no hyperparameters",
        )
        return
    fail_unless("- schedule:" in yaml_text, "name a default schedule in the defaults list")
    fail_unless(bool(node.get("search_space")), "give an AlgoPerf-format search_space")
    fail_unless(bool(node.get("hyperparameters")), "give default hyperparameters")


# -- all of them, for one submission (python -m harness.check) ------------------------------------
@dataclasses.dataclass
class Outcome:
    check: str
    on: str  # the workload, schedule or hyperparameter it was run with; "" for none
    result: str  # pass | fail | n/a
    message: str = ""


def run_all(
    build: Builder,
    workloads: dict[str, Workload],
    schedules: list[str],
    yaml_text: str,
) -> Iterator[Outcome]:
    """Every check on one submission, one Outcome each, as they finish."""
    plan: list[tuple[str, str, Callable[[], None]]] = [
        (
            "declares schedule, batch size, search space",
            "",
            lambda: declares_schedule_batch_size_and_search_space(build, yaml_text),
        ),
    ]
    for name, workload in workloads.items():
        plan.append(
            (
                "state survives a checkpoint",
                name,
                lambda w=workload: state_survives_a_checkpoint(build, w),
            )
        )

    def decrease() -> None:
        with tempfile.TemporaryDirectory() as folder:
            defaults_decrease_an_ill_conditioned_quadratic(build, Path(folder) / "run")

    plan.append(("defaults decrease an ill-conditioned quadratic", "", decrease))
    plan.append(
        (
            "step follows the scheduled learning rate",
            "",
            lambda: step_follows_the_scheduled_learning_rate(build),
        )
    )
    for key in weight_decay_keys(build):
        plan.append(
            (
                "weight decay shrinks the weights",
                key,
                lambda k=key: weight_decay_shrinks_the_weights(build, k),
            )
        )
    for schedule in schedules:
        plan.append(
            (
                "schedule can replace the default",
                schedule,
                lambda s=schedule: schedule_can_replace_the_default(build, s),
            )
        )
    for check, on, function in plan:
        try:
            function()
        except NotApplicable as reason:
            yield Outcome(check, on, "n/a", str(reason))
        except Exception as error:  # a crash in the submission is a failure of this check
            yield Outcome(check, on, "fail", f"{type(error).__name__}: {error}".strip())
        else:
            yield Outcome(check, on, "pass")
