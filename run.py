"""Train one submission on one workload and report time-to-target (add -m for a sweep).

python run.py submission=lion workload=digits
python run.py --help

Only light modules are imported before Hydra has composed the config, so --help, --cfg and
errors in the command line answer at once; torch and the rest load when a run starts.
"""

import sys

import hydra
from omegaconf import DictConfig

from harness import checks, config, ranks, user_config
from harness.errors import UserError


def faster_help() -> None:
    """Hydra's --help lists each config group's choices through a fresh config repository per
    question (about 80 of them, each a deep copy of the search path's configs: seconds on a busy
    machine). Within one --help nothing changes between questions, so the repository without a
    primary config and overrides is made once. Best effort: on another Hydra, help is as slow as
    before but the same."""
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
    except ImportError:
        return
    original = ConfigLoaderImpl._parse_overrides_and_create_caching_repo
    made: dict = {}

    def once(self, config_name, overrides):  # type: ignore[no-untyped-def]
        if config_name is not None or overrides:
            return original(self, config_name, overrides)
        if id(self) not in made:
            made[id(self)] = original(self, config_name, overrides)
        return made[id(self)]

    ConfigLoaderImpl._parse_overrides_and_create_caching_repo = once


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # Named here so that a Slurm job, which unpickles this function before it composes its
    # config, imports harness.config (the schema and the run_subdir resolver) first.
    config.register()
    from harness import launch

    return launch.main(cfg)


if __name__ == "__main__":
    if ranks.is_secondary_rank():  # under torchrun: rank 0 alone writes .hydra/ and run.log
        sys.argv += ranks.SECONDARY_RANK_OVERRIDES
    try:
        user_config.check()  # $OPTBENCH_USER_CONFIG: folders that exist, no clash with conf/
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    sys.argv = user_config.own_name(sys.argv)
    if "--help" in sys.argv or "-h" in sys.argv or "--hydra-help" in sys.argv:
        faster_help()
    try:
        main()
    except SystemExit as stop:
        # Hydra reports a config it cannot compose (an unknown group choice or key) and exits 1,
        # the code of a failed run; like every other error of the user's, it is exit 2.
        if stop.code == 1 and not checks.composed:
            sys.exit(2)
        raise
