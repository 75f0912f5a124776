"""Experiment trackers. The runner calls these off the clock (counted as logging time).

`logger=none` (the default) does nothing. A tracker is one class named by `_target_` in
conf/logger/*.yaml implementing the three methods of RunLogger.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


class RunLogger:
    """Receives the resolved config once, every evaluation, and the final summary."""

    def start(self, run_dir: Path, config: Mapping[str, Any], resumed: bool) -> None:
        pass

    def log_eval(self, global_step: int, measurements: Mapping[str, float]) -> None:
        pass

    def finish(self, record: Mapping[str, Any]) -> None:
        pass


class NullLogger(RunLogger):
    """`logger=none`: log nothing beyond the results folder."""
