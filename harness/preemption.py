"""Turns a termination signal into a request the runner honours at the next step boundary.

The handler only sets a flag: saving a checkpoint inside a signal handler could interrupt a
half-finished optimizer step. The runner checkpoints and raises `Preempted`.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable

_requested: list[int] = []


class Preempted(Exception):
    """Raised by the runner after checkpointing in response to a signal."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signal.Signals(signum).name}; checkpoint saved")
        self.signum = signum


def _handler(signum: int, frame: object) -> None:
    _requested.append(signum)


def install(signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGUSR1)) -> None:
    for signum in signals:
        signal.signal(signum, _handler)


def requested() -> int | None:
    """The first signal received since the last `clear()`, or None."""
    return _requested[0] if _requested else None


def clear() -> None:
    _requested.clear()
