"""Code from outside the repository (README, "Your own optimizer"): a submission YAML and its
optimizer in a folder named by $OPTBENCH_USER_CONFIG, checked with harness.check, swept beside two
library optimizers, reported; the record's command reruns a run from a fresh shell into the same
run identity; an optimizer given by `_target_` alone is filed under its own name."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import check, sweep, user_config
from harness.errors import UserError
from tests.helpers import ROOT, cli_environment, compose_config, default_run_dir

README = (ROOT / "README.md").read_text()
SECTION = README.split("## Your own optimizer, in a paper")[1].split("\n## ")[0]
FOLDER = "~/mysignsgd"


def readme_files() -> dict[str, str]:
    """The files of the README's section, by path inside the user's folder (each code block
    that starts with a comment naming `~/mysignsgd/<path>`)."""
    files = {}
    for block in re.findall(r"```(?:python|yaml)\n(.*?)```", SECTION, re.S):
        first, _, body = block.partition("\n")
        path = first.lstrip("# ").strip()
        if path.startswith(f"{FOLDER}/"):
            files[path.removeprefix(f"{FOLDER}/")] = body
    return files


def readme_commands() -> list[str]:
    """The section's shell commands, in order, without their comments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", SECTION, re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                commands.append(command)
    return commands


OPTIMIZER = readme_files()["myopt.py"]
SUBMISSION = readme_files()["submission/signsgd.yaml"]
FAST = ["max_steps=4", "workload.eval_every_steps=2", "progress=none", "threads=1"]


def user_folder(root: Path, module: str, source: str = OPTIMIZER, name: str = "signsgd") -> Path:
    folder = root / "mypkg"
    (folder / "submission").mkdir(parents=True)
    (folder / f"{module}.py").write_text(source)
    yaml = SUBMISSION.replace("myopt.SignSGD", f"{module}.SignSGD")
    (folder / "submission" / f"{name}.yaml").write_text(yaml.replace("signsgd", name))
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


# The README's sweep made small enough for a test: one study of one trial on one workload,
# a few steps per run; the rest of every command is the README's.
SMALLER = {
    "ruleset.num_studies=2": "ruleset.num_studies=1",
    "ruleset.num_trials=4": "ruleset.num_trials=1",
    "workload=digits,friedman": "workload=friedman",
    "study=0,1": "study=0",
    "'trial=range(4)'": "trial=0",
}


def as_tested(command: str) -> str | None:
    """A README command as this test runs it (None: one the test runs its own way)."""
    if command.startswith("export ") or "harness.check" in command:
        return None  # the variable is set by the test; harness.check: the test below
    for readme, smaller in SMALLER.items():
        command = command.replace(readme, smaller)
    command = command.replace(".venv/bin/python", sys.executable)
    if "run.py" in command:
        command = command.replace("run.py", str(ROOT / "run.py")) + " " + " ".join(FAST)
    if "harness.report" in command:
        command += " --no-figures"  # the figures: tests/test_report.py
    return command


@pytest.mark.slow
def test_own_optimizer_swept_reported_and_rerun_from_a_fresh_shell(tmp_path):
    """The README's route, command by command, from the README's own files."""
    folder = tmp_path / "mysignsgd"
    for path, text in readme_files().items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    work = tmp_path / "paper"
    work.mkdir()
    environment = {**cli_environment(), user_config.VARIABLE: str(folder)}
    assert f"export {user_config.VARIABLE}={FOLDER}" in readme_commands()
    outputs = []
    for command in filter(None, map(as_tested, readme_commands())):
        result = shell(command, work, environment)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        outputs.append(result.stdout + result.stderr)
    output = "\n".join(outputs)
    assert "[3/3]" in output and "ETA" in output, output  # a line per finished run
    assert "learning_rate:" in output and "search point:" in output  # harness.show

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

    table = (work / "results" / "paper" / "report" / "leaderboard.tex").read_text()
    assert "signsgd" in table and "adamw" in table and "lion" in table


@pytest.mark.slow
def test_check_finds_an_optimizer_that_ignores_its_weight_decay(tmp_path, monkeypatch, capsys):
    """harness.check on a user's submission: a broken optimizer fails one check, exit 1."""
    broken = OPTIMIZER.replace('p.mul_(1 - group["lr"] * group["weight_decay"])', "pass")
    folder = user_folder(tmp_path, "brokenopt", broken, name="brokensign")
    monkeypatch.setenv(user_config.VARIABLE, "")  # restored (unset) after the test
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
    monkeypatch.setenv("PYTHONPATH", "/my/code")
    command = provenance.shell_command(["submission=signsgd", "seed=1"], cwd=str(tmp_path))
    assert command.startswith(
        f"cd {tmp_path} && {user_config.VARIABLE}='/my folder/conf' PYTHONPATH=/my/code "
    )
    assert command.endswith(f"{sys.executable} {ROOT / 'run.py'} submission=signsgd seed=1")
    monkeypatch.delenv("PYTHONPATH")
    assert "PYTHONPATH" not in provenance.shell_command([], cwd=str(tmp_path))


def test_external_code_names_each_outside_module_with_its_hash_and_version(results_dir):
    from harness import environment, provenance

    cfg = compose_config(["submission=adamw", "workload=friedman"], results_dir)
    code = provenance.external_code(cfg)
    adamw = code["torch.optim.adamw"]  # where torch.optim.AdamW is written
    assert adamw["version"] == environment.package_versions()["torch"]
    assert adamw["sha256"] == hashlib.sha256(Path(adamw["file"]).read_bytes()).hexdigest()
    assert not any(module.split(".")[0] in ("submissions", "workloads") for module in code)


def test_a_line_per_finished_run_says_how_it_ended_and_when_the_sweep_ends(tmp_path):
    from harness import results

    clock = sweep.SweepClock(to_run=4)
    clock.started -= 30.0  # the first run took 30 s
    reached = results.RunRecord(
        experiment_name="e",
        ruleset=results.RulesetSettings("fixed", False, 1.0, None, 1),
        submission="signsgd",
        workload="digits",
        study=0,
        trial=0,
        seed=0,
        hyperparameters={},
        status="reached",
        time_to_target=21.44,
        steps_to_target=300,
    )
    line = clock.line(tmp_path / "run", reached)
    assert line.startswith("[1/4] reached in 21.4 s (300 steps) | ")
    assert line.endswith("30s elapsed, ETA 1m30s")
    failed = reached.replace(status="failed", error="Traceback ...\nValueError: bad lr")
    second = clock.line(tmp_path / "run", failed)
    assert "[2/4] failed: ValueError: bad lr | " in second and second.endswith("ETA 30s")


def test_the_command_repeats_the_config_folders_hydra_was_given(tmp_path):
    import shlex

    from hydra.core.hydra_config import HydraConfig

    from harness import provenance
    from tests.helpers import compose_with_hydra

    extra = f"hydra.searchpath=[file://{tmp_path}]"
    cfg = compose_with_hydra(["seed=3", extra])
    try:
        HydraConfig.instance().set_config(cfg)
        command = shlex.split(provenance.rerun_command())
    finally:
        HydraConfig.instance().cfg = None
    assert command[command.index(str(ROOT / "run.py")) + 1 :] == ["seed=3", extra]
