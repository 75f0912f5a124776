"""Every YAML composes, and every workload, submission, schedule and logger builds."""

from __future__ import annotations

import pytest
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import OmegaConf

from harness import results
from harness.launch import build, prepare
from harness.loggers import RunLogger
from harness.spec import Submission, Workload
from submissions.schedules import Schedule
from tests.helpers import CONF, compose_config, compose_with_hydra, group_choices


@pytest.mark.parametrize("workload", group_choices("workload"))
def test_workload_config_builds(workload, results_dir):
    cfg = compose_config([f"workload={workload}"], results_dir)
    built = build(cfg.workload, "workload")
    assert isinstance(built, Workload)
    assert built.name == workload, "a workload's name must match its YAML file name"
    assert built.validation_target_value == cfg.workload.target


@pytest.mark.parametrize("family", ["digits", "friedman", "shakespeare", "cifar", "california"])
def test_an_unknown_activation_names_the_choices(family, results_dir):
    cfg = compose_config([f"workload={family}", "workload.activation=swish"], results_dir)
    with pytest.raises(Exception, match=r"unknown activation 'swish'; choose one of \[.*'gelu'"):
        build(cfg.workload, "workload")


@pytest.mark.parametrize("submission", group_choices("submission"))
def test_submission_config_builds_and_validates(submission, results_dir):
    cfg = compose_config([f"submission={submission}"], results_dir)
    _, built, hyperparameters = prepare(cfg)  # validates defaults and the search space
    assert isinstance(built, Submission)
    name = OmegaConf.to_container(OmegaConf.load(CONF / "submission" / f"{submission}.yaml"))
    if str(name["name"]).startswith("${"):  # computed, from a submission file: prefixed
        assert built.name.startswith(f"{submission}_"), "a computed name starts with the YAML's"
    else:
        assert built.name == submission, "a submission's name must match its YAML file name"
    assert "learning_rate" in hyperparameters


@pytest.mark.parametrize("schedule", group_choices("submission/schedule"))
def test_schedule_config_builds(schedule, results_dir):
    cfg = compose_config([f"submission/schedule={schedule}"], results_dir)
    built = instantiate(cfg.submission.schedule)
    assert isinstance(built, Schedule)
    assert 0.0 <= built.factor(10, 100) <= 1.0


@pytest.mark.parametrize("ruleset", group_choices("ruleset"))
def test_ruleset_config_composes(ruleset, results_dir):
    cfg = compose_config([f"ruleset={ruleset}"], results_dir)
    assert cfg.ruleset.name == ruleset
    assert cfg.ruleset.budget_factor > 0


@pytest.mark.parametrize("logger", group_choices("logger"))
def test_logger_config_builds(logger, results_dir):
    cfg = compose_config([f"logger={logger}"], results_dir)
    assert isinstance(build(cfg.logger, "logger"), RunLogger)


@pytest.mark.parametrize("experiment", group_choices("experiment"))
def test_experiment_config_composes_to_a_sweep_of_existing_choices(experiment, results_dir):
    cfg = compose_with_hydra([f"results_dir={results_dir}", f"experiment={experiment}"])
    assert cfg.experiment_name == experiment, "results go to a folder named like the YAML"
    assert cfg.hydra.mode == RunMode.MULTIRUN
    for group, values in cfg.hydra.sweeper.params.items():
        if group in ("submission", "workload") and not values.startswith("glob("):
            unknown = set(values.split(",")) - set(group_choices(group))
            assert not unknown, f"{experiment} sweeps {group} choices that do not exist: {unknown}"


def test_hydra_run_dir_follows_results_layout(results_dir):
    cfg = compose_with_hydra(["submission=lion", "workload=friedman", "study=2", "trial=0"])
    expected = results.run_dir("results", "default", "fixed", "lion", "friedman", 2, 0)
    assert cfg.hydra.run.dir == str(expected)
    assert f"{cfg.hydra.sweep.dir}/{cfg.hydra.sweep.subdir}" == str(expected)
