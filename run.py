"""Train one submission on one workload and report time-to-target (add -m for a sweep).

python run.py submission=lion workload=digits
python run.py --help

Only light modules are imported before Hydra has composed the config, so --help, --cfg and
errors in the command line answer at once; torch and the rest load when a run starts.
"""

import sys

import hydra
from omegaconf import DictConfig

from harness import checks, config, ranks


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
        main()
    except SystemExit as stop:
        # Hydra reports a config it cannot compose (an unknown group choice or key) and exits 1,
        # the code of a failed run; like every other error of the user's, it is exit 2.
        if stop.code == 1 and not checks.composed:
            sys.exit(2)
        raise
