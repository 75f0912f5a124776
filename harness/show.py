"""`python -m harness.show [OVERRIDE ...]`: what `python run.py OVERRIDE ...` will run, without
running it: the run's folder, its ruleset, and the hyperparameters it will train with (under
`ruleset=external`: those of its (study, trial) point of the search space, not the YAML's
defaults that `--cfg job` prints), then the composed config. Builds the submission and workload
the way a run does (so a bad override is the run's one-paragraph error); never trains or writes.
"""

from __future__ import annotations

import sys
from typing import Any

from omegaconf import OmegaConf

from harness import user_config
from harness.errors import UserError

USAGE = """usage: python -m harness.show [OVERRIDE ...]

Shows what `python run.py OVERRIDE ...` will run: its folder and the hyperparameters it will train
with (under ruleset=external those of its study and trial), then the composed config. E.g.
  python -m harness.show ruleset=external submission=lion study=1 trial=3
"""


def describe(overrides: list[str]) -> str:
    from hydra import compose, initialize_config_dir

    from harness import config, launch

    config.register()
    overrides = user_config.own_name(["run.py", *overrides])[1:]
    with initialize_config_dir(config_dir=str(user_config.CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    workload, submission, hyperparameters = launch.prepare(cfg)
    point = launch.search_point(cfg, submission)
    ruleset = cfg.ruleset
    if ruleset.tune:
        source = (
            f"point {cfg.trial} of the search sequence of study {cfg.study} "
            f"(ruleset {ruleset.name}: {ruleset.num_studies} studies x {ruleset.num_trials} trials)"
        )
    else:
        source = f"the submission's defaults and your overrides (ruleset {ruleset.name})"
    shown: dict[str, Any] = {
        "run folder": str(launch.run_folder(cfg)),
        "submission": submission.name,
        "workload": workload.name,
        "seed": launch.run_seed(cfg),
        "hyperparameters from": source,
        "hyperparameters": hyperparameters,
    }
    if point:
        shown["search point"] = point
    summary = OmegaConf.to_yaml(OmegaConf.create(shown))
    config_text = OmegaConf.to_yaml(cfg, resolve=True)
    return f"{summary}\n# the composed config (as --cfg job prints it)\n{config_text}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(USAGE)
        return 0
    try:
        user_config.check()
        print(describe(argv), end="")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # Hydra's own composition errors: unknown group choice or key
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
