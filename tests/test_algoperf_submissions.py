"""AlgoPerf PyTorch submission files run unmodified (submission=algoperf, submissions/algoperf.py).

The files are in tests/algoperf_submissions/, in AlgoPerf's format: `adamw` (warmup + cosine,
`algoperf` imports, a ranges search space), `self_tuning` (no search space: hyperparameters
None) and `nadamw_points` (`algorithmic_efficiency` imports, a search space listing points).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness import results
from harness.algoperf_compat import files, provided
from harness.errors import UserError
from harness.launch import build, prepare
from harness.spec import ForwardPassMode
from harness.tuning import trial_point
from tests.helpers import (
    ALGOPERF_SUBMISSIONS,
    ROOT,
    SMOKE,
    TINY,
    Trainer,
    assert_same_result,
    build_submission,
    checkpoint_step,
    checkpointed_record,
    cli_environment,
    compose_config,
    default_run_dir,
    make_runner,
    read_csv,
    run_cli,
    run_dir_of,
    run_in_process,
    start_cli,
    tiny_workload,
)

ADAMW = ALGOPERF_SUBMISSIONS / "adamw"
SELF_TUNING = ALGOPERF_SUBMISSIONS / "self_tuning"
POINTS = ALGOPERF_SUBMISSIONS / "nadamw_points"
SPACE = "tuning_search_space.json"
# A whole run on digits, made small: a narrow model, one thread, two evaluations.
DIGITS = ["workload=digits", *TINY["digits"], "threads=1", *SMOKE]
EMBEDDED_AND_VARIANTS = [
    "digits",
    "digits_gelu",
    "digits_narrow",
    "friedman",
    "friedman_tanh",
    "friedman_deep",
    "shakespeare",
    "shakespeare_relu",
    "shakespeare_rmsnorm",
]


def file_settings(folder: Path, search_space: bool = True) -> list[str]:
    return [
        "submission=algoperf",
        f"submission.file={folder / 'submission.py'}",
        f"submission.search_space={folder / SPACE}"
        if search_space
        else "submission.search_space=null",
    ]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- whole runs on digits ------------------------------------------------------------------------
def test_external_ruleset_runs_the_trial_point_of_a_ranges_search_space(results_dir):
    record = run_in_process(
        [
            *file_settings(ADAMW),
            *DIGITS,
            "ruleset=external",
            "study=1",
            "trial=2",
        ],
        results_dir,
    )
    assert record.status in results.DONE_STATUSES, record.error
    space = json.loads((ADAMW / SPACE).read_text())
    point = trial_point(space, study=1, trial=2)
    assert record.search_point == point and record.hyperparameters == point
    assert record.submission == files.submission_name(ADAMW / "submission.py", ADAMW / SPACE)
    assert record.submission.startswith("algoperf_adamw_")
    assert record.submission_file == {
        "path": str(ADAMW / "submission.py"),
        "sha256": sha256(ADAMW / "submission.py"),
        "search_space": str(ADAMW / SPACE),
        "search_space_sha256": sha256(ADAMW / SPACE),
    }
    assert record.batch_size == 128  # the file does not know digits: the workload's own
    run_dir = run_dir_of(record, results_dir)
    assert json.loads((run_dir / results.HPARAMS_FILE).read_text()) == point
    assert [int(row["global_step"]) for row in read_csv(run_dir / results.EVAL_FILE)] == [3, 6]


def test_self_ruleset_runs_a_file_without_search_space_with_no_hyperparameters(results_dir):
    record = run_in_process(
        [
            *file_settings(SELF_TUNING, search_space=False),
            *DIGITS,
            "ruleset=self",
        ],
        results_dir,
    )
    # The file asserts it gets hyperparameters=None and a train_state: a failure would say so.
    assert record.status in results.DONE_STATUSES, record.error
    assert record.hyperparameters == {} and record.search_point == {}
    assert record.ruleset.name == "self" and record.ruleset.budget_factor == 1.5
    assert record.submission.startswith("algoperf_self_tuning_")
    assert record.submission_file["search_space"] is None
    assert record.batch_size == 128  # get_batch_size returned None: the workload's own


def test_points_search_space_gives_trial_j_point_j_and_old_imports_work(results_dir, caplog):
    caplog.set_level(logging.INFO, logger="harness")
    record = run_in_process(
        [
            *file_settings(POINTS),
            *DIGITS,
            "ruleset=external",
            "study=2",
            "trial=1",
        ],
        results_dir,
    )
    assert record.status in results.DONE_STATUSES, record.error
    assert record.hyperparameters == json.loads((POINTS / SPACE).read_text())[1]
    assert record.batch_size == 64  # the file's get_batch_size("digits")
    assert "batch size 64: the file's get_batch_size('digits')" in caplog.text


def test_more_trials_than_listed_points_is_a_clear_error(results_dir):
    with pytest.raises(UserError, match=r"trial=3 asks for point 3 .* lists 3 point\(s\)"):
        prepare(
            compose_config([*file_settings(POINTS), "ruleset=external", "trial=3"], results_dir)
        )


def test_training_complete_error_ends_the_run_with_a_final_evaluation(results_dir, tmp_path):
    source = (ADAMW / "submission.py").read_text()
    stopping = source.replace(
        '    optimizer_state["scheduler"].step()\n',
        '    optimizer_state["scheduler"].step()\n'
        "    if global_step == 4:\n"
        "        raise spec.TrainingCompleteError()\n",
    )
    assert stopping != source
    (tmp_path / "submission.py").write_text(stopping)
    record = run_in_process(
        [
            "submission=algoperf",
            f"submission.file={tmp_path / 'submission.py'}",
            f"submission.search_space={ADAMW / SPACE}",
            *DIGITS,
            "max_steps=50",
            "workload.eval_every_steps=100",
        ],
        results_dir,
    )
    assert record.status == "not_reached", record.error
    assert record.global_step == 5 and record.n_evaluations == 1


@pytest.mark.slow
def test_the_documented_command_runs(tmp_path):
    result = run_cli(
        [
            "submission=algoperf",
            f"submission.file={ADAMW / 'submission.py'}",
            f"submission.search_space={ADAMW / SPACE}",
            *DIGITS,
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "batch size: the workload's own, since the file does not know 'digits'" in output
    name = files.submission_name(ADAMW / "submission.py", ADAMW / SPACE)
    record = results.load_record(default_run_dir(tmp_path / "results", name, "digits"))
    assert record.status in results.DONE_STATUSES
    # ruleset fixed: the search space's first point (study 0, trial 0), no search point
    space = json.loads((ADAMW / SPACE).read_text())
    assert record.hyperparameters == trial_point(space, 0, 0) and record.search_point == {}


# -- every embedded workload, through the submission's functions ---------------------------------
@pytest.mark.parametrize("workload_name", EMBEDDED_AND_VARIANTS)
def test_every_embedded_workload_takes_steps(workload_name, tmp_path):
    cfg = compose_config(
        [f"workload={workload_name}", *TINY[workload_name.split("_")[0]]], tmp_path
    )
    workload = build(cfg.workload, "workload")
    workload.setup(torch.device("cpu"))
    submission, hyperparameters = build_submission(
        "algoperf", ["submission.batch_size=8", f"submission.file={ADAMW / 'submission.py'}"]
    )
    trainer = Trainer(submission, hyperparameters, workload, rng=0)
    view = submission.view
    assert set(view.model_params_types) == {name for name, _ in trainer.model.named_parameters()}
    assert all(
        isinstance(t, submission.spec.ParameterType) for t in view.model_params_types.values()
    )
    queue = workload.build_input_queue(0, "train", submission.get_batch_size(workload.name))
    start = trainer.parameters()
    for step in range(3):
        loss = trainer.step(next(queue), step)
        assert loss is not None and torch.isfinite(loss), f"loss {loss} at step {step}"
    trainer.prepare_for_eval(3)
    moved = trainer.parameters()
    assert any(not torch.equal(start[name], moved[name]) for name in start)


def test_parameter_types_are_algoperfs(tmp_path):
    submission, hyperparameters = build_submission("algoperf", [])
    workload = tiny_workload("shakespeare", tmp_path)
    trainer = Trainer(submission, hyperparameters, workload, rng=0)
    types = {name: kind.name for name, kind in submission.view.model_params_types.items()}
    assert types["token_embedding.weight"] == "EMBEDDING"
    assert types["blocks.0.attention.qkv.weight"] == "ATTENTION_QKV"
    assert types["blocks.0.attention.qkv.bias"] == "ATTENTION_BIAS"
    assert types["blocks.0.attention.proj.weight"] == "ATTENTION_OUT"
    assert types["blocks.0.norm1.weight"] == "LAYER_NORM_SCALE"
    assert types["blocks.0.norm1.bias"] == "LAYER_NORM_BIAS"
    assert types["blocks.0.mlp.0.bias"] == "BIAS" and types["head.weight"] == "WEIGHT"
    assert submission.view.is_output_params("head.weight")
    shape = tuple(trainer.model.head.weight.shape)
    assert submission.view.param_shapes["head.weight"].shape_tuple == shape


# -- batch size -----------------------------------------------------------------------------------
def test_batch_size_falls_back_to_the_base_name_then_to_the_workload(caplog):
    caplog.set_level(logging.INFO, logger="harness")
    points, _ = build_submission("algoperf", file_settings(POINTS)[1:])
    assert points.get_batch_size("digits") == 64
    assert points.get_batch_size("digits_gelu") == 64  # AlgoPerf's retry with the base name
    assert points.get_batch_size("friedman") is None
    assert "does not know 'friedman' (get_batch_size('friedman') raised KeyError" in caplog.text
    adamw, _ = build_submission("algoperf", [])
    assert adamw.get_batch_size("cifar_gelu") == 128 and adamw.get_batch_size("digits") is None
    assert "raised ValueError: Unsupported workload name: digits" in caplog.text
    fixed, _ = build_submission("algoperf", ["submission.batch_size=24"])
    assert fixed.get_batch_size("cifar") == 24


# -- errors ---------------------------------------------------------------------------------------
LACKING = "from algoperf import spec\n\ndef get_batch_size(name):\n    return 8\n"
BROKEN_JSON = '{"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},}'


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing file", "does not exist. Give the path of an AlgoPerf PyTorch submission file"),
        ("lacking functions", "lacks init_optimizer_state, update_params, data_selection"),
        ("invalid json", "is not valid JSON: Expecting property name enclosed in double quotes"),
        ("no file given", "submission.file is required"),
        ("self with a search space", "ruleset=self runs a file with its own hyperparameters"),
        ("external without one", "add submission.search_space=PATH/tuning_search_space.json"),
        ("a jax file", "imports jax, which cannot be imported here. A JAX submission"),
        ("syntax error", "cannot be loaded: SyntaxError at line 1"),
    ],
)
def test_bad_input_is_one_paragraph_that_says_what_to_do(case, expected, tmp_path, results_dir):
    settings = {
        "missing file": ["submission.file=no/such/submission.py"],
        "lacking functions": [f"submission.file={tmp_path / 'lacking.py'}"],
        "invalid json": [f"submission.search_space={tmp_path / 'broken.json'}"],
        "no file given": ["submission.file=???"],
        "self with a search space": ["ruleset=self"],
        "external without one": ["submission.search_space=null", "ruleset=external"],
        "a jax file": [f"submission.file={tmp_path / 'jax_file.py'}"],
        "syntax error": [f"submission.file={tmp_path / 'syntax.py'}"],
    }[case]
    (tmp_path / "lacking.py").write_text(LACKING)
    (tmp_path / "broken.json").write_text(BROKEN_JSON)
    (tmp_path / "jax_file.py").write_text("import jax.numpy as jnp\n")
    (tmp_path / "syntax.py").write_text("def update_params(:\n    pass\n")
    with pytest.raises(UserError) as error:
        prepare(compose_config(["submission=algoperf", *settings], results_dir))
    message = str(error.value)
    assert expected in message
    assert "\n" not in message, "one paragraph"


@pytest.mark.slow
def test_bad_input_on_the_command_line_exits_2_without_traceback(tmp_path):
    """One case as a user sees it (the others are the same UserError, checked above)."""
    (tmp_path / "lacking.py").write_text(LACKING)
    settings = [
        "submission=algoperf",
        f"submission.file={tmp_path / 'lacking.py'}",
        f"submission.search_space={ADAMW / SPACE}",
    ]
    result = run_cli([*settings, "max_steps=1"], tmp_path)
    assert result.returncode == 2
    assert "lacks init_optimizer_state" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "results").rglob("*")), "a rejected run leaves no files"


# -- checkpoints ----------------------------------------------------------------------------------
def through_disk(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_self_tuning_state_survives_a_checkpoint(tiny_workloads):
    workload = tiny_workloads["friedman"]
    overrides = [*file_settings(SELF_TUNING, search_space=False)[1:], "submission.batch_size=8"]
    submission, hyperparameters = build_submission("algoperf", overrides)
    queue = workload.build_input_queue(0, "train", 8)
    batches = [next(queue) for _ in range(6)]
    original = Trainer(submission, hyperparameters, workload, rng=0)
    for step in range(4):
        original.step(batches[step], step)
    saved = through_disk(
        {
            "model": original.model.state_dict(),
            "optimizer": submission.optimizer_state_dict(original.optimizer_state),
        }
    )
    fresh, _ = build_submission("algoperf", overrides)
    restored = Trainer(fresh, hyperparameters, workload, rng=1)
    restored.model.load_state_dict(saved["model"])
    restored.optimizer_state = fresh.load_optimizer_state_dict(
        restored.optimizer_state, saved["optimizer"]
    )
    assert restored.optimizer_state["steps_seen"] == 4
    for step in (4, 5):
        original.step(batches[step], step)
        restored.step(batches[step], step)
    expected, actual = original.parameters(), restored.parameters()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_what_cannot_be_checkpointed_is_named(caplog, tiny_workloads):
    caplog.set_level(logging.WARNING, logger="harness")
    submission, hyperparameters = build_submission("algoperf", [])
    trainer = Trainer(submission, hyperparameters, tiny_workloads["friedman"], rng=0)
    trainer.optimizer_state["probe"] = object()
    saved = submission.optimizer_state_dict(trainer.optimizer_state)
    assert saved["unsaved"] == ["optimizer_state['probe'] (a object)"]
    assert "optimizer_state['probe'] (a object) of the file's optimizer state cannot be saved" in (
        caplog.text
    )


class NoStateDict(torch.optim.SGD):
    """Like DistributedShampoo: state_dict() refuses on purpose."""

    def state_dict(self):
        raise NotImplementedError("use distributed_state_dict")

    def load_state_dict(self, state_dict):
        raise NotImplementedError("use load_distributed_state_dict")


def test_a_state_dict_that_refuses_is_named_and_the_rest_is_kept(caplog, tiny_workloads):
    caplog.set_level(logging.WARNING, logger="harness")
    submission, hyperparameters = build_submission("algoperf", [])
    trainer = Trainer(submission, hyperparameters, tiny_workloads["friedman"], rng=0)
    refusing = NoStateDict(trainer.model.parameters(), lr=0.1)
    trainer.optimizer_state["shampoo"] = refusing
    trainer.optimizer_state["counts"] = (np.int64(3), np.array([1.0, 2.0]))
    saved = through_disk({"optimizer": submission.optimizer_state_dict(trainer.optimizer_state)})
    assert saved["optimizer"]["unsaved"] == [
        "optimizer_state['shampoo'] (a NoStateDict: state_dict() raised "
        "NotImplementedError('use distributed_state_dict'))"
    ]
    assert "state_dict() raised NotImplementedError" in caplog.text
    fresh, _ = build_submission("algoperf", [])
    again = Trainer(fresh, hyperparameters, tiny_workloads["friedman"], rng=1)
    again.optimizer_state["shampoo"] = kept = NoStateDict(again.model.parameters(), lr=0.1)
    again.optimizer_state["counts"] = (np.int64(0), np.array([0.0, 0.0]))
    state = fresh.load_optimizer_state_dict(again.optimizer_state, saved["optimizer"])
    assert state["shampoo"] is kept  # as init_optimizer_state built it
    assert state["counts"][0] == 3 and state["counts"][1].tolist() == [1.0, 2.0]
    betas = state["optimizer"].param_groups[0]["betas"]  # walked state_dicts keep tuples
    assert isinstance(betas, tuple)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    settings = [
        *file_settings(ADAMW),
        "workload=friedman",
        "workload.target=30",  # reached at the first evaluation; the run goes on
        "workload.num_validation=2048",  # cheaper evaluations, the same steps
        "workload.max_runtime_sec=600",
        "threads=1",
        "stop_at_target=false",
        "max_steps=300",
        "workload.eval_every_steps=100",
        "progress=none",
    ]
    name = files.submission_name(ADAMW / "submission.py", ADAMW / SPACE)
    reference = run_in_process(settings, tmp_path / "reference")
    reference_dir = run_dir_of(reference, tmp_path / "reference")

    run_dir = default_run_dir(tmp_path / "results", name, "friedman")
    process = start_cli(settings, tmp_path)
    deadline = time.monotonic() + 240
    while checkpointed_record(run_dir) is None:
        assert process.poll() is None, f"ended before the kill:\n{process.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert checkpoint_step(run_dir) % 100 == 0

    resumed = run_cli(settings, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint" in resumed.stdout + resumed.stderr
    assert results.load_record(run_dir).preemption_count == 1
    assert_same_result(run_dir, reference_dir)


# -- the stand-in modules -------------------------------------------------------------------------
def test_the_stand_in_serves_algoperf_when_it_is_not_installed():
    submission, _ = build_submission("algoperf", [])
    assert {"algoperf", "algorithmic_efficiency"} <= set(provided())
    assert (
        submission.spec
        is sys.modules["algoperf.spec"]
        is sys.modules["algorithmic_efficiency.spec"]
    )
    assert submission.spec.__name__ == "harness.algoperf_compat.algoperf.spec"
    from algoperf import pytorch_utils, random_utils

    assert pytorch_utils.pytorch_setup()[:2] == (False, 0)
    key = random_utils.PRNGKey(7)
    assert key.dtype.name == "uint32" and key.shape == (2,)
    assert (random_utils.split(key, 3) == random_utils.split(key, 3)).all()


FAKE_SPEC = """
import abc, enum
REAL = True
class ForwardPassMode(enum.Enum):
    TRAIN = 0
    EVAL = 1
class LossType(enum.Enum):
    SOFTMAX_CROSS_ENTROPY = 0
    MEAN_SQUARED_ERROR = 2
ParameterType = enum.Enum("ParameterType", "WEIGHT BIAS CONV_WEIGHT EMBEDDING")
class Workload(metaclass=abc.ABCMeta):
    pass
class TrainingCompleteError(Exception):
    pass
ParameterContainer = ModelAuxiliaryState = Hyperparameters = RandomState = object
OptimizerState = ParameterTypeTree = Tensor = UpdateReturn = object
"""
FAKE_PYTORCH_UTILS = (
    "import torch\ndef pytorch_setup():\n    return False, 0, torch.device('cpu'), 0\n"
)
PROBE = """
import sys, torch
from harness.algoperf_compat import provided
from tests.helpers import Trainer, build_submission, tiny_workload
from pathlib import Path
submission, hp = build_submission("algoperf", ["submission.batch_size=8"])
assert sys.modules["algoperf.spec"].REAL, "the installed algoperf must be used"
assert "algoperf" not in provided(), provided()
assert submission.spec is sys.modules["algoperf.spec"]
workload = tiny_workload("friedman", Path(sys.argv[1]))
trainer = Trainer(submission, hp, workload, rng=0)
queue = workload.build_input_queue(0, "train", 8)
modes = []
original = workload.model_fn
def spy(params, batch, state, mode, rng, update):
    modes.append(mode)
    return original(params, batch, state, mode, rng, update)
workload.model_fn = spy
for step in range(2):
    assert torch.isfinite(trainer.step(next(queue), step))
from harness.spec import ForwardPassMode
assert modes == [ForwardPassMode.TRAIN] * 2, modes
print("REAL", sys.modules["algoperf.spec"].__file__)
"""


@pytest.mark.slow
def test_an_installed_algoperf_is_used_untouched(tmp_path):
    package = tmp_path / "site" / "algoperf"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "spec.py").write_text(textwrap.dedent(FAKE_SPEC))
    (package / "pytorch_utils.py").write_text(FAKE_PYTORCH_UTILS)
    environment = cli_environment()
    environment["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert f"REAL {package / 'spec.py'}" in result.stdout


def test_names_differ_for_different_files_and_follow_algoperfs_layout(tmp_path):
    first = tmp_path / "one" / "adamw" / "pytorch" / "submission.py"
    second = tmp_path / "two" / "adamw" / "pytorch" / "submission.py"
    for path, text in ((first, "a = 1\n"), (second, "a = 2\n")):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    assert files.file_label(first) == "adamw"
    assert (
        files.file_label(tmp_path / "pytorch_nadamw_full_budget.py") == "pytorch_nadamw_full_budget"
    )
    assert files.submission_name(first) != files.submission_name(second)
    assert files.submission_name(first).startswith("algoperf_adamw_")
    space = tmp_path / "space.json"
    space.write_text("[]")
    assert files.submission_name(first, space) != files.submission_name(first)


def test_update_batch_norm_false_keeps_the_running_statistics(tiny_workloads):
    workload = tiny_workloads["digits"]
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.BatchNorm1d(4))
    batch = {"inputs": torch.randn(16, 1, 8, 8)}
    norm = model[2]
    before = norm.running_mean.clone()
    workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, 0, update_batch_norm=False)
    assert torch.equal(norm.running_mean, before) and norm.momentum == 0.0
    workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, 0, update_batch_norm=True)
    assert not torch.equal(norm.running_mean, before) and norm.momentum == 0.1


def test_the_same_file_from_another_folder_is_the_same_run():
    """A run's identity names an AlgoPerf file by its sha256, not by where it lies."""
    from harness import lifecycle

    def config(path: str, sha: str) -> str:
        return (
            f"submission:\n  name: algoperf_adamw_{sha[:8]}\n  file: {path}/submission.py\n"
            f"  search_space: {path}/space.json\n  sha256: {sha}\nseed: 0\n"
        )

    here, there = config("/a", "1" * 64), config("/elsewhere/b", "1" * 64)
    assert lifecycle.identity(here) == lifecycle.identity(there)
    assert lifecycle.identity(here) != lifecycle.identity(config("/a", "2" * 64))
    plain = "submission:\n  name: sgd\n  file: x.py\nseed: 0\n"  # no sha256: paths count
    assert lifecycle.identity(plain) != lifecycle.identity(plain.replace("x.py", "y.py"))


def test_the_absl_stand_in_counts_per_call_site(caplog):
    from harness.algoperf_compat.absl import logging as absl_logging

    caplog.set_level(logging.INFO, logger="absl")
    for step in range(7):
        absl_logging.log_every_n(absl_logging.INFO, "every %d", 3, step)
        absl_logging.log_first_n(absl_logging.INFO, "first %d", 2, step)
    absl_logging.flush()
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if m.startswith("every")] == ["every 0", "every 3", "every 6"]
    assert [m for m in messages if m.startswith("first")] == ["first 0", "first 1"]
    absl_logging.log_first_n(absl_logging.INFO, "here", 1)
    absl_logging.log_first_n(absl_logging.INFO, "there", 1)  # another line: its own count
    assert [r.getMessage() for r in caplog.records][-2:] == ["here", "there"]


def test_data_selection_and_update_params_get_different_keys_each_step():
    from submissions.algoperf import step_keys

    data_key, update_key = step_keys(5)
    assert data_key.dtype == np.uint32 and data_key.shape == (2,)
    assert not np.array_equal(data_key, update_key)
    assert np.array_equal(step_keys(5)[1], update_key)  # the same on every run of the seed
    assert not np.array_equal(step_keys(6)[0], data_key)


def test_the_absl_stand_in_reports_the_callers_line(caplog):
    from harness.algoperf_compat.absl import logging as absl_logging

    caplog.set_level(logging.INFO, logger="absl")
    absl_logging.info("from the file")
    absl_logging.log_first_n(absl_logging.INFO, "first", 1)
    assert {Path(r.pathname).name for r in caplog.records} == {Path(__file__).name}


def test_a_submission_that_ended_its_last_run_starts_the_next_one_afresh(tmp_path):
    """The runner, not the submission, clears training_complete when a run starts."""
    overrides = [*file_settings(ADAMW), "workload=digits", "workload.eval_every_steps=20"]
    runner = make_runner(overrides, tmp_path / "run", max_steps=40)
    runner.submission.training_complete = True  # left over from an earlier run
    assert runner.run().global_step == 40
