"""Provenance of a run: the shell command that reruns it exactly, from any shell, and the version
and content hash of every module outside this repository that defines its submission or workload
(the user's own optimizer, torch.optim's, a pip-installed package's).

The command holds what decides which configs and which code a run sees: the working folder, the
interpreter, $OPTBENCH_USER_CONFIG and $PYTHONPATH, --config-dir / --config-path / --config-name
and hydra.searchpath. Never imports torch itself; never writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import inspect
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from harness import user_config

REPOSITORY = Path(__file__).resolve().parent.parent
RUN_SCRIPT = REPOSITORY / "run.py"
# Environment variables that decide which configs and which code a run sees.
ENVIRONMENT = (user_config.VARIABLE, "PYTHONPATH")


def shell_command(arguments: list[str], cwd: str | None = None) -> str:
    """`cd CWD && VAR=... PYTHON RUN.PY ARGUMENTS`: what reruns the run in a new shell."""
    environment = [
        f"{name}={shlex.quote(os.environ[name])}" for name in ENVIRONMENT if os.environ.get(name)
    ]
    return " ".join(
        [
            "cd",
            shlex.quote(cwd or os.getcwd()),
            "&&",
            *environment,
            shlex.quote(sys.executable),
            shlex.quote(str(RUN_SCRIPT)),
            *map(shlex.quote, arguments),
        ]
    )


def config_arguments() -> tuple[list[str], list[str]]:
    """The command-line arguments that chose config folders: (flags, overrides); the flags
    (--config-path when the primary config is not this repository's conf/, --config-name,
    --config-dir) go before the overrides, so that more overrides can be appended; the
    overrides are hydra.searchpath's."""
    hydra = HydraConfig.get()
    arguments: list[str] = []
    for source in hydra.runtime.config_sources:
        if source.provider == "main" and Path(source.path).resolve() != REPOSITORY / "conf":
            arguments += ["--config-path", str(Path(source.path).resolve())]
        elif source.provider == "command-line":  # --config-dir
            arguments += ["--config-dir", str(Path(source.path).resolve())]
    if hydra.job.config_name not in (None, "config"):
        arguments += ["--config-name", str(hydra.job.config_name)]
    searchpath = [o for o in hydra.overrides.hydra if o.lstrip("+~").startswith("hydra.searchpath")]
    return arguments, searchpath


def rerun_command() -> str:
    """The command that reruns this run alone (in a sweep: this task's overrides, no -m)."""
    if not HydraConfig.initialized():  # launch called directly (tests, benchmarks)
        return shell_command(sys.argv[1:])
    flags, overrides = config_arguments()
    return shell_command([*flags, *HydraConfig.get().overrides.task, *overrides])


def targets(node: Any) -> Iterator[str]:
    """Every `_target_` in a config node, depth first."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, ListConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for value in node.values():
            yield from targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from targets(value)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def describe_module(name: str) -> dict[str, Any] | None:
    """{file, sha256, distribution, version} of a module outside this repository; None for one
    of ours or one without a file."""
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    # Ours: a file of the repository, but not of a virtual environment inside it (`make`
    # creates .venv there) and not an installed package.
    installed = path.is_relative_to(Path(sys.prefix).resolve()) or any(
        part in ("site-packages", "dist-packages") for part in path.parts
    )
    if path.is_relative_to(REPOSITORY) and not installed:
        return None
    top = name.split(".")[0]
    distributions = importlib.metadata.packages_distributions().get(top, [])
    described: dict[str, Any] = {"file": str(path), "sha256": sha256(path)}
    if distributions:
        described["distribution"] = distributions[0]
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            described["version"] = importlib.metadata.version(distributions[0])
    return described


def external_code(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The modules outside this repository that define the classes the run's submission and
    workload name by `_target_` (the module where each class is written, not the one it is
    re-exported from), by module name."""
    found: dict[str, dict[str, Any]] = {}
    for target in [*targets(cfg.submission), *targets(cfg.workload)]:
        try:
            module = inspect.getmodule(get_object(target))
        except Exception:  # not importable: the run fails on it with its own message
            continue
        if module is None or module.__name__ in found:
            continue
        described = describe_module(module.__name__)
        if described is not None:
            found[module.__name__] = described
    return found
