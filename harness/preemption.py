"""Turns a termination signal into a request the runner honours at the next step boundary.

The handler only sets a flag: saving a checkpoint inside a signal handler could interrupt a
half-finished optimizer step. The runner checkpoints and raises `Preempted`; launch.py then
hands the signal to whoever handled it before (submitit's requeue-before-the-time-limit handler
in a Slurm job), so that handler still runs, just after the checkpoint instead of mid-step.
Never writes files and never exits the process itself.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

# SIGTERM: Slurm's scancel/requeue/preemption, `kill`; SIGUSR1/SIGUSR2: the signal Slurm sends
# before the time limit (`--signal`; submitit asks for SIGUSR2 by default); SIGINT: Ctrl-C.
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)

_requested: list[int] = []
_previous: dict[int, Any] = {}  # handlers that were installed before ours


class Preempted(Exception):
    """Raised by the runner after checkpointing in response to a signal."""

    def __init__(self, signum: int, global_step: int | None = None):
        at = "" if global_step is None else f" at step {global_step}"
        super().__init__(f"stopped by signal {signal.Signals(signum).name}{at}; checkpoint saved")
        self.interrupted = signum == signal.SIGINT
        self.signum = signum
        self.global_step = global_step


def _handler(signum: int, frame: object) -> None:
    _requested.append(signum)


def install(signals: tuple[signal.Signals, ...] = SIGNALS) -> None:
    """Route `signals` to the flag, remembering the handlers they replace (see `hand_over`)."""
    for signum in signals:
        previous = signal.signal(signum, _handler)
        if previous is not _handler:
            _previous[signum] = previous


def uninstall() -> None:
    """Put back the handlers `install` replaced."""
    for signum, previous in _previous.items():
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    _previous.clear()


@contextlib.contextmanager
def signals_checkpoint() -> Iterator[None]:
    """While training: a signal means checkpoint at the next step boundary, then stop."""
    clear()
    install()
    try:
        yield
    finally:
        uninstall()


def requested() -> int | None:
    """The first signal received since the last `clear()`, or None."""
    return _requested[0] if _requested else None


def clear() -> None:
    _requested.clear()


def previous_handler(signum: int) -> Callable[[int, Any], Any] | None:
    """The Python handler `install` displaced for `signum` (None for the default or ignore)."""
    previous = _previous.get(signum)
    return previous if callable(previous) else None


def hand_over(signum: int) -> None:
    """After the checkpoint: let the displaced handler act on the signal (it may requeue and exit).

    Must be called while our handlers are still installed (inside `signals_checkpoint`).
    """
    previous = previous_handler(signum)
    if previous is not None and signum != signal.SIGINT:  # Ctrl-C is the user's, not a requeue
        previous(signum, None)
