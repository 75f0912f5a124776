"""Types of the top-level run configuration (values and comments live in conf/config.yaml).

Importing this module registers them with Hydra's ConfigStore as `run_schema`, so a mistyped key
or a wrong type on the command line fails at start-up with OmegaConf's message, before any data
is loaded; and registers the `run_subdir` resolver, through which conf/config.yaml names a run's
folder with harness/results.py's layout (and the `algoperf_name` and `algoperf_sha256` resolvers
of conf/submission/algoperf.yaml, harness/algoperf_compat/files.py). Both happen at import so
that every process that composes or resolves the config (run.py, a Slurm job, a test) has them;
for the same reason registering also puts the folders of $OPTBENCH_USER_CONFIG on Python's path
(harness/user_config.py), so the user's `_target_`s import in every such process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from harness import results, user_config
from harness.algoperf_compat import files as algoperf_files


@dataclass
class RulesetConfig:
    name: str = MISSING
    tune: bool = MISSING  # external: hyperparameters from the quasi-random search space
    budget_factor: float = MISSING  # multiplies the workload's max_runtime_sec
    num_studies: int | None = MISSING  # null: no fixed number (studies are repetitions)
    num_trials: int = MISSING


@dataclass
class RunConfig:
    workload: Any = MISSING
    submission: Any = MISSING
    ruleset: RulesetConfig = MISSING
    logger: Any = MISSING
    experiment_name: str = MISSING
    results_dir: str = MISSING
    study: int = MISSING
    trial: int = MISSING
    seed: int | None = MISSING
    device: str = MISSING
    threads: int | None = MISSING
    stop_at_target: bool = MISSING
    max_steps: int | None = MISSING
    divergence_factor: float = MISSING
    checkpoint: bool = MISSING
    keep_checkpoint: bool = MISSING
    force: bool = MISSING
    skip_done: bool | None = MISSING
    progress: str = MISSING


def register() -> None:
    user_config.activate()  # $OPTBENCH_USER_CONFIG's folders on Python's path, for _target_s
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    OmegaConf.register_new_resolver("run_subdir", results.run_subdir, replace=True)
    # conf/submission/algoperf.yaml: the name and content hash of an AlgoPerf submission file.
    OmegaConf.register_new_resolver("algoperf_name", algoperf_files.resolve_name, replace=True)
    OmegaConf.register_new_resolver("algoperf_sha256", algoperf_files.resolve_sha256, replace=True)


register()
