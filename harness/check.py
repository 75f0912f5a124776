"""`python -m harness.check SUBMISSION [--config-dir DIR] [OVERRIDE ...]`: the conformance checks
(harness/conformance.py) on any submission, this repository's or the user's own, as a pass/fail
table; exit 1 when a check fails, 2 when the submission cannot be built.

`--config-dir DIR` adds DIR as $OPTBENCH_USER_CONFIG does (config groups and Python modules).
Never writes outside a temporary folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from harness import user_config
from harness.errors import UserError


def composer(conf: Path) -> Callable[[list[str]], object]:
    """compose(overrides) -> the run config, as run.py composes it."""
    from hydra import compose, initialize_config_dir

    from harness import config

    config.register()

    def compose_run(overrides: list[str]):
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            return compose("config", overrides=["results_dir=unused-results", *overrides])

    return compose_run


def choices(group: str) -> list[str]:
    """The choices of a config group in this repository and the user's folders."""
    found = set()
    for folder in [user_config.CONF, *user_config.folders()]:
        found |= {path.stem for path in (folder / group).glob("*.yaml")}
    return sorted(found)


def yaml_path(group: str, name: str) -> Path | None:
    for folder in [user_config.CONF, *user_config.folders()]:
        if (folder / group / f"{name}.yaml").exists():
            return folder / group / f"{name}.yaml"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.check",
        description="Run the conformance checks on one submission and print a pass/fail table.",
    )
    parser.add_argument("submission", help="a submission name, e.g. adamw or your signsgd")
    parser.add_argument(
        "--config-dir",
        action="append",
        default=[],
        metavar="DIR",
        help=f"a folder holding submission/NAME.yaml and its code (as ${user_config.VARIABLE})",
    )
    parser.add_argument(
        "--workloads",
        default="digits,friedman,shakespeare",
        help="the tiny embedded workloads the checkpoint check trains on (comma-separated)",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. submission.x=1")
    args = parser.parse_args(argv)
    if args.config_dir:
        given = os.pathsep.join(str(Path(d).resolve()) for d in args.config_dir)
        earlier = os.environ.get(user_config.VARIABLE)
        os.environ[user_config.VARIABLE] = f"{given}{os.pathsep}{earlier}" if earlier else given
    try:
        user_config.check()
        user_config.activate()
        path = yaml_path("submission", args.submission)
        if path is None:
            raise UserError(
                f"no submission named {args.submission!r}; choices: "
                f"{', '.join(choices('submission'))}. Your own: --config-dir DIR with "
                f"DIR/submission/{args.submission}.yaml"
            )
        unknown = [w for w in args.workloads.split(",") if w not in conformance_tiny()]
        if unknown:
            raise UserError(
                f"--workloads: {', '.join(unknown)} not among {', '.join(conformance_tiny())}"
            )
        return report(args, path)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def conformance_tiny() -> list[str]:
    from harness.conformance import TINY

    return list(TINY)


def report(args: SimpleNamespace, path: Path) -> int:
    import torch

    from harness import conformance, launch

    torch.set_num_threads(1)  # tiny models: a second thread only adds synchronisation
    logging.getLogger("harness").setLevel(logging.ERROR)  # the runner's notes on a busy machine
    compose = composer(user_config.CONF)
    base = [f"submission={args.submission}", *args.overrides]

    def build(overrides: list[str]) -> conformance.Built:
        cfg = compose([*base, *overrides])
        _, submission, hyperparameters = launch.prepare(cfg)
        return conformance.Built(submission, SimpleNamespace(**hyperparameters), cfg)

    build([])  # a submission that cannot be built is exit 2 with its one paragraph
    workloads = {}
    for name in args.workloads.split(","):
        workload = launch.build(compose([f"workload={name}", *conformance.TINY[name]]).workload, "")
        workload.setup(torch.device("cpu"))
        workloads[name] = workload
    print(f"conformance of submission {args.submission} ({path})\n", flush=True)
    print(f"{'check':<46} {'with':<14} result", flush=True)
    failed = 0
    outcomes = conformance.run_all(
        build, workloads, choices("submission/schedule"), path.read_text(encoding="utf-8")
    )
    for outcome in outcomes:
        failed += outcome.result == "fail"
        print(f"{outcome.check:<46} {outcome.on:<14} {outcome.result}", flush=True)
        if outcome.message and outcome.result == "fail":
            print(f"    {outcome.message.splitlines()[-1]}", flush=True)
    print(f"\n{'FAILED: ' + str(failed) + ' check(s)' if failed else 'all checks passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
