"""Code and configs from outside this repository, named by one environment variable.

`OPTBENCH_USER_CONFIG=/path/to/folder` (several folders: joined by `:`) adds each folder to Hydra's
config search path, after this repository's conf/ (hydra_plugins/optbench_searchpath.py), and to
Python's path, so a `submission/signsgd.yaml` there and the `myopt.py` beside it are found by every
command (run.py, sweeps, Slurm jobs, harness.check, harness.show) without editing the repository.
Also: an optimizer given on the command line by `_target_` alone is filed under its own name.
Never imports torch; never hides one of this repository's configs behind a user's (a clash is an
error).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.errors import UserError

VARIABLE = "OPTBENCH_USER_CONFIG"
CONF = Path(__file__).resolve().parent.parent / "conf"
# Config groups a user folder may add choices to.
GROUPS = ("submission", "submission/schedule", "workload", "ruleset", "logger", "experiment")


def folders(value: str | None = None) -> list[Path]:
    """The folders $OPTBENCH_USER_CONFIG names (or `value`), absolute, in order."""
    value = os.environ.get(VARIABLE, "") if value is None else value
    return [Path(part).expanduser().resolve() for part in value.split(os.pathsep) if part.strip()]


def problems(user_folders: list[Path] | None = None) -> list[str]:
    """One sentence per folder that does not exist or holds a config this repository has."""
    found = []
    for folder in folders() if user_folders is None else user_folders:
        if not folder.is_dir():
            found.append(f"{VARIABLE} names {folder}, which is not a folder")
            continue
        for group in GROUPS:
            for path in sorted((folder / group).glob("*.yaml")):
                if (CONF / group / path.name).exists():
                    found.append(
                        f"{path} has the name of this repository's {group}={path.stem}; "
                        "rename it (and its `name:`) so that both can be chosen"
                    )
    return found


def check(user_folders: list[Path] | None = None) -> None:
    """UserError naming every unusable folder or clashing config."""
    found = problems(user_folders)
    if found:
        raise UserError(
            "; ".join(found) + f". {VARIABLE} names folders holding config groups "
            "(submission/, workload/, ...) and the Python modules their _target_s import, "
            f"separated by '{os.pathsep}'."
        )


def activate(user_folders: list[Path] | None = None) -> None:
    """Put the user's folders on Python's path (after the script's own folder), once each."""
    for folder in reversed(folders() if user_folders is None else user_folders):
        if str(folder) not in sys.path:
            sys.path.insert(1, str(folder))


def own_name(argv: list[str]) -> list[str]:
    """`submission.optimizer._target_=myopt.SignSGD` without `submission.name=`: the run is filed
    under `myopt.SignSGD`, not under the submission whose YAML it started from; a sweep over
    several classes gets each class's name through Hydra's own interpolation."""
    targets = [a for a in argv if a.lstrip("+~").startswith("submission.optimizer._target_=")]
    named = any(a.lstrip("+~").startswith("submission.name=") for a in argv)
    if not targets or named or "--help" in argv or "-h" in argv:
        return argv
    # An interpolation, so that `_target_=a.A,b.B` under -m names each run by its own class.
    return [*argv, "submission.name=${submission.optimizer._target_}"]
