"""What tests share: compose the real Hydra config and run it in-process or as the CLI, find run
folders, build tiny workloads and submissions, and the checks several modules make on a resumed
run or a sweep. Fixtures live in conftest.py; data in real formats in fake_datasets.py and
synthetic_results.py. No test module imports another.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from scipy.stats import qmc

from harness import launch, results
from harness.conformance import TINY, Trainer  # noqa: F401  (shared with the test modules)
from harness.runner import Runner, RunSettings
from harness.spec import Submission, Workload

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"

# Small, fast settings that still exercise every code path (evaluation, checkpoint, record).
SMOKE = ["max_steps=6", "workload.eval_every_steps=3", "progress=none"]
# The workloads that need no network: every submission is exercised on each of them.
EMBEDDED_WORKLOADS = ["digits", "shakespeare", "friedman"]


def group_choices(group: str) -> list[str]:
    """Every YAML of a config group: tests parameterised over these cover new plug-ins."""
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


# -- composing and running -----------------------------------------------------------------------
# Full-size workloads and the variants of the embedded ones run the tests at CPU size: a
# smaller batch, evaluation set or width, never another code path. Keyed by workload class; the
# embedded defaults (EMBEDDED_WORKLOADS) run as they are, and an explicit override wins.
# tests/test_datasets.py takes a training step with each full-size model.
CPU_TEST_SIZE = {
    "workloads.image_classification.cifar.CifarWorkload": [
        "workload.batch_size=16",
        "workload.width=8",
    ],
    "workloads.language_model.lm.LanguageModelWorkload": [
        "workload.batch_size=4",
        "workload.context_length=64",
        "workload.width=64",
        "workload.depth=1",
        "workload.num_heads=2",
        "workload.eval_tokens=1024",
    ],
    "workloads.language_model.shakespeare.ShakespeareWorkload": [
        "workload.batch_size=8",
        "workload.eval_tokens=2048",
    ],
}


# Submissions whose YAML has settings a command line must give (`???`), keyed by class: the tests
# run them with these, unless an override gives its own. An AlgoPerf file: the AdamW fixture.
ALGOPERF_SUBMISSIONS = ROOT / "tests" / "algoperf_submissions"
REQUIRED_SETTINGS = {
    "submissions.algoperf.AlgoPerfFile": [
        f"submission.file={ALGOPERF_SUBMISSIONS / 'adamw' / 'submission.py'}",
        f"submission.search_space={ALGOPERF_SUBMISSIONS / 'adamw' / 'tuning_search_space.json'}",
    ],
}


def compose_config(overrides: list[str], results_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"results_dir={results_dir}", *overrides])
        needed = list(REQUIRED_SETTINGS.get(cfg.submission.get("_target_"), []))
        if cfg.workload.name not in EMBEDDED_WORKLOADS:
            needed += CPU_TEST_SIZE.get(cfg.workload.get("_target_"), [])
        given = {override.split("=", 1)[0] for override in overrides}
        extra = [override for override in needed if override.split("=", 1)[0] not in given]
        if not extra:
            return cfg
        return compose("config", overrides=[f"results_dir={results_dir}", *extra, *overrides])


def compose_with_hydra(overrides: list[str]) -> DictConfig:
    """The config as `python run.py OVERRIDES` composes it, Hydra's own node (run and sweep
    folders, launcher, sweeper) included."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def run_in_process(overrides: list[str], results_dir: Path) -> results.RunRecord:
    return launch.run(compose_config(overrides, results_dir))


def run_dir_of(record: results.RunRecord, results_dir: Path) -> Path:
    return Path(results_dir) / record.relative_dir()


def default_run_dir(
    results_dir: Path,
    submission: str = "adamw",
    workload: str = "friedman",
    study: int = 0,
    trial: int = 0,
    ruleset: str = "fixed",
    experiment: str = "default",
) -> Path:
    """Where `python run.py` files a run, by conf/config.yaml's defaults."""
    return results.run_dir(results_dir, experiment, ruleset, submission, workload, study, trial)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def cli_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python run.py ARGS` in a fresh process, as a user would type it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_environment(),
        stdin=subprocess.DEVNULL,
    )


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    """`python run.py ARGS` started in the background (to be signalled or killed)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        env=cli_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def make_runner(overrides: list[str], run_dir: Path, checkpoint=None, **settings) -> Runner:
    """A Runner built directly from the real configs, for tests that reach inside a run;
    `checkpoint`: a loaded checkpoint to resume from."""
    cfg = compose_config(overrides, run_dir.parent)
    workload, submission, hyperparameters = launch.prepare(cfg)
    workload.setup(torch.device("cpu"))
    torch.manual_seed(0)
    defaults = dict(
        seed=0, budget_sec=600.0, batch_size=workload.default_batch_size, progress="none"
    )
    return Runner(
        workload,
        submission,
        SimpleNamespace(**hyperparameters),
        RunSettings(**{**defaults, **settings}),
        run_dir,
        launch.standalone_record(workload),
        checkpoint=checkpoint,
    )


# -- tiny workloads and submissions (conformance, Sophia) ----------------------------------------
# The embedded workloads made tiny (harness/conformance.py holds them, for python -m harness.check).


def tiny_workload(name: str, folder: Path) -> Workload:
    cfg = compose_config([f"workload={name}", *TINY[name]], folder)
    workload = launch.build(cfg.workload, "workload")
    workload.setup(torch.device("cpu"))
    return workload


@functools.cache
def submission_config(name: str, overrides: tuple[str, ...]) -> DictConfig:
    return compose_config([f"submission={name}", *overrides], Path("unused-results"))


def build_submission(name: str, overrides: list[str]) -> tuple[Submission, SimpleNamespace]:
    """A new (submission, hyperparameters), built and validated exactly as a run does."""
    _, submission, hyperparameters = launch.prepare(submission_config(name, tuple(overrides)))
    return submission, SimpleNamespace(**hyperparameters)


# -- a run that is interrupted and resumed (preemption, Slurm) -----------------------------------
# Long enough to be interrupted after its first evaluation checkpoint (step 100), short enough
# for a test; a target of 1.35 is reached around step 300 (MSE 1.47 at 200, 1.35 at 300 on an
# AMD EPYC; 1.2 came only at step 1000 there), and the run goes on to 1000.
PREEMPTIBLE = [
    "workload=friedman",
    "workload.target=1.35",
    "workload.max_runtime_sec=600",  # max_steps ends it, however loaded the machine is
    "threads=1",
    "stop_at_target=false",
    "max_steps=1000",
    "workload.eval_every_steps=100",
    "progress=none",
]
NOT_COMPARED = {  # wall-clock columns, and the count of interruptions (checked separately)
    *results.MEASUREMENT_COLUMNS,
    "accumulated_submission_time",
    "accumulated_eval_time",
    "accumulated_logging_time",
    "preemption_count",
}


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in NOT_COMPARED} for row in rows]


def assert_same_result(run_dir: Path, reference_dir: Path) -> None:
    """Same status, steps-to-target and evaluation values as the uninterrupted reference."""
    record, reference = results.load_record(run_dir), results.load_record(reference_dir)
    assert record.status == reference.status == "reached"
    assert record.steps_to_target == reference.steps_to_target
    rows = read_csv(run_dir / results.EVAL_FILE)
    assert comparable(rows) == comparable(read_csv(reference_dir / results.EVAL_FILE))


def checkpointed_record(run_dir: Path) -> results.RunRecord | None:
    """The record of a run still running after its first evaluation checkpoint, else None."""
    record = results.read_record(run_dir)
    if (
        record
        and record.status == "running"
        and record.global_step >= 100
        and (run_dir / results.CHECKPOINT_FILE).exists()
    ):
        return record
    return None


def checkpoint_step(run_dir: Path) -> int:
    checkpoint = results.load_checkpoint(run_dir / results.CHECKPOINT_FILE)
    return checkpoint["train_state"]["global_step"]


# -- external-tuning sweeps (sweeps, Slurm) ------------------------------------------------------
def expected_hyperparameters(submission: str, study: int, trial: int) -> dict:
    """What the run trains with, recomputed from the submission's YAML and scipy alone: the
    defaults, then the search point, with AlgoPerf's one_minus_betaN as betaN = 1 - value."""
    effective = {}
    defaults, point = expected_search_point(submission, study, trial)
    for name, value in {**defaults, **point}.items():
        if name.startswith("one_minus_"):
            effective[name.removeprefix("one_minus_")] = 1.0 - value
        else:
            effective[name] = value
    return effective


def expected_search_point(submission: str, study: int, trial: int) -> tuple[dict, dict]:
    """(defaults, point): point `trial` of a scrambled Halton sequence seeded by `study`, one
    dimension per search-space entry in sorted-name order."""
    spec = OmegaConf.to_container(OmegaConf.load(CONF / "submission" / f"{submission}.yaml"))
    space = spec["search_space"]
    names = sorted(space)
    unit = qmc.Halton(d=len(names), scramble=True, seed=study).random(trial + 1)[trial]
    point = {}
    for name, u in zip(names, unit, strict=True):
        entry = space[name]
        if "feasible_points" in entry:
            choices = entry["feasible_points"]
            point[name] = choices[int(u * len(choices))]
        elif entry["scaling"] == "log":
            point[name] = entry["min"] * (entry["max"] / entry["min"]) ** u
        else:
            point[name] = entry["min"] + u * (entry["max"] - entry["min"])
    return spec["hyperparameters"], point


def assert_hyperparameters_match(written: dict, expected: dict) -> None:
    assert written.keys() == expected.keys()
    for name, value in expected.items():
        assert math.isclose(written[name], value, rel_tol=1e-9), (name, written[name], value)
