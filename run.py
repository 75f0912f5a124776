"""Train one submission on one workload and report time-to-target (add -m for a sweep).

python run.py submission=lion workload=digits
python run.py --help
"""

import hydra
from omegaconf import DictConfig

from harness import launch  # importing it registers the config schema (harness/config.py)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return launch.main(cfg)


if __name__ == "__main__":
    main()
