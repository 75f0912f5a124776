"""The contracts: what a workload and a submission provide, modelled on AlgoPerf's `spec.py`.

This is the only module that defines them. It never runs a training loop and never reads the
clock; `harness/runner.py` is the one place that calls these methods.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any, TypedDict

import torch
from torch import nn

from harness import distributed

Batch = dict[str, torch.Tensor]  # "inputs", "targets", optional "weights"; already on the device
ModelState = Any  # AlgoPerf's model_state; in PyTorch batch-norm statistics live in the module
OptimizerState = Any  # whatever init_optimizer_state returns; opaque to the runner
Hyperparameters = SimpleNamespace  # attribute access like AlgoPerf: hyperparameters.learning_rate
EvalResults = list[
    tuple[int, dict[str, float]]
]  # (global_step, metrics) of every evaluation so far


class ForwardPassMode(enum.Enum):
    TRAIN = "train"
    EVAL = "eval"


class LossType(enum.Enum):
    SOFTMAX_CROSS_ENTROPY = "softmax_cross_entropy"
    MEAN_SQUARED_ERROR = "mean_squared_error"
    # AlgoPerf's other loss types, so that submission files can name them.
    SIGMOID_CROSS_ENTROPY = "sigmoid_cross_entropy"
    CTC_LOSS = "ctc_loss"
    MEAN_ABSOLUTE_ERROR = "mean_absolute_error"


class ParameterType(enum.Enum):
    """Role of a parameter, so that optimizers such as Muon can group them without guessing."""

    WEIGHT = "weight"  # 2-D hidden weight matrix (linear layers inside the network)
    CONV_WEIGHT = "conv_weight"
    BIAS = "bias"
    NORM_SCALE = "norm_scale"
    NORM_BIAS = "norm_bias"
    EMBEDDING = "embedding"
    HEAD_WEIGHT = "head_weight"  # the output layer's weight


class LossOutput(TypedDict):
    summed: torch.Tensor  # sum of per-example losses over valid examples (0-dim)
    n_valid_examples: torch.Tensor | int  # count (or summed weight) of valid examples
    per_example: torch.Tensor  # loss per example, zero where masked


def param_types(model: nn.Module, head: str | None = None) -> dict[str, ParameterType]:
    """Classify every parameter of `model` by the module that owns it.

    `head` names the output module (e.g. "head"); its weight is HEAD_WEIGHT, not WEIGHT. Names
    are those of `model.named_parameters()`: a data-parallel wrapper's `module.` prefix included.
    """
    if head is not None and isinstance(model, nn.parallel.DistributedDataParallel):
        head = f"module.{head}"
    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.RMSNorm)
    types: dict[str, ParameterType] = {}
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            if isinstance(module, nn.Embedding):
                kind = ParameterType.EMBEDDING
            elif isinstance(module, norms):
                kind = (
                    ParameterType.NORM_SCALE if param_name == "weight" else ParameterType.NORM_BIAS
                )
            elif param.ndim <= 1:
                kind = ParameterType.BIAS
            elif head is not None and module_name == head:
                kind = ParameterType.HEAD_WEIGHT
            elif param.ndim > 2:
                kind = ParameterType.CONV_WEIGHT
            else:
                kind = ParameterType.WEIGHT
            types[full_name] = kind
    return types


class Workload(abc.ABC):
    """A dataset, a model, a loss, a target and a budget (AlgoPerf's `spec.Workload`, PyTorch only).

    The method names and signatures follow AlgoPerf so that AlgoPerf-format submissions can call
    them unchanged. Everything a user may change (target, budget, cadence, model size) arrives
    through the constructor from the workload's YAML in `conf/workload/`.
    """

    target_metric_name: str  # compared as validation/<target_metric_name>
    target_metric_lower_is_better: bool
    loss_type: LossType
    head_module: str | None = "head"
    # AlgoPerf's attributes that AlgoPerf submission files read: no metrics logger (the harness
    # logs evaluations itself) and no test split.
    metrics_logger: Any = None
    test_target_value: float | None = None
    num_test_examples: int | None = None

    def __init__(
        self,
        name: str,
        target: float,
        max_runtime_sec: float,
        step_hint: int,
        eval_every_steps: int,
        batch_size: int,
        data_dir: str | None = None,
        eval_every_sec: float | None = None,
        reference_speed_index: float | None = None,
        scale_budget: bool = False,
    ) -> None:
        positive = [eval_every_steps, step_hint, batch_size, max_runtime_sec]
        positive += [v for v in (eval_every_sec, reference_speed_index) if v is not None]
        if min(positive) <= 0:
            raise ValueError(
                f"workload {name}: eval_every_steps, eval_every_sec, step_hint, batch_size, "
                "max_runtime_sec and reference_speed_index must be positive"
            )
        self.name = name
        self.validation_target_value = float(target)
        self.max_allowed_runtime_sec = float(max_runtime_sec)
        self.step_hint = int(step_hint)  # schedules decay over this many steps
        self.eval_every_steps = int(eval_every_steps)
        # Evaluate every this many seconds of submission time instead (AlgoPerf's cadence).
        self.eval_every_sec = None if eval_every_sec is None else float(eval_every_sec)
        # The speed index (harness/speed.py) of the machine the budget was calibrated on, and
        # whether a run scales its budget by it: reference / this machine's index.
        self.reference_speed_index = (
            None if reference_speed_index is None else float(reference_speed_index)
        )
        self.scale_budget = bool(scale_budget)
        self.default_batch_size = int(batch_size)  # a submission may choose another
        self.data_dir = data_dir
        self.device = torch.device("cpu")

    # -- data ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def setup(self, device: torch.device) -> None:
        """Load the data onto `device` (off the clock). Called once before anything else."""

    @property
    @abc.abstractmethod
    def num_train_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_validation_examples(self) -> int: ...

    @abc.abstractmethod
    def build_input_queue(
        self, seed: int, split: str, global_batch_size: int, start_step: int = 0
    ) -> Iterator[Batch]:
        """Training batches, already on the device.

        The batch for step s must depend only on (seed, s) so that a resumed run continues with
        exactly the batches it would have seen: `start_step` is the data position.
        """

    # -- model --------------------------------------------------------------------------------
    @abc.abstractmethod
    def init_model_fn(self, rng: int) -> tuple[nn.Module, ModelState]:
        """A freshly initialised model on the device, and its model_state (usually None)."""

    @abc.abstractmethod
    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: Batch,
        model_state: ModelState,
        mode: ForwardPassMode,
        rng: int,
        update_batch_norm: bool,
    ) -> tuple[torch.Tensor, ModelState]:
        """Logits (or predictions) for a batch."""

    @abc.abstractmethod
    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> LossOutput: ...

    def model_params_types(self, model: nn.Module) -> dict[str, ParameterType]:
        return param_types(model, head=self.head_module)

    def is_output_params(self, param_key: str) -> bool:
        """Whether a parameter (by name) belongs to the output layer (AlgoPerf's name)."""
        head = self.head_module
        param_key = param_key.removeprefix("module.")  # a data-parallel wrapper's name
        return head is not None and (param_key == head or param_key.startswith(f"{head}."))

    @property
    def eval_period_time_sec(self) -> float | None:
        """AlgoPerf's name for eval_every_sec (None: this workload evaluates every
        eval_every_steps steps instead)."""
        return self.eval_every_sec

    # -- evaluation (always off the clock) ----------------------------------------------------
    @abc.abstractmethod
    def eval_batches(self, split: str) -> Iterator[Batch]:
        """Fixed batches of `split` ("train" subset or "validation"); no randomness."""

    def extra_metric_sums(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-batch sums of metrics besides the loss (e.g. correct predictions)."""
        return {}

    @torch.no_grad()
    def eval_model(self, params: nn.Module, model_state: ModelState, rng: int) -> dict[str, float]:
        """`train/<metric>` and `validation/<metric>` for every metric, averaged per example.
        In a data-parallel run each rank evaluates its share of every batch and the sums are
        added over the ranks, so every rank gets the same values."""
        results: dict[str, float] = {}
        for split in ("train", "validation"):
            sums: dict[str, torch.Tensor] = {}
            count = 0.0
            for whole in self.eval_batches(split):
                batch = distributed.shard(whole)
                logits, _ = self.model_fn(
                    params, batch, model_state, ForwardPassMode.EVAL, rng, update_batch_norm=False
                )
                loss = self.loss_fn(batch["targets"], logits, batch.get("weights"))
                parts = {"loss": loss["summed"], **self.extra_metric_sums(logits, batch)}
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0) + value.detach().double()
                count += float(loss["n_valid_examples"])
            if distributed.current().distributed:
                keys = sorted(sums)
                totals = distributed.sum_over_ranks(
                    torch.stack([sums[k] for k in keys] + [sums[keys[0]].new_tensor(count)])
                )
                sums, count = dict(zip(keys, totals[:-1], strict=True)), float(totals[-1])
            results.update({f"{split}/{k}": float(v / count) for k, v in sums.items()})
        return results

    def has_reached_validation_target(self, eval_result: Mapping[str, float]) -> bool:
        value = eval_result[f"validation/{self.target_metric_name}"]
        if self.target_metric_lower_is_better:
            return value <= self.validation_target_value
        return value >= self.validation_target_value

    def has_reached_test_target(self, eval_result: Mapping[str, float]) -> bool:
        """AlgoPerf's test target: the harness's workloads have no test split."""
        return False

    def settings(self) -> dict[str, Any]:
        """The workload's settings besides its target, for the run record (after `setup`)."""
        return {
            "max_runtime_sec": self.max_allowed_runtime_sec,
            "step_hint": self.step_hint,
            "eval_every_steps": self.eval_every_steps,
            "eval_every_sec": self.eval_every_sec,
            "reference_speed_index": self.reference_speed_index,
            "scale_budget": self.scale_budget,
            "num_train_examples": self.num_train_examples,
        }


class Submission(abc.ABC):
    """A training algorithm: AlgoPerf's five submission functions, as methods.

    `update_params` must set `self.last_loss` to the (0-dim, still on-device) training loss of
    the step so that the runner can detect divergence when it reads the clock, without an extra
    host-device synchronisation.
    """

    name: str
    last_loss: torch.Tensor | None = None
    # Set by update_params to end training after this step (AlgoPerf's TrainingCompleteError):
    # the runner evaluates once more and ends the run (reached or not_reached).
    training_complete: bool = False
    # Why this algorithm gives a wrong result when the run is data-parallel (docs/design.md,
    # "Distributed runs"), or None when it works there: such a run is refused at start-up.
    data_parallel_refusal: str | None = None

    @abc.abstractmethod
    def get_batch_size(self, workload_name: str) -> int: ...

    @abc.abstractmethod
    def init_optimizer_state(
        self,
        workload: Workload,
        model_params: nn.Module,
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        rng: int,
    ) -> OptimizerState: ...

    @abc.abstractmethod
    def update_params(
        self,
        workload: Workload,
        current_param_container: nn.Module,
        current_params_types: dict[str, ParameterType],
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        batch: Batch,
        loss_type: LossType,
        optimizer_state: OptimizerState,
        eval_results: EvalResults,
        global_step: int,
        rng: int,
    ) -> tuple[OptimizerState, nn.Module, ModelState]: ...

    def data_selection(
        self,
        workload: Workload,
        input_queue: Iterator[Batch],
        optimizer_state: OptimizerState,
        current_param_container: nn.Module,
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        global_step: int,
        rng: int,
    ) -> Batch:
        return next(input_queue)

    def prepare_for_eval(
        self,
        workload: Workload,
        current_param_container: nn.Module,
        current_params_types: dict[str, ParameterType],
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        loss_type: LossType,
        optimizer_state: OptimizerState,
        global_step: int,
        rng: int,
    ) -> tuple[OptimizerState, nn.Module, ModelState]:
        return optimizer_state, current_param_container, model_state

    # -- harness extensions (not in AlgoPerf) -------------------------------------------------
    def attach_train_state(self, train_state: Mapping[str, Any]) -> None:
        """Called once by the runner before the first step with a read-only, live view of the
        loop's bookkeeping (AlgoPerf's `train_state`: accumulated times, whether time remains,
        whether the target was reached; as of the end of the previous step). The default
        ignores it."""
        return None

    def validate_hyperparameters(
        self, hyperparameters: Hyperparameters, workload: Workload | None = None
    ) -> None:
        """Raise a ValueError naming any unknown, ill-typed or refused hyperparameter (before
        any file is written); `workload`, when given, is built but not set up.

        The default accepts anything: submissions written against the five functions read
        their hyperparameters themselves.
        """
        return None

    def effective_hyperparameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters as the algorithm uses them, after the naming conventions of its
        search space (e.g. one_minus_beta1 -> beta1); a later key wins over an earlier one it
        aliases. Records and loggers show these. The default changes nothing."""
        return dict(values)

    def optimizer_state_dict(self, optimizer_state: OptimizerState) -> dict[str, Any]:
        """Tensors and plain values only: checkpoints load with `weights_only=True`."""
        raise NotImplementedError(f"{type(self).__name__} cannot checkpoint its optimizer state")

    def load_optimizer_state_dict(
        self, optimizer_state: OptimizerState, state_dict: dict[str, Any]
    ) -> OptimizerState:
        raise NotImplementedError(f"{type(self).__name__} cannot restore its optimizer state")
