"""An AlgoPerf PyTorch submission file, run unmodified (docs/algoperf_submissions.md).

    python run.py submission=algoperf submission.file=PATH/submission.py \\
        submission.search_space=PATH/tuning_search_space.json workload=digits

`AlgoPerfFile` loads the file with importlib and calls its five functions the way AlgoPerf's
runner does: `get_batch_size(workload_name)`, `init_optimizer_state`, `data_selection`
(positional arguments), `update_params` and `prepare_for_eval` (keyword arguments, with
`train_state` when `update_params` takes it). What the file receives:
- `workload`: a view of the harness's workload (`WorkloadView`) with AlgoPerf's attributes:
  `model_params_types` and `param_shapes` as properties, `loss_type` and parameter types in the
  file's own `spec` enums, `model_fn` that accepts (and ignores) `dropout_rate`;
- `hyperparameters`: a namedtuple `Hyperparameters` of the run's values, or None when there are
  none (a self-tuning run, as AlgoPerf's runner passes);
- `rng`: a numpy uint32 array of 2, derived from the harness's seed for that call;
- `eval_results`: the (global_step, metrics) of every evaluation so far.
When AlgoPerf is not installed, `algoperf.*`, `algorithmic_efficiency.*` and `absl.logging`
come from harness/algoperf_compat. The optimizer state the file returns is checkpointed by
walking it: every object with `state_dict()` (optimizers, LR schedulers, modules), tensors,
numpy arrays and plain values; anything else is named in a warning and rebuilt on resume.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import functools
import importlib
import importlib.util
import inspect
import json
import keyword
import logging
import operator
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from harness import environment
from harness.algoperf_compat import files, provide_modules
from harness.algoperf_compat.algoperf import random_utils
from harness.errors import UserError
from harness.spec import (
    Batch,
    EvalResults,
    ForwardPassMode,
    Hyperparameters,
    LossType,
    ModelState,
    OptimizerState,
    ParameterType,
    Submission,
    Workload,
)
from harness.tuning import SearchSpaceError, copy_search_space, trial_point, validate_search_space

log = logging.getLogger("harness")

REQUIRED_FUNCTIONS = ("get_batch_size", "init_optimizer_state", "update_params", "data_selection")
DOCS = "docs/algoperf_submissions.md"
INITIAL_TRAIN_STATE = {  # the keys of harness.runner.TrainStateView, before the first step
    "validation_goal_reached": False,
    "test_goal_reached": False,
    "is_time_remaining": True,
    "last_eval_time": 0.0,
    "training_complete": False,
    "accumulated_submission_time": 0.0,
    "accumulated_eval_time": 0.0,
    "accumulated_logging_time": 0.0,
    "global_step": 0,
}
SEARCH_SPACE_FORMS = (
    "AlgoPerf's tuning_search_space.json is either ranges by name, "
    '{"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"}, "beta2": '
    '{"feasible_points": [0.99, 0.999]}}, or a list of points, [{"learning_rate": 0.001, '
    '"beta2": 0.999}, ...]'
)
JAX_MODULES = {"jax", "jaxlib", "flax", "optax"}
STAND_IN_MODULES = (
    "algoperf.spec, algoperf.pytorch_utils, algoperf.param_utils, algoperf.random_utils (and "
    "the same under algorithmic_efficiency) and absl.logging"
)


# -- loading the file --------------------------------------------------------------------------
def existing_file(value: Any, setting: str, what: str, example: str) -> Path:
    """The path of an existing file, or a UserError that says what to give."""
    path = Path(str(value)).expanduser()
    if not path.is_file():
        reason = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(
            f"{setting}={value}: {path.resolve()} {reason}. Give the path of {what}, e.g. "
            f"{setting}={example} (a relative path starts from the current folder)."
        )
    return path.resolve()


def _import_failure(path: Path, error: ImportError) -> str:
    if error.name is None and "relative import" in str(error):
        return (
            f"submission.file={path} uses a relative import (from . import ...), which needs "
            "the package around it; the harness loads the file on its own, with its folder on "
            "Python's path. Import the module beside it by its name (import x, from x import "
            "y) instead (docs/algoperf_submissions.md, 'Not supported')."
        )
    missing = error.name or str(error)
    root = missing.split(".")[0]
    if root in JAX_MODULES:
        hint = (
            "A JAX submission cannot run here: the harness runs PyTorch files only. (If this is "
            "a PyTorch file, jax is needed by an installed AlgoPerf package's own imports: "
            "install jax, or uninstall algoperf to use the harness's stand-in.)"
        )
    elif root in ("algoperf", "algorithmic_efficiency", "absl"):
        hint = (
            f"AlgoPerf is not installed, and the harness's stand-in provides only "
            f"{STAND_IN_MODULES}. Install AlgoPerf (pip install algoperf) to run files that "
            "need more of it; the harness then uses it as it is."
        )
    else:
        hint = f"Install it into this environment (.venv/bin/pip install {root}) and run again."
    return f"submission.file={path} imports {missing}, which cannot be imported here. {hint}"


def _line_in(path: Path, error: BaseException) -> str:
    """' (line N)' of the deepest frame of the traceback inside `path`, if any."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    return f" (line {frames[-1].lineno})" if frames else ""


def load_file(path: Path, module_name: str) -> ModuleType:
    """Execute the file as module `module_name`; its folder goes on Python's path (at the end)
    so that it can import modules beside it. Failures are UserErrors."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"submission.file={path} is not a Python file (it must end in .py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as error:
        sys.modules.pop(module_name, None)
        raise UserError(_import_failure(path, error)) from error
    except SyntaxError as error:
        sys.modules.pop(module_name, None)
        raise UserError(
            f"submission.file={path} cannot be loaded: SyntaxError at line {error.lineno}: "
            f"{error.msg}. Fix the file and run again."
        ) from error
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise UserError(
            f"submission.file={path} raised {type(error).__name__} while it was loaded"
            f"{_line_in(path, error)}: {error}. Fix the file (run `python {path}` to see the "
            "traceback) and run again."
        ) from error
    return module


def required_functions(path: Path, module: ModuleType) -> dict[str, Any]:
    """The file's submission functions by name; a UserError naming those it lacks."""
    found = {
        name: getattr(module, name, None) for name in (*REQUIRED_FUNCTIONS, "prepare_for_eval")
    }
    missing = [name for name in REQUIRED_FUNCTIONS if not callable(found[name])]
    if missing:
        raise UserError(
            f"submission.file={path} lacks {', '.join(missing)}. An AlgoPerf submission file "
            f"defines the functions {', '.join(REQUIRED_FUNCTIONS)} (prepare_for_eval is "
            f"optional) at its top level; see {DOCS}."
        )
    return {name: function for name, function in found.items() if callable(function)}


def spec_of(module: ModuleType) -> ModuleType:
    """The `spec` module the file imported (AlgoPerf's, or the stand-in served under its name);
    the enums it hands the file come from it."""
    for value in vars(module).values():
        if (
            isinstance(value, ModuleType)
            and value.__name__.endswith(".spec")
            and hasattr(value, "ParameterType")
        ):
            return value
    for name in ("algoperf.spec", "algorithmic_efficiency.spec"):
        if name in sys.modules:
            return sys.modules[name]
    return importlib.import_module("harness.algoperf_compat.algoperf.spec")


def load_search_space(value: Any) -> tuple[Path, dict[str, Any] | list[dict[str, Any]]]:
    path = existing_file(
        value,
        "submission.search_space",
        "its search space in AlgoPerf's JSON format",
        "algorithms/adamw/tuning_search_space.json",
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(
            f"submission.search_space={value} is not valid JSON: {error.msg} at line "
            f"{error.lineno}, column {error.colno}. {SEARCH_SPACE_FORMS}. Fix the file "
            f"(`python -m json.tool {path}` points at the error) and run again."
        ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"submission.search_space={value} cannot be read: {error}") from error
    return path, data


# -- what the file is given ------------------------------------------------------------------------
def rng_key(seed: int) -> np.ndarray:
    """The `rng` of one call: a numpy uint32 array of 2, like AlgoPerf's PyTorch runner's."""
    return random_utils.PRNGKey(seed)


@functools.lru_cache(maxsize=1)  # data_selection and update_params of a step share the split
def step_keys(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(data_selection's, update_params's) keys of one step: two keys split from the step's,
    as AlgoPerf's runner splits its step key, so the two calls never share a stream."""
    data_key, update_key = random_utils.split(rng_key(seed), 2)
    return data_key, update_key


@functools.cache
def _hyperparameters_class(names: tuple[str, ...]) -> type:
    return collections.namedtuple("Hyperparameters", names)


def file_hyperparameters(values: Mapping[str, Any]) -> tuple | None:
    """The namedtuple AlgoPerf files read (`hyperparameters.learning_rate`,
    `hyperparameters._asdict()`); None when there are none (self-tuning)."""
    if not values:
        return None
    return _hyperparameters_class(tuple(values))(**values)


def bad_attribute_names(names: Iterator[str] | list[str]) -> list[str]:
    return [
        name
        for name in names
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_")
    ]


def member(enum_class: Any, name: str, fallback: str | None = None) -> Any:
    """`enum_class[name]` (or its `fallback` member): enums match by name across the harness's,
    the stand-in's and an installed AlgoPerf's."""
    for candidate in (name, fallback):
        if candidate is not None and candidate in getattr(enum_class, "__members__", {}):
            return enum_class[candidate]
    raise ValueError(f"{enum_class.__name__} has no member {name!r}")


ATTENTION_WORDS = re.compile(r"(^|[._])(attn|attention|self_attn|mha)($|[._])")


def _attention_kind(module_name: str, param_name: str) -> str:
    leaf = module_name.rsplit(".", 1)[-1]
    if "bias" in param_name:
        return "ATTENTION_BIAS"
    if param_name == "in_proj_weight" or leaf in ("qkv", "in_proj", "c_attn"):
        return "ATTENTION_QKV"
    if leaf in ("kv", "kv_proj"):
        return "ATTENTION_KV"
    if param_name == "q_proj_weight" or leaf in ("q", "q_proj", "query"):
        return "ATTENTION_Q"
    if param_name == "k_proj_weight" or leaf in ("k", "k_proj", "key"):
        return "ATTENTION_K"
    if param_name == "v_proj_weight" or leaf in ("v", "v_proj", "value"):
        return "ATTENTION_V"
    if leaf in ("out", "out_proj", "proj", "o", "o_proj", "c_proj"):
        return "ATTENTION_OUT"
    return "WEIGHT"


def algoperf_param_kinds(model: nn.Module) -> dict[str, str]:
    """AlgoPerf's ParameterType name of every parameter, from the module that owns it."""
    norms = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
    kinds: dict[str, str] = {}
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            if isinstance(module, nn.Embedding):
                kind = "EMBEDDING"
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                kind = "BATCH_NORM_SCALE" if param_name == "weight" else "BATCH_NORM_BIAS"
            elif isinstance(module, norms):
                kind = "LAYER_NORM_SCALE" if param_name == "weight" else "LAYER_NORM_BIAS"
            elif isinstance(module, nn.MultiheadAttention) or ATTENTION_WORDS.search(module_name):
                kind = _attention_kind(module_name, param_name)
            elif param_name == "bias":
                kind = "BIAS"
            elif isinstance(module, nn.modules.conv._ConvNd):
                kind = "CONV_WEIGHT"
            else:
                kind = "WEIGHT"
            kinds[full_name] = kind
    return kinds


FALLBACK_KINDS = {"ATTENTION_BIAS": "BIAS", "CONV_WEIGHT": "WEIGHT"}


class WorkloadView:
    """The harness's workload as an AlgoPerf file sees it (AlgoPerf's `spec.Workload`).

    `model_params_types` and `param_shapes` are properties of the model the run trains, in the
    file's `spec` types; `loss_type` is the file's `spec.LossType`; `model_fn` takes AlgoPerf's
    keyword arguments (a `dropout_rate` is accepted and ignored: the harness's models have no
    dropout) and the file's `ForwardPassMode`. Everything else is the workload's own
    (`step_hint`, `max_allowed_runtime_sec`, `target_metric_name`, `num_train_examples`, ...).
    The first `loss_fn` of each step is kept as the step's loss, for divergence detection.
    """

    def __init__(self, workload: Workload, spec: ModuleType, model: nn.Module) -> None:
        # Underscored: every other attribute is the workload's (a file may read any of them).
        self._workload = workload
        self._model = model
        self.model_params_types = {
            name: member(spec.ParameterType, kind, FALLBACK_KINDS.get(kind, "WEIGHT"))
            for name, kind in algoperf_param_kinds(model).items()
        }
        shape_tuple = getattr(spec, "ShapeTuple", tuple)
        self.param_shapes = {
            name: shape_tuple(tuple(param.shape)) for name, param in model.named_parameters()
        }
        self.loss_type = member(spec.LossType, workload.loss_type.name)
        self.step_loss: torch.Tensor | None = None
        self._keep_loss = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_workload", "_model"):
            raise AttributeError(name)
        return getattr(self._workload, name)

    def views(self, workload: Workload, model: nn.Module) -> bool:
        """Whether this is the view of `workload` training `model`."""
        return self._workload is workload and self._model is model

    def start_step(self) -> None:
        self.step_loss, self._keep_loss = None, True

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: Batch,
        model_state: ModelState,
        mode: Any,
        rng: Any,
        update_batch_norm: bool = True,
        dropout_rate: float | None = None,
        aux_dropout_rate: float | None = None,
    ) -> tuple[torch.Tensor, ModelState]:
        if isinstance(mode, enum.Enum) and not isinstance(mode, ForwardPassMode):
            mode = member(ForwardPassMode, mode.name)
        return self._workload.model_fn(
            params,
            augmented_and_preprocessed_input_batch,
            model_state,
            mode,
            rng,
            update_batch_norm,
        )

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        losses = self._workload.loss_fn(label_batch, logits_batch, mask_batch, label_smoothing)
        if self._keep_loss:
            self._keep_loss = False
            self.step_loss = losses["summed"].detach() / losses["n_valid_examples"]
        return losses

    def output_activation_fn(self, logits_batch: torch.Tensor, framework: str) -> torch.Tensor:
        if self._workload.loss_type is LossType.SOFTMAX_CROSS_ENTROPY:
            return torch.softmax(logits_batch, dim=-1)
        if self._workload.loss_type is LossType.SIGMOID_CROSS_ENTROPY:
            return torch.sigmoid(logits_batch)
        return logits_batch


# -- checkpointing the file's optimizer state --------------------------------------------------
PLAIN = (bool, int, float, str, type(None))


def _has_state_dict(value: Any) -> bool:
    return callable(getattr(value, "state_dict", None)) and callable(
        getattr(value, "load_state_dict", None)
    )


def saved_tree(value: Any, path: str, unsaved: list[str]) -> Any:
    """`value` as tensors and plain values (torch.load(weights_only=True) reads them back):
    state_dict() of what has one, a generator's state, containers walked; anything else is
    added to `unsaved` and saved as None."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, torch.Generator):
        return {"generator_state": value.get_state()}
    if _has_state_dict(value) and not isinstance(value, type):
        try:
            state = value.state_dict()
        except Exception as error:  # e.g. DistributedShampoo: NotImplementedError on purpose
            unsaved.append(f"{path} (a {type(value).__name__}: state_dict() raised {error!r})")
            return None
        return saved_tree(state, f"{path}.state_dict()", unsaved)  # only what loads back
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, Mapping):
        return {key: saved_tree(item, f"{path}[{key!r}]", unsaved) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [saved_tree(item, f"{path}[{i}]", unsaved) for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    unsaved.append(f"{path} (a {type(value).__name__})")
    return None


def restored_tree(fresh: Any, saved: Any, path: str) -> Any:
    """`fresh` (as init_optimizer_state built it) with the state of `saved` loaded into it."""

    def mismatch() -> ValueError:
        return ValueError(
            f"the checkpoint's optimizer state does not fit {path} of the one the file's "
            f"init_optimizer_state builds ({type(fresh).__name__} there, "
            f"{type(saved).__name__} in the checkpoint); was the file changed?"
        )

    if isinstance(fresh, torch.Tensor):
        if not isinstance(saved, torch.Tensor):
            raise mismatch()
        if fresh.shape == saved.shape:
            with torch.no_grad():
                fresh.copy_(saved)
            return fresh
        return saved.to(fresh.device)
    if isinstance(fresh, torch.Generator):
        fresh.set_state(saved["generator_state"])
        return fresh
    if _has_state_dict(fresh) and not isinstance(fresh, type):
        if saved is not None:  # None: its state_dict() failed when saved (named then)
            fresh.load_state_dict(saved)
        return fresh
    if isinstance(fresh, np.ndarray):
        return np.asarray(saved.numpy(), dtype=fresh.dtype)
    if isinstance(fresh, np.generic):
        return type(fresh)(saved)
    if isinstance(fresh, PLAIN):
        return saved
    if isinstance(fresh, Mapping):
        if not isinstance(saved, Mapping):
            raise mismatch()
        restored = dict(fresh)
        for key, item in saved.items():
            restored[key] = (
                restored_tree(fresh[key], item, f"{path}[{key!r}]") if key in fresh else item
            )
        if isinstance(fresh, dict):
            fresh.update(restored)
            return fresh
        return type(fresh)(restored) if isinstance(fresh, collections.OrderedDict) else restored
    if isinstance(fresh, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(fresh):
            raise mismatch()
        pairs = enumerate(zip(fresh, saved, strict=True))
        items = [restored_tree(f, s, f"{path}[{i}]") for i, (f, s) in pairs]
        if isinstance(fresh, list):
            fresh[:] = items
            return fresh
        return type(fresh)(*items) if hasattr(fresh, "_fields") else type(fresh)(items)
    return fresh  # was not saved: as init_optimizer_state built it


# -- the submission --------------------------------------------------------------------------------
class AlgoPerfFile(Submission):
    """An AlgoPerf PyTorch submission file and its search space (conf/submission/algoperf.yaml)."""

    def __init__(
        self,
        name: str,
        file: str,
        search_space: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        batch_size: int | Mapping[str, int] | None = None,
        ruleset: Mapping[str, Any] | None = None,
        device: str = "auto",
        sha256: str | None = None,
    ) -> None:
        """
        Args:
            name: the submission's name in results (the YAML's default: `algoperf_<label>_<hash>`,
                harness/algoperf_compat/files.py).
            file: path of the submission file (`.py`).
            search_space: path of its tuning_search_space.json; None for a self-tuning file.
            hyperparameters: fixed values, over the search space's (a trial's point wins).
            batch_size: one size for every workload, a mapping from workload name to size, or
                None to ask the file's get_batch_size (falling back to the workload's).
            ruleset: the run's ruleset settings (name, tune): `self` takes no search space;
                a ruleset that does not tune runs the search space's first point.
            device: the run's device setting, which the stand-in's pytorch_setup() reports.
            sha256: files.sources_sha256 of the file and search space, as the config resolved it.
        """
        self.name = name
        ruleset = dict(ruleset or {})
        self.path = existing_file(
            file,
            "submission.file",
            "an AlgoPerf PyTorch submission file",
            "algorithms/adamw/pytorch/submission.py",
        )
        stand_ins = provide_modules()
        if "algoperf" in stand_ins or "algorithmic_efficiency" in stand_ins:
            from harness.algoperf_compat.algoperf import pytorch_utils

            pytorch_utils.use_device(environment.resolve_device(device))
        digest = files.sha256_of(self.path) or ""
        label = re.sub(r"\W", "_", files.file_label(self.path))
        self.module = load_file(self.path, f"algoperf_submission_{label}_{digest[:12]}")
        self.functions = required_functions(self.path, self.module)
        self.spec = spec_of(self.module)
        update_parameters = inspect.signature(self.functions["update_params"]).parameters
        self.update_takes_train_state = "train_state" in update_parameters

        self.search_space_path: Path | None = None
        space: Any = {}
        if search_space is not None:
            self.search_space_path, space = load_search_space(search_space)
        owner = f"submission {name} ({self.search_space_path})"
        try:
            self.search_space = validate_search_space(space, owner=owner) if space else {}
        except SearchSpaceError as error:
            raise UserError(str(error)) from error
        self.search_space = copy_search_space(self.search_space)
        if ruleset.get("name") == "self" and self.search_space:
            raise UserError(
                "ruleset=self runs a file with its own hyperparameters (AlgoPerf's self-tuning "
                "ruleset passes hyperparameters=None), so it takes no search space: drop "
                f"submission.search_space={search_space}, or use ruleset=external to tune over it."
            )
        if ruleset.get("tune") and not self.search_space:
            raise UserError(
                f"ruleset={ruleset.get('name')} tunes hyperparameters over the file's search "
                "space, but none was given: add submission.search_space=PATH/"
                "tuning_search_space.json, or use ruleset=self for a self-tuning file."
            )
        first_point: dict[str, Any] = {}
        if self.search_space and not ruleset.get("tune"):
            first_point = trial_point(self.search_space, 0, 0, owner=owner)
        self.fixed_hyperparameters = dict(hyperparameters or {})
        # Without tuning: the first point (trial 0 of study 0); fixed values over it.
        self.default_hyperparameters = {**first_point, **self.fixed_hyperparameters}
        self.batch_size = batch_size

        actual = files.sources_sha256(self.path, self.search_space_path)
        if sha256 is not None and sha256 != actual:
            raise UserError(
                f"submission.sha256 is {sha256}, but {self.path} and its search space hash to "
                f"{actual}: the file changed while the run started (run again), or "
                "submission.sha256 was set by hand (leave it to the harness)."
            )
        self.submission_file = {  # the record's submission_file
            "path": str(self.path),
            "sha256": digest,
            "search_space": None if self.search_space_path is None else str(self.search_space_path),
            "search_space_sha256": files.sha256_of(self.search_space_path),
        }
        self.view: WorkloadView | None = None
        # The runner attaches its live train_state; until then (outside a run) the initial one.
        self.train_state: Mapping[str, Any] = MappingProxyType(dict(INITIAL_TRAIN_STATE))
        self.eval_results: EvalResults = []
        self._batch_sizes: dict[str, int | None] = {}
        self._hyperparameters: tuple[Any, Any] = (None, None)
        self._unsaved_said: set[str] = set()

    # -- hyperparameters ------------------------------------------------------------------------
    def validate_hyperparameters(
        self, hyperparameters: Hyperparameters, workload: Workload | None = None
    ) -> None:
        bad = bad_attribute_names(list(vars(hyperparameters)))
        if bad:
            raise ValueError(
                f"submission {self.name}: hyperparameter name(s) {', '.join(map(repr, bad))} "
                "cannot be read by an AlgoPerf file (it reads hyperparameters.<name>): use "
                "letters, digits and _, not starting with _ or a digit"
            )

    def hyperparameters_for_file(self, hyperparameters: Hyperparameters) -> tuple | None:
        """The run's hyperparameters as the namedtuple the file reads (built once per run)."""
        given, converted = self._hyperparameters
        if given is not hyperparameters:
            converted = file_hyperparameters(vars(hyperparameters))
            self._hyperparameters = (hyperparameters, converted)
        return converted

    # -- the five functions -----------------------------------------------------------------------
    def get_batch_size(self, workload_name: str) -> int | None:
        if workload_name not in self._batch_sizes:
            self._batch_sizes[workload_name] = self._choose_batch_size(workload_name)
        return self._batch_sizes[workload_name]

    def _choose_batch_size(self, workload_name: str) -> int | None:
        """The YAML's batch_size, else the file's get_batch_size for the workload's name or its
        base name (digits_gelu -> digits), else None: the workload's own. The log says which."""
        if self.batch_size is not None:
            size = (
                self.batch_size.get(workload_name)
                if isinstance(self.batch_size, Mapping)
                else self.batch_size
            )
            if size is not None:
                log.info("batch size %s: submission.batch_size (not the file's)", size)
                return size
        names = [workload_name]
        base = workload_name.split("_", 1)[0]
        if base != workload_name:
            names.append(base)
        refusals = []
        for name in names:
            try:
                size = self.functions["get_batch_size"](name)
            except (ValueError, LookupError, NotImplementedError) as error:
                refusals.append(f"get_batch_size({name!r}) raised {type(error).__name__}: {error}")
                continue
            except Exception as error:
                raise UserError(
                    f"submission.file={self.path}: get_batch_size({name!r}) raised "
                    f"{type(error).__name__}{_line_in(self.path, error)}: {error}"
                ) from error
            if size is None:
                refusals.append(f"get_batch_size({name!r}) returned None")
                continue
            if not isinstance(size, bool):
                with contextlib.suppress(TypeError):  # not an integer: launch names the value
                    size = operator.index(size)
            log.info("batch size %s: the file's get_batch_size(%r)", size, name)
            return size
        log.info(
            "batch size: the workload's own, since the file does not know %s (%s)",
            " or ".join(repr(name) for name in names),
            "; ".join(refusals),
        )
        return None

    def _view(self, workload: Workload, model: nn.Module) -> WorkloadView:
        view = self.view
        if view is None or not view.views(workload, model):
            view = self.view = WorkloadView(workload, self.spec, model)
            if isinstance(getattr(self.spec, "Workload", None), type):
                register = getattr(self.spec.Workload, "register", None)
                if register is not None:
                    register(WorkloadView)  # isinstance(workload, spec.Workload) holds
        return view

    def init_optimizer_state(
        self,
        workload: Workload,
        model_params: nn.Module,
        model_state: ModelState,
        hyperparameters: Hyperparameters,
        rng: int,
    ) -> OptimizerState:
        view = self._view(workload, model_params)
        return self.functions["init_optimizer_state"](
            view,
            model_params,
            model_state,
            self.hyperparameters_for_file(hyperparameters),
            rng_key(rng),
        )

    def attach_train_state(self, train_state: Mapping[str, Any]) -> None:
        self.train_state = train_state

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
    ) -> tuple[OptimizerState, nn.Module, ModelState]:
        view = self._view(workload, current_param_container)
        self.eval_results = eval_results
        arguments = dict(
            workload=view,
            current_param_container=current_param_container,
            current_params_types=view.model_params_types,
            model_state=model_state,
            hyperparameters=self.hyperparameters_for_file(hyperparameters),
            batch=batch,
            loss_type=view.loss_type,
            optimizer_state=optimizer_state,
            eval_results=eval_results,
            global_step=global_step,
            rng=step_keys(rng)[1],
        )
        if self.update_takes_train_state:
            arguments["train_state"] = self.train_state
        view.start_step()
        try:
            returned = self.functions["update_params"](**arguments)
        except Exception as error:
            if type(error).__name__ != "TrainingCompleteError":
                raise
            log.info("the file ended training at step %d (TrainingCompleteError)", global_step)
            self.training_complete = True
            self.last_loss = view.step_loss
            return optimizer_state, current_param_container, model_state
        self.last_loss = view.step_loss
        return self._three(returned, "update_params")

    def _three(self, returned: Any, function: str) -> tuple[Any, Any, Any]:
        if not isinstance(returned, tuple) or len(returned) != 3:
            raise TypeError(
                f"{self.path}: {function} must return (optimizer_state, "
                f"current_param_container, model_state), got {type(returned).__name__}"
            )
        return returned

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
        return self.functions["data_selection"](
            self._view(workload, current_param_container),
            input_queue,
            optimizer_state,
            current_param_container,
            model_state,
            self.hyperparameters_for_file(hyperparameters),
            global_step,
            step_keys(rng)[0],
        )

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
        prepare = self.functions.get("prepare_for_eval")
        if prepare is None:
            return optimizer_state, current_param_container, model_state
        view = self._view(workload, current_param_container)
        returned = prepare(
            workload=view,
            current_param_container=current_param_container,
            current_params_types=view.model_params_types,
            model_state=model_state,
            hyperparameters=self.hyperparameters_for_file(hyperparameters),
            loss_type=view.loss_type,
            optimizer_state=optimizer_state,
            eval_results=self.eval_results,
            global_step=global_step,
            rng=rng_key(rng),
        )
        return self._three(returned, "prepare_for_eval")

    # -- checkpointing ----------------------------------------------------------------------------
    def optimizer_state_dict(self, optimizer_state: OptimizerState) -> dict[str, Any]:
        unsaved: list[str] = []
        tree = saved_tree(optimizer_state, "optimizer_state", unsaved)
        new = [entry for entry in unsaved if entry not in self._unsaved_said]
        if new:
            self._unsaved_said.update(new)
            log.warning(
                "checkpoint: %s of the file's optimizer state cannot be saved (no state_dict(), "
                "not a tensor, array or plain value); a resumed run gets it as "
                "init_optimizer_state builds it, so it may not continue exactly as an "
                "uninterrupted run would",
                ", ".join(new),
            )
        return {"tree": tree, "unsaved": unsaved}

    def load_optimizer_state_dict(
        self, optimizer_state: OptimizerState, state_dict: dict[str, Any]
    ) -> OptimizerState:
        return restored_tree(optimizer_state, state_dict["tree"], "optimizer_state")
