"""Experiment trackers. The runner calls these off the clock (counted as logging time).

`logger=none` (the default) does nothing; `logger=wandb` sends the run to Weights & Biases.
A tracker is one class named by `_target_` in conf/logger/*.yaml implementing the three
methods of RunLogger; it must never change what the run computes or writes to record.json.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import results
from harness.errors import UserError


class RunLogger:
    """Receives the resolved config once, every evaluation, and the final summary."""

    def start(self, run_dir: Path, config: Mapping[str, Any], resumed: bool) -> None:
        pass

    def log_eval(self, global_step: int, measurements: Mapping[str, float]) -> None:
        pass

    def finish(self, record: results.RunRecord) -> None:
        pass


class NullLogger(RunLogger):
    """`logger=none`: log nothing beyond the results folder."""


WANDB_ID_FILE = "wandb_run_id.txt"  # in the run folder: a requeued run continues this wandb run
NAMED = ("ruleset", "submission", "workload")


def _new_wandb_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


class WandbLogger(RunLogger):
    """`logger=wandb`: the resolved config, every evaluation and the run's summary, sent to
    Weights & Biases. WANDB_MODE=offline writes the run to disk for a later `wandb sync`.

    The wandb run id is stored in the run folder, so a run that resumes after preemption or a
    requeue continues the same wandb run (resume="allow") instead of starting a duplicate.
    """

    def __init__(
        self,
        project: str = "optbench",
        entity: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        mode: str | None = None,
        dir: str | None = None,
    ):
        self.project, self.entity, self.group = project, entity, group
        self.tags, self.mode, self.dir = list(tags), mode, dir
        self.run = None

    def start(self, run_dir: Path, config: Mapping[str, Any], resumed: bool) -> None:
        import wandb  # here, not at import: a second or more that logger=none never pays

        id_file = Path(run_dir) / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if resumed and id_file.exists() else _new_wandb_id()
        results.write_text(id_file, run_id + "\n")
        names = {key: config.get(key, {}).get("name", "?") for key in NAMED}
        try:
            self.run = wandb.init(
                project=self.project,
                entity=self.entity,
                group=self.group or f"{config.get('experiment_name')}/{names['ruleset']}",
                # The run's folder inside its experiment: unique, and what a user searches for.
                name=results.run_subdir(
                    names["ruleset"],
                    names["submission"],
                    names["workload"],
                    config.get("study"),
                    config.get("trial"),
                ),
                tags=self.tags or None,
                config=dict(config),
                id=run_id,
                resume="allow",
                mode=self.mode,
                dir=self.dir or os.environ.get("WANDB_DIR") or str(run_dir),
                reinit="finish_previous",
            )
        except Exception as error:  # wandb raises several types; all mean "could not start"
            raise UserError(
                f"Weights & Biases could not start ({type(error).__name__}: {error}). Log in "
                "with `wandb login` or set WANDB_API_KEY; or run without an account with "
                "WANDB_MODE=offline (upload later with `wandb sync`); or use logger=none."
            ) from error
        # Evaluations are indexed by the training step, not by wandb's own call counter, so
        # the curves of a resumed run line up with those logged before the interruption.
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")

    def log_eval(self, global_step: int, measurements: Mapping[str, float]) -> None:
        if self.run is not None:
            self.run.log({**measurements, "global_step": global_step})

    def finish(self, record: results.RunRecord) -> None:
        if self.run is None:  # the run failed before start(): nothing was opened
            return
        summary_keys = (
            "status",
            "reached",
            "time_to_target",
            "steps_to_target",
            "global_step",
            "final_validation_metric",
            "accumulated_submission_time",
            "accumulated_eval_time",
            "accumulated_logging_time",
            "preemption_count",
            "hardware",
            "error",
        )
        self.run.summary.update({key: getattr(record, key) for key in summary_keys})
        self.run.finish(exit_code=1 if record.status == "failed" else 0)
        self.run = None
