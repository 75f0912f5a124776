"""`algoperf.spec` for PyTorch submission files: the enums, type names and exception they use.

Written for this harness after AlgoPerf's public API (names and meaning, not its code). The
forward-pass modes and loss types are the harness's own (harness/spec.py), so that a mode a file
passes to `workload.model_fn` is the one the workloads compare against. Parameter types are
AlgoPerf's list, which differs from the harness's; submissions/algoperf.py hands a file
`current_params_types` and `workload.model_params_types` in these.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

from harness.spec import ForwardPassMode, LossType

__all__ = [
    "DataSelectionFn",
    "ForwardPassMode",
    "Hyperparameters",
    "InitOptimizerFn",
    "LossType",
    "ModelAuxiliaryState",
    "ModelInitState",
    "OptimizerState",
    "ParameterContainer",
    "ParameterKey",
    "ParameterShapeTree",
    "ParameterType",
    "ParameterTypeTree",
    "PrepareForEvalFn",
    "RandomState",
    "Shape",
    "ShapeTuple",
    "Steps",
    "Tensor",
    "Timing",
    "TrainingCompleteError",
    "UpdateParamsFn",
    "UpdateReturn",
    "Workload",
]


class ParameterType(enum.Enum):
    """The role of a parameter, in AlgoPerf's vocabulary (and with AlgoPerf's values)."""

    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12  # query, key and value projections in one matrix
    ATTENTION_KV = 13  # key and value projections in one matrix
    ATTENTION_BIAS = 14


class ShapeTuple:
    """A parameter's shape, wrapped so that tree utilities treat it as one leaf."""

    def __init__(self, shape_tuple: tuple[int, ...]) -> None:
        self.shape_tuple = tuple(shape_tuple)

    def __repr__(self) -> str:
        return f"ShapeTuple({self.shape_tuple})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeTuple) and self.shape_tuple == other.shape_tuple

    def __hash__(self) -> int:
        return hash(self.shape_tuple)


Tensor = Any
Shape = tuple[int, ...] | ShapeTuple
ParameterKey = str
ParameterShapeTree = dict[ParameterKey, Any]
ParameterContainer = nn.Module | dict[ParameterKey, Any]
ParameterTypeTree = dict[ParameterKey, Any]
RandomState = Any  # here: a numpy uint32 array of 2 (random_utils), as AlgoPerf's PyTorch runner
OptimizerState = dict[str, Any] | tuple[Any, Any]
Hyperparameters = Any  # a namedtuple of the trial's values; None for a self-tuning run
Timing = int
Steps = int
ModelAuxiliaryState = Any
ModelInitState = tuple[ParameterContainer, ModelAuxiliaryState]
UpdateReturn = tuple[OptimizerState, ParameterContainer, ModelAuxiliaryState]
InitOptimizerFn = Callable[..., OptimizerState]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., dict[str, Tensor]]
InputQueue = Iterator[dict[str, Tensor]]


class Workload(abc.ABC):  # noqa: B024 (a marker: files only annotate with it)
    """What a submission file receives as `workload`: a view of the harness's workload with
    AlgoPerf's attributes (submissions/algoperf.py registers it as a virtual subclass)."""


class TrainingCompleteError(Exception):
    """Raised by `update_params` to end training early; the run gets one last evaluation."""
