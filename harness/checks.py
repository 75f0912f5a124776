"""Checks Hydra runs before it creates a run's folder (a Hydra callback, `hydra.callbacks` in
conf/config.yaml): settings that do not exist, even when added with `+`, and a results folder
that cannot be written. Each failure is one paragraph on stderr and exit 2, before any file.

Hydra creates the run (or sweep) folder before the task starts, so a results folder under a
file, or a read-only one, would otherwise end in Hydra's traceback. Never imports torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness import lifecycle
from harness.config import RunConfig
from harness.errors import UserError

SETTINGS = [field.name for field in dataclasses.fields(RunConfig)]
# Whether Hydra composed the config and reached these checks; run.py reads it to tell Hydra's own
# composition errors (an unknown group choice or key, which Hydra reports with exit 1) from a
# failed run.
composed = False


def unknown_settings(cfg: DictConfig) -> list[str]:
    """One sentence per top-level key that is not a setting (a typo added with `+`)."""
    sentences = []
    for key in cfg:
        if key == "hydra" or key in SETTINGS:
            continue
        close = difflib.get_close_matches(str(key), SETTINGS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"settings: {', '.join(SETTINGS)}."
        sentences.append(f"'{key}' is not a setting of run.py; {hint}")
    return sentences


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


class StartChecks(Callback):
    """What a run or a sweep must pass before Hydra creates its folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, Path(str(config.hydra.run.dir)))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, Path(str(config.hydra.sweep.dir)))

    def _check(self, config: DictConfig, folder: Path) -> None:
        global composed
        composed = True
        unknown = unknown_settings(config)
        if unknown:
            fail(
                " ".join(unknown) + " (An override with + adds a key; a typo in it would be "
                "silently ignored, so it is refused.)"
            )
        try:
            lifecycle.check_writable(folder)
        except UserError as error:
            fail(str(error))
