"""What a person watching a run sees: a progress bar on a terminal, log lines elsewhere.

Called by the runner off the clock. The bar tracks the submission clock against the budget;
its text refreshes at most a few times a second so that it costs nothing per step.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping

from tqdm import tqdm

log = logging.getLogger("harness")
MODES = ("auto", "bar", "log", "none")
REFRESH_SECONDS = 0.25  # bar text
LOG_EVERY_SECONDS = 10.0  # log mode: at most one evaluation line per this many seconds
BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.0f}s on the clock{postfix}"


def _format_metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


class Progress:
    def __init__(self, mode: str, label: str, budget_sec: float, target_metric: str, target: float):
        if mode not in MODES:
            raise ValueError(f"progress={mode!r}; choose one of {', '.join(MODES)}")
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self.target_metric, self.target = target_metric, target
        self.last_metric: float | None = None
        self._next_refresh = 0.0
        self._next_log = 0.0
        self.bar = None
        if mode == "bar":
            self.bar = tqdm(
                total=round(budget_sec, 1),
                desc=label,
                unit="s",
                leave=False,
                dynamic_ncols=True,
                bar_format=BAR_FORMAT,
            )

    def step(self, global_step: int, submission_time: float, loss: float | None) -> None:
        if self.bar is None:
            return
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_SECONDS
        self.bar.n = round(min(submission_time, self.bar.total), 1)
        self.bar.set_postfix_str(
            f"step {global_step} loss {_format_metric(loss)} "
            f"{self.target_metric} {_format_metric(self.last_metric)} (target {self.target:g})"
        )

    def evaluation(self, row: Mapping[str, float], loss: float | None) -> None:
        self.last_metric = row.get(self.target_metric)
        now = time.monotonic()
        if self.mode == "log" and now >= self._next_log:
            self._next_log = now + LOG_EVERY_SECONDS
            log.info(
                "step %d | loss %s | %s %s (target %g) | clock %.1fs",
                row["global_step"],
                _format_metric(loss),
                self.target_metric,
                _format_metric(self.last_metric),
                self.target,
                row["accumulated_submission_time"],
            )
        self._next_refresh = 0.0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
