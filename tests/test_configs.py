"""Every YAML composes, and every workload, submission, schedule and logger builds."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from harness.launch import build, prepare
from harness.spec import Submission, Workload
from submissions.schedules import Schedule
from tests.conftest import compose_config, group_choices


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
    assert build(cfg.logger, "logger") is not None


@pytest.mark.parametrize("experiment", group_choices("experiment"))
def test_experiment_config_composes(experiment, results_dir):
    cfg = compose_config([f"experiment={experiment}"], results_dir)
    assert cfg.experiment_name


def test_hydra_run_dir_follows_results_layout(results_dir):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from tests.conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(
            "config",
            overrides=["submission=lion", "workload=friedman", "study=2", "trial=0"],
            return_hydra_config=True,
        )
    assert cfg.hydra.run.dir == "results/default/fixed/lion/friedman/study_2/trial_0"
