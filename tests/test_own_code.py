"""Code from outside the repository (README, "Your own optimizer"): a submission YAML and its
optimizer in a folder named by $OPTBENCH_USER_CONFIG, checked with harness.check, swept beside two
library optimizers, reported; the record's command reruns a run from a fresh shell into the same
run identity; an optimizer given by `_target_` alone is filed under its own name."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import check, sweep, user_config
from harness.errors import UserError
from tests.helpers import ROOT, cli_environment, compose_config, default_run_dir

# The README's example, as a user writes it in their own folder.
OPTIMIZER = '''
import torch


class SignSGD(torch.optim.Optimizer):
    """signSGD (Bernstein et al. 2018) with decoupled weight decay."""

    def __init__(self, params, lr=1e-3, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(p.grad.sign(), alpha=-group["lr"])
'''
SUBMISSION = """
defaults:
  - schedule: warmup_cosine
_target_: submissions.generic.OptimizerSubmission
name: signsgd
optimizer:
  _target_: {module}.SignSGD
  _partial_: true
batch_size: null
hyperparameters:
  learning_rate: 1.0e-3
  weight_decay: 0.01
search_space:
  learning_rate: {{min: 1.0e-4, max: 1.0e-2, scaling: log}}
  weight_decay: {{min: 1.0e-3, max: 0.1, scaling: log}}
"""
FAST = ["max_steps=4", "workload.eval_every_steps=2", "progress=none", "threads=1"]


def user_folder(root: Path, module: str, source: str = OPTIMIZER, name: str = "signsgd") -> Path:
    folder = root / "mypkg"
    (folder / "submission").mkdir(parents=True)
    (folder / f"{module}.py").write_text(source)
    (folder / "submission" / f"{name}.yaml").write_text(SUBMISSION.format(module=module))
    return folder


def shell(command: str, cwd: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_own_optimizer_swept_reported_and_rerun_from_a_fresh_shell(tmp_path):
    folder = user_folder(tmp_path, "myopt")
    work = tmp_path / "paper"
    work.mkdir()
    environment = {**cli_environment(), user_config.VARIABLE: str(folder)}
    sweep_command = (
        f"{sys.executable} {ROOT / 'run.py'} -m experiment_name=paper ruleset=external "
        "ruleset.num_studies=1 ruleset.num_trials=1 submission=signsgd,adamw,lion "
        f"workload=friedman study=0 trial=0 {' '.join(FAST)}"
    )
    result = shell(sweep_command, work, environment)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "[3/3]" in output and "ETA" in output, output  # a line per finished run

    run_dir = default_run_dir(work / "results", "signsgd", ruleset="external", experiment="paper")
    record = json.loads((run_dir / "record.json").read_text())
    assert record["submission"] == "signsgd" and record["status"] != "failed", record["error"]
    source = (folder / "myopt.py").read_bytes()
    assert record["external_code"]["myopt"]["sha256"] == hashlib.sha256(source).hexdigest()
    assert record["external_code"]["myopt"]["file"] == str((folder / "myopt.py").resolve())
    adamw = json.loads(
        (
            default_run_dir(work / "results", "adamw", ruleset="external", experiment="paper")
            / "record.json"
        ).read_text()
    )
    assert "torch.optim.adamw" in adamw["external_code"]  # a library's module: its version
    assert adamw["external_code"]["torch.optim.adamw"]["version"] == adamw["packages"]["torch"]

    # The record's command, in a shell that knows nothing: no variables, another folder.
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    rerun = shell(record["command"], tmp_path, bare)
    assert rerun.returncode == 0, rerun.stderr
    again = json.loads((run_dir / "record.json").read_text())
    assert again["fingerprint"] == record["fingerprint"]  # the same run identity
    assert again["started_at"] >= record["started_at"] and again["pid"] != record["pid"]
    kept = list((run_dir / ".replaced").rglob("record.json"))
    assert kept, "the first result is kept when the rerun replaces it"

    report = shell(
        f"{sys.executable} -m harness.report results/paper --no-figures", work, environment
    )
    assert report.returncode == 0, report.stderr
    table = (work / "results" / "paper" / "report" / "leaderboard.tex").read_text()
    assert "signsgd" in table and "adamw" in table and "lion" in table


@pytest.mark.slow
def test_check_finds_an_optimizer_that_ignores_its_weight_decay(tmp_path, monkeypatch, capsys):
    """harness.check on a user's submission: a broken optimizer fails one check, exit 1."""
    broken = OPTIMIZER.replace('p.mul_(1 - group["lr"] * group["weight_decay"])', "pass")
    folder = user_folder(tmp_path, "brokenopt", broken, name="brokensign")
    monkeypatch.delenv(user_config.VARIABLE, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = check.main(["brokensign", "--config-dir", str(folder), "--workloads", "friedman"])
    out = capsys.readouterr().out
    assert code == 1, out
    rows = {
        " ".join(line.split()[:-1]): line.split()[-1]
        for line in out.splitlines()
        if line.endswith((" pass", " fail", " n/a"))
    }
    assert rows["weight decay shrinks the weights weight_decay"] == "fail", out
    assert rows["state survives a checkpoint friedman"] == "pass", out
    assert rows["defaults decrease an ill-conditioned quadratic"] == "pass", out
    assert "the weight decay is ignored" in out


def test_check_of_an_unknown_submission_names_the_choices(capsys):
    assert check.main(["no_such_submission"]) == 2
    err = capsys.readouterr().err
    assert "no submission named 'no_such_submission'" in err and "adamw" in err


def test_a_user_config_may_not_hide_one_of_ours(tmp_path):
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "adamw.yaml").write_text("name: adamw\n")
    with pytest.raises(UserError, match="this repository's submission=adamw; rename it"):
        user_config.check([tmp_path])
    with pytest.raises(UserError, match="not a folder"):
        user_config.check([tmp_path / "nowhere"])


def test_an_optimizer_given_by_target_alone_is_filed_under_its_own_name(results_dir):
    argv = ["run.py", "submission=sgd", "submission.optimizer._target_=torch.optim.Adam"]
    cfg = compose_config(user_config.own_name(argv)[1:], results_dir)
    assert cfg.submission.name == "torch.optim.Adam"
    named = [*argv, "submission.name=adam_from_sgd"]
    assert user_config.own_name(named) == named  # a name the user gives is kept


def test_status_counts_planned_runs_not_started_as_pending(tmp_path, capsys):
    sweep_dir = tmp_path / "results" / "default"
    planned = [default_run_dir(tmp_path / "results", study=k) for k in range(3)]
    sweep.write_plan(sweep_dir, planned)
    assert sweep.main([str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "0/3 done, 0 running, 0 failed, 3 pending" in out
    assert sweep.planned_run_dirs(tmp_path / "results") == [p.resolve() for p in planned]


def test_the_command_reruns_from_anywhere(monkeypatch, tmp_path):
    from harness import provenance

    monkeypatch.setenv(user_config.VARIABLE, "/my folder/conf")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    command = provenance.shell_command(["submission=signsgd", "seed=1"], cwd=str(tmp_path))
    assert command.startswith(f"cd {tmp_path} && {user_config.VARIABLE}='/my folder/conf' ")
    assert f"{sys.executable} {ROOT / 'run.py'} submission=signsgd seed=1" in command
    assert os.environ.get("PYTHONPATH") is None and "PYTHONPATH" not in command
