"""Data-parallel runs (docs/design.md, "Distributed runs") on CPU with gloo and 2 processes.

- every submission in conf/submission trains alike on 2 processes and on 1 (same global batch,
  same seed: the same evaluations within TOLERANCE), or says in its YAML why it cannot
  (`data_parallel_refusal`), and then it really does train differently, and a data-parallel
  run of it is refused with one paragraph;
- `torchrun --nproc_per_node=2 run.py ...` gives the record and evaluations of one process, with
  world_size and backend in the record, and rank 0 alone writing the run folder;
- SIGTERM to one rank checkpoints both at the same step, and the resumed run ends like an
  uninterrupted 2-process run;
- the environment that names a rank (torchrun's, a multi-task Slurm job's).
A 2-task job on the local Slurm cluster is in tests/test_slurm.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from harness import distributed, launch, results, speed
from harness.algoperf_compat.algoperf import pytorch_utils
from harness.errors import UserError
from harness.ranks import is_secondary_rank, launched_ranks, local_world_size
from harness.runner import Runner, RunSettings
from tests.helpers import (
    CONF,
    PREEMPTIBLE,
    REQUIRED_SETTINGS,
    ROOT,
    TINY,
    assert_same_result,
    checkpoint_step,
    checkpointed_record,
    cli_environment,
    comparable,
    default_run_dir,
    group_choices,
    read_csv,
    run_in_process,
)

# Two processes sum a batch's gradient in two halves, then average: float rounding moves the
# losses in their 7th digit. Seen (AMD EPYC, torch 2.13 CPU) over the 12 steps of each
# submission below: ~1e-7 for most, 3.3e-5 for soap (its eigendecompositions amplify rounding);
# 4e-8 at step 100 of DATA_PARALLEL_RUN. Without the gradient averaging (each rank on its own
# half), 20 of the 22 submissions that run data-parallel differ by more than this:
TOLERANCE = 1e-4
# Over hundreds of steps, rounding differences grow: AdamW near friedman's noise floor turns a
# 1e-7 difference into ~1e-2 by step 300, whatever causes it. One process on 2 threads against
# 1 thread differs as much (0.8% at step 200), so later evaluations are held to this instead.
TOLERANCE_LATER = 0.05
WAIT_SECONDS = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- every submission, 1 process against 2 (in-process runners, no run folder layout) -----------
# The speed index is measured but not compared here: take it in a few milliseconds.
QUICK_PROBE = {
    "WARM_UP_SECONDS": 0.0,
    "REPEATS_AT_START": 1,
    "REPEATS_AT_EVALUATION": 1,
    "GROUP_SECONDS": 0.001,
}
# Sophia estimates its Hessian after step 9 (every 10 steps): compare beyond that.
STEPS, EVAL_EVERY = 12, 4


def compose_submission(name: str, folder: Path) -> DictConfig:
    """`name` on the tiny friedman workload (inside an initialised Hydra: one per process)."""
    overrides = [
        f"results_dir={folder}",
        f"submission={name}",
        "workload=friedman",
        *TINY["friedman"],
        f"workload.eval_every_steps={EVAL_EVERY}",
    ]
    cfg = compose("config", overrides=overrides)
    needed = REQUIRED_SETTINGS.get(cfg.submission.get("_target_"), [])
    return compose("config", overrides=[*needed, *overrides]) if needed else cfg


def trajectories(
    names: list[str], world: distributed.World, folder: Path
) -> dict[str, tuple[list[tuple[float, float]], str | None]]:
    """For each submission: (train/loss, validation/loss) at every evaluation of STEPS steps,
    and its data_parallel_refusal."""
    found = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            for name in names:
                found[name] = trajectory(compose_submission(name, folder), world, folder / name)
    finally:
        torch.set_num_threads(threads)
    return found


def trajectory(cfg: DictConfig, world: distributed.World, run_dir: Path):
    workload, submission, hyperparameters = launch.prepare(cfg)
    workload.setup(torch.device("cpu"))
    batch_size = submission.get_batch_size(workload.name) or workload.default_batch_size
    settings = RunSettings(
        seed=0, budget_sec=1e9, batch_size=batch_size, max_steps=STEPS, progress="none"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    seen = []  # the batch size the submission trains on at each step
    select = submission.data_selection

    def data_selection(*args, **kwargs):
        batch = select(*args, **kwargs)
        seen.append(len(batch["targets"]))
        return batch

    submission.data_selection = data_selection
    runner = Runner(
        workload,
        submission,
        SimpleNamespace(**hyperparameters),
        settings,
        run_dir,
        launch.standalone_record(workload),
        world=world,
    )
    runner.run()
    evaluations = [(r["train/loss"], r["validation/loss"]) for r in runner.state.eval_measurements]
    shares = sorted({size * world.size // batch_size for size in seen})  # [1]: 1/N each
    return evaluations, submission.data_parallel_refusal, shares


def train_every_submission(rank: int, size: int, port: int, folder: str, names: list[str]):
    """One rank of a 2-process world (torch.multiprocessing), every submission in turn."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(size),
    )
    for key, value in QUICK_PROBE.items():
        setattr(speed, key, value)
    world, _ = distributed.setup(torch.device("cpu"))
    pytorch_utils.use_device("cpu")
    use_ddp, algoperf_rank, device, gpus = pytorch_utils.pytorch_setup()  # as AlgoPerf files ask
    setup = {"use_ddp": use_ddp, "rank": algoperf_rank, "device": str(device), "gpus": gpus}
    (Path(folder) / f"pytorch_setup_{rank}.json").write_text(json.dumps(setup))
    found = trajectories(names, world, Path(folder) / f"rank{rank}")
    if world.is_writer:
        two = {name: (value[0], value[2]) for name, value in found.items()}
        torch.save(two, Path(folder) / "two.pt")
    distributed.shutdown()


@pytest.fixture(scope="module")
def one_and_two_processes(tmp_path_factory) -> tuple[dict, dict, list[dict]]:
    """Every submission's evaluations on 1 process (here) and on 2 (spawned meanwhile), and
    what pytorch_setup() told each of the 2 ranks."""
    folder = tmp_path_factory.mktemp("data_parallel")
    names = group_choices("submission")
    two = mp.start_processes(
        train_every_submission,
        args=(2, free_port(), str(folder), names),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    patch = pytest.MonkeyPatch()
    try:
        for key, value in QUICK_PROBE.items():
            patch.setattr(speed, key, value)
        one = trajectories(names, distributed.SINGLE, folder / "one")
    finally:
        patch.undo()
        while not two.join():
            pass
    setups = [json.loads((folder / f"pytorch_setup_{r}.json").read_text()) for r in (0, 1)]
    return one, torch.load(folder / "two.pt", weights_only=True), setups


def relative_difference(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    assert len(a) == len(b) == STEPS // EVAL_EVERY
    pairs = zip(a, b, strict=True)
    return max(
        abs(x - y) / max(abs(y), 1e-12) for pa, pb in pairs for x, y in zip(pa, pb, strict=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", group_choices("submission"))
def test_a_submission_trains_alike_on_two_processes_or_refuses(
    name, one_and_two_processes, tmp_path
):
    one, two, _ = one_and_two_processes
    evaluations, refusal, _ = one[name]
    two_evaluations, shares = two[name]
    assert shares == [1], "each rank trains on its half of the global batch"
    if refusal is None:
        difference = relative_difference(two_evaluations, evaluations)
        assert difference < TOLERANCE, (name, two_evaluations, evaluations)
    else:  # the YAML says why it cannot: a data-parallel run of it is refused
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            workload, submission, _ = launch.prepare(compose_submission(name, tmp_path))
        with pytest.raises(UserError, match="cannot run data-parallel over 2 processes"):
            launch.check_data_parallel(submission, workload, distributed.World(0, 2, 0, "gloo"))


@pytest.mark.slow
def test_algoperf_files_see_ddp_rank_and_device(one_and_two_processes):
    setups = one_and_two_processes[2]
    expected = [{"use_ddp": True, "rank": r, "device": "cpu", "gpus": 0} for r in (0, 1)]
    assert setups == expected
    pytorch_utils.use_device("cpu")
    assert pytorch_utils.pytorch_setup() == (False, 0, torch.device("cpu"), 0)  # one process


def test_a_refused_submission_or_an_uneven_batch_is_one_paragraph_before_any_file(tmp_path):
    class Refusing:
        name = "sophia"
        data_parallel_refusal = "its Hessian estimate needs the whole batch."

        def get_batch_size(self, workload_name):
            return 6

    workload = SimpleNamespace(name="friedman", default_batch_size=256)
    two = distributed.World(0, 2, 0, "gloo")
    with pytest.raises(UserError, match="cannot run data-parallel over 2 processes: its Hessian"):
        launch.check_data_parallel(Refusing(), workload, two)
    Refusing.data_parallel_refusal = None
    launch.check_data_parallel(Refusing(), workload, two)  # 6 splits over 2
    with pytest.raises(UserError, match=r"global batch of 6 examples .* over 4 processes"):
        launch.check_data_parallel(Refusing(), workload, distributed.World(0, 4, 0, "gloo"))
    launch.check_data_parallel(Refusing(), workload, distributed.SINGLE)


# -- torchrun: a run over 2 processes, as a user starts it ---------------------------------------
# helpers.PREEMPTIBLE, shorter: reaches its target (1.35) around step 300, interruptible after
# its first evaluation checkpoint (step 100), 600 steps in all.
DATA_PARALLEL_RUN = [*PREEMPTIBLE, "max_steps=600", "workload.scale_budget=false"]


def torchrun(args: list[str], cwd: Path) -> subprocess.Popen:
    """`torchrun --nproc_per_node=2 run.py ARGS` started in the background."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    command += [f"--master_port={free_port()}", str(ROOT / "run.py"), *args]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**cli_environment(), "OMP_NUM_THREADS": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: `finish` can stop every rank
    )


def finish(process: subprocess.Popen, wait: float = WAIT_SECONDS) -> tuple[str, str]:
    """The output of a torchrun started by `torchrun`, after at most `wait` seconds; a run that
    hangs or outlives a failed test is stopped with its ranks, not left behind."""
    try:
        return process.communicate(timeout=wait)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> tuple[Path, str]:
    """The run folder of DATA_PARALLEL_RUN over 2 processes, never interrupted, and its output."""
    folder = tmp_path_factory.mktemp("torchrun")
    process = torchrun(DATA_PARALLEL_RUN, folder)
    stdout, stderr = finish(process)
    assert process.returncode == 0, stdout + stderr
    return default_run_dir(folder / "results"), stdout + stderr


@pytest.mark.slow
def test_torchrun_two_processes_end_like_one(two_process_run, tmp_path):
    run_dir, output = two_process_run
    threads = torch.get_num_threads()
    try:
        one = run_in_process(DATA_PARALLEL_RUN, tmp_path / "results")
    finally:
        torch.set_num_threads(threads)
    two = results.load_record(run_dir)
    assert (two.world_size, two.backend) == (2, "gloo")
    assert (one.world_size, one.backend) == (1, None)
    assert two.hardware.endswith(" x2 processes") and not one.hardware.endswith("processes")
    assert two.status == one.status == "reached"
    assert two.global_step == one.global_step == 600
    rows = comparable(read_csv(run_dir / results.EVAL_FILE))
    reference = comparable(read_csv(default_run_dir(tmp_path / "results") / results.EVAL_FILE))
    assert [row.keys() for row in rows] == [row.keys() for row in reference]
    for index, (row, expected) in enumerate(zip(rows, reference, strict=True)):
        tolerance = TOLERANCE if index == 0 else TOLERANCE_LATER
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(float(value), rel=tolerance), (index, key)
    # Rank 0 alone writes and speaks: one summary line, one run.log, no file of rank 1.
    assert output.count("| results/default/fixed/adamw/friedman") == 1, output
    assert "Traceback" not in output
    written = {".hydra", ".lock", "config.yaml", "eval_measurements.csv", "hparams.json"}
    assert {p.name for p in run_dir.iterdir()} == {*written, "record.json", "run.log"}


def rank_pids(torchrun_pid: int) -> dict[int, int]:
    """{rank: pid} of the workers torchrun started."""
    children = Path(f"/proc/{torchrun_pid}/task/{torchrun_pid}/children").read_text().split()
    found = {}
    for pid in map(int, children):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        rank = next(v for v in environ if v.startswith(b"RANK=")).split(b"=")[1]
        found[int(rank)] = pid
    return found


@pytest.mark.slow
def test_sigterm_to_one_rank_checkpoints_all_and_the_resumed_run_ends_the_same(
    two_process_run, tmp_path
):
    run_dir = default_run_dir(tmp_path / "results")
    process = torchrun(DATA_PARALLEL_RUN, tmp_path)
    deadline = time.monotonic() + WAIT_SECONDS
    while checkpointed_record(run_dir) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no checkpoint to interrupt at:\n{finish(process, wait=1)}")
        time.sleep(0.05)
    os.kill(rank_pids(process.pid)[1], signal.SIGTERM)  # the signal reaches rank 1 only
    stdout, stderr = finish(process)
    output = stdout + stderr
    stopped = results.load_record(run_dir)
    assert stopped.status == "running"
    # Both ranks stopped at the same step boundary, where rank 0 wrote the checkpoint.
    assert checkpoint_step(run_dir) == stopped.global_step >= 100
    message = f"stopped by signal SIGTERM at step {stopped.global_step}; checkpoint saved. Run"
    assert output.count(message) == 2, output  # said by each rank

    resumed = torchrun(DATA_PARALLEL_RUN, tmp_path)
    stdout, stderr = finish(resumed)
    assert resumed.returncode == 0, stdout + stderr
    assert results.load_record(run_dir).preemption_count == 1
    assert_same_result(run_dir, two_process_run[0])


def test_the_environment_names_the_rank():
    assert launched_ranks({}) is None
    assert launched_ranks({"WORLD_SIZE": "1", "RANK": "0"}) is None
    torchrun_env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert launched_ranks(torchrun_env) == (3, 4, 1)
    assert local_world_size(4, torchrun_env) == 2
    assert is_secondary_rank(torchrun_env) and not is_secondary_rank({**torchrun_env, "RANK": "0"})
    slurm = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_NTASKS": "4", "SLURM_PROCID": "2"}
    slurm |= {"SLURM_LOCALID": "0", "SLURM_NTASKS_PER_NODE": "2(x2)"}
    assert launched_ranks(slurm) == (2, 4, 0) and local_world_size(4, slurm) == 2
    # A one-task Slurm job, or a Slurm job not started by submitit, is one process.
    assert launched_ranks({**slurm, "SLURM_NTASKS": "1"}) is None
    assert launched_ranks({k: v for k, v in slurm.items() if k != "SUBMITIT_EXECUTOR"}) is None


def test_shards_are_disjoint_and_cover_the_batch():
    batch = {"inputs": torch.arange(12).reshape(6, 2), "targets": torch.arange(6)}
    shards = [
        distributed.shard(batch, distributed.World(rank, 3, rank, "gloo")) for rank in range(3)
    ]
    assert torch.equal(torch.cat([s["targets"] for s in shards]), batch["targets"])
    assert torch.equal(torch.cat([s["inputs"] for s in shards]), batch["inputs"])
    assert distributed.shard(batch, distributed.SINGLE)["targets"] is batch["targets"]
