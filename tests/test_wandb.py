"""logger=wandb in offline mode: the files it writes hold the config, every evaluation and the
summary, and a run resumed after preemption continues the same wandb run."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2

from harness import preemption, results
from harness.loggers import WANDB_ID_FILE
from tests.helpers import SMOKE, read_csv, run_dir_of, run_in_process

OVERRIDES = ["logger=wandb", "workload=friedman", *SMOKE]
BLOCK = 32 * 1024  # the .wandb file is a LevelDB-style log: 7-byte file header, 32 KiB blocks
FULL, FIRST, LAST = 1, 2, 4


def wandb_records(path: Path) -> list:
    """Decode the protobuf records of an offline .wandb file (wandb ships no reader)."""
    data, position, pending, records = path.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # too little room for a header: zero padding
            position += BLOCK - position % BLOCK
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (FULL, LAST):
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
        elif kind not in (FIRST, 3) or length == 0:
            pending = b""
    return records


def offline_runs(wandb_dir: Path) -> list[Path]:
    return sorted((wandb_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def _items(updates) -> dict:
    """wandb keys an item by `key` or, in newer versions, by its `nested_key` path."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in updates}


def contents(run_file: Path) -> dict:
    """history rows, summary, config and run id of one offline run."""
    found = {"history": [], "summary": {}, "config": {}, "id": None}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            found["history"].append(_items(record.history.item))
        elif kind == "summary":
            found["summary"].update(_items(record.summary.update))
        elif kind in ("config", "run"):
            config = record.config if kind == "config" else record.run.config
            found["config"].update(_items(config.update))
        if kind == "run":
            found["id"] = record.run.run_id
    return found


@pytest.fixture
def wandb_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_files"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb_files").mkdir()
    return tmp_path / "wandb_files"


def test_logs_config_every_evaluation_and_summary(wandb_dir, results_dir):
    record = run_in_process(OVERRIDES, results_dir)
    run_dir = run_dir_of(record, results_dir)
    (run_file,) = offline_runs(wandb_dir)
    logged = contents(run_file)

    assert logged["id"] == (run_dir / WANDB_ID_FILE).read_text().strip()
    assert logged["config"]["workload"]["name"] == "friedman"
    assert logged["config"]["submission"]["name"] == "adamw"
    evaluations = read_csv(run_dir / results.EVAL_FILE)
    rows = [row for row in logged["history"] if "validation/mse" in row]
    assert [row["global_step"] for row in rows] == [int(r["global_step"]) for r in evaluations]
    assert [row["validation/mse"] for row in rows] == [
        float(r["validation/mse"]) for r in evaluations
    ]
    assert logged["summary"]["status"] == record.status
    assert logged["summary"]["global_step"] == record.global_step
    assert logged["summary"]["time_to_target"] == record.time_to_target
    assert logged["summary"]["steps_to_target"] == record.steps_to_target


def test_resumed_run_continues_its_wandb_run(wandb_dir, results_dir, monkeypatch):
    monkeypatch.setattr(preemption, "requested", lambda: signal.SIGTERM)  # stop at step 1
    with pytest.raises(preemption.Preempted):
        run_in_process(OVERRIDES, results_dir)
    monkeypatch.setattr(preemption, "requested", lambda: None)
    record = run_in_process(OVERRIDES, results_dir)
    assert record.preemption_count == 1
    run_id = (run_dir_of(record, results_dir) / WANDB_ID_FILE).read_text().strip()

    first, second = (contents(path) for path in offline_runs(wandb_dir))
    assert first["id"] == second["id"] == run_id  # one wandb run, synced as one
    assert second["summary"]["status"] == record.status

    run_in_process([*OVERRIDES, "force=true"], results_dir)  # a fresh start: a new wandb run
    ids = {contents(path)["id"] for path in offline_runs(wandb_dir)}
    assert len(ids) == 2


def test_an_external_trial_logs_the_hyperparameters_it_trains_with(wandb_dir, results_dir):
    """Not the YAML's defaults: the trial's sampled point, as the optimizer gets it."""
    record = run_in_process([*OVERRIDES, "ruleset=external", "trial=3"], results_dir)
    (run_file,) = offline_runs(wandb_dir)
    logged = contents(run_file)["config"]["submission"]
    assert logged["hyperparameters"] == record.hyperparameters
    assert logged["search_point"] == record.search_point
    assert record.hyperparameters["beta1"] == pytest.approx(
        1 - record.search_point["one_minus_beta1"]
    )
    assert record.hyperparameters["learning_rate"] != 3e-3  # the YAML's default
