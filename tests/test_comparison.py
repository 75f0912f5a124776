"""The comparison table (harness/report/comparison.py) from synthetic run folders whose answers are
known, and the sweep that feeds it (conf/experiment/comparison.yaml)."""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser

from harness.report import cli, comparison
from tests.helpers import CONF, EMBEDDED_WORKLOADS, compose_with_hydra
from tests.synthetic_results import HARDWARE, write_run, write_study_grid


def table_lines(text: str, workload: str) -> list[str]:
    section = text.split(f"### {workload}\n", 1)[1].split("\n\n###", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]


def comparison_of(folder, capsys=None) -> tuple[str, str]:
    assert cli.main([str(folder), "--no-figures", "--resamples", "10"]) == 0
    err = capsys.readouterr().err if capsys else ""
    return (folder / "report" / "comparison.md").read_text(), err


def test_misses_count_as_infinity_and_rows_rank_by_reached_then_median(tmp_path):
    for study, time in enumerate([10.0, 20.0, None]):
        write_run(tmp_path, "fast", "friedman", study, 0, time, ruleset="self")
    for study, (time, status) in enumerate([(5.0, None), (None, "diverged"), (None, "failed")]):
        write_run(tmp_path, "erratic", "friedman", study, 0, time, ruleset="self", status=status)
    for study in range(3):
        write_run(tmp_path, "slow", "friedman", study, 0, None, ruleset="self")

    text, _ = comparison_of(tmp_path)
    header, fast, erratic, slow = table_lines(text, "friedman")
    assert "reached" in header and "median" in header
    assert fast.startswith("| fast | 2/3 | 20 [10–∞] |") and "| 1 not reached |" in fast
    assert erratic.startswith("| erratic | 1/3 | ∞ [5–∞] | ∞ |")
    assert "1 diverged, 1 failed" in erratic
    assert slow.startswith("| slow | 0/3 | ∞ [∞–∞] | ∞ |") and "3 not reached" in slow
    assert comparison.REGENERATE.splitlines()[1] in text


def test_budgets_scaled_by_each_runs_speed_index_are_given_as_their_range(tmp_path):
    write_run(tmp_path, "adamw", "digits", 0, 0, 12.0, ruleset="self", budget=91.4)
    write_run(tmp_path, "adamw", "digits", 1, 0, 14.0, ruleset="self", budget=110.9)
    write_run(tmp_path, "lion", "friedman", 0, 0, 5.0, ruleset="self", budget=40.0)
    text, _ = comparison_of(tmp_path)
    assert "budget 91.4–111 s of submission time (each run's is scaled" in text
    assert "budget 40 s of submission time.\n" in text  # one budget: no range


def test_a_study_counts_once_with_its_best_trial(tmp_path):
    """External tuning: n counts studies, not trials, and each study is its fastest trial."""
    write_study_grid(tmp_path, {("adamw", "digits"): [10.0, 12.0, None]}, ruleset="external")
    text, _ = comparison_of(tmp_path)
    (row,) = table_lines(text, "digits")[1:]
    assert row.startswith("| adamw | 2/3 | 12 [10–∞] |")


def test_hardware_is_never_mixed_and_unfinished_runs_are_left_out(tmp_path, capsys):
    write_run(tmp_path, "adamw", "digits", 0, 0, 12.0, ruleset="self")
    write_run(tmp_path, "adamw", "digits", 1, 0, 3.0, ruleset="self", hardware="cuda:Other GPU")
    running = write_run(tmp_path, "adamw", "digits", 2, 0, None, ruleset="self", status="running")
    broken = write_run(tmp_path, "lion", "digits", 0, 0, 1.0, ruleset="self")
    (broken / "record.json").write_text("{not json")

    text, warnings = comparison_of(tmp_path, capsys)
    sections = text.split("\n## ")[1:]
    cpu = next(s for s in sections if f"- hardware: {HARDWARE}\n" in s)
    gpu = next(s for s in sections if "- hardware: cuda:Other GPU\n" in s)
    assert "| adamw | 1/1 | 12 [12–12] |" in cpu and "| adamw | 1/1 | 3 [3–3] |" in gpu
    assert "| lion |" not in text
    assert running.relative_to(tmp_path).as_posix() in warnings  # named as still running
    assert f"skipping {broken}: record.json cannot be read" in warnings


def test_comparison_sweeps_every_submission_with_defaults_on_the_embedded_workloads():
    cfg = compose_with_hydra(["experiment=comparison"])
    params = cfg.hydra.sweeper.params
    assert cfg.ruleset.name == "fixed" and not cfg.ruleset.tune  # defaults, no tuning
    glob = OverridesParser.create().parse_override(f"submission={params.submission}").value()
    options = sorted(path.stem for path in (CONF / "submission").glob("*.yaml"))
    # every submission, a new YAML included, but the AlgoPerf-file runner (it needs a file)
    assert glob.filter(options) == [name for name in options if name != "algoperf"]
    assert sorted(params.workload.split(",")) == sorted(EMBEDDED_WORKLOADS)
    assert params.study.split(",") == ["0", "1", "2"]
