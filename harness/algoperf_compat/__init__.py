"""Stand-ins for the modules AlgoPerf submission files import, when AlgoPerf is not installed.

An AlgoPerf PyTorch submission file (`submissions/algoperf.py` runs one) starts with imports such
as `from algoperf import spec`, `from algoperf.pytorch_utils import pytorch_setup` or, in files
written before AlgoPerf 0.5, the same under `algorithmic_efficiency`; most also
`from absl import logging`. `provide_modules()` makes those imports work without installing
anything: for each top-level name that cannot be found on Python's path it puts this package's
stand-in into `sys.modules` (`algoperf` and `algorithmic_efficiency` share one, so their enums
are the same objects). A name that is installed is left alone: the real package is used,
untouched. Nothing here is imported unless an AlgoPerf file is run.

The stand-ins (`harness/algoperf_compat/algoperf/`, `harness/algoperf_compat/absl/`) cover
what PyTorch submission files use: `spec`, `pytorch_utils`, `param_utils`, `random_utils`, and
`absl.logging`. Anything else (`algoperf.workloads`, `algoperf.checkpoint_utils`, jax) is not
there, and importing it fails with Python's own "No module named ..." error.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

# Top-level name a file imports -> the stand-in package served under it, and its submodules.
STAND_INS: dict[str, tuple[str, tuple[str, ...]]] = {
    "algoperf": (
        "harness.algoperf_compat.algoperf",
        ("spec", "pytorch_utils", "param_utils", "random_utils"),
    ),
    "algorithmic_efficiency": (
        "harness.algoperf_compat.algoperf",
        ("spec", "pytorch_utils", "param_utils", "random_utils"),
    ),
    "absl": ("harness.algoperf_compat.absl", ("logging",)),
}
_provided: set[str] = set()  # the names this process serves with a stand-in


def is_installed(name: str) -> bool:
    """Whether a real module or package `name` can be found (or is already imported)."""
    if name in _provided:
        return False
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def provide_modules() -> list[str]:
    """Serve a stand-in for every name of STAND_INS that is not installed; returns the names
    served by a stand-in (sorted). Idempotent."""
    for name, (package, submodules) in STAND_INS.items():
        if name in _provided or is_installed(name):
            continue
        sys.modules[name] = importlib.import_module(package)
        for submodule in submodules:
            sys.modules[f"{name}.{submodule}"] = importlib.import_module(f"{package}.{submodule}")
        _provided.add(name)
    return sorted(_provided)


def provided() -> list[str]:
    """The names this process serves with a stand-in (empty until provide_modules ran)."""
    return sorted(_provided)
