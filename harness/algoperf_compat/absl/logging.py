"""`absl.logging` for submission files, on Python's logging (logger "absl"), when absl-py is not
installed. Covers the calls AlgoPerf files make: info, warning, error, debug, exception, log and
vlog, log_every_n, log_first_n and flush, with absl's level names."""

from __future__ import annotations

import logging as _logging
import sys as _sys
from collections import Counter as _Counter
from typing import Any

_logger = _logging.getLogger("absl")

DEBUG, INFO, WARNING, WARN, ERROR, FATAL = 1, 0, -1, -1, -2, -3  # absl's verbosity numbers
_PYTHON_LEVEL = {
    DEBUG: _logging.DEBUG,
    INFO: _logging.INFO,
    WARNING: _logging.WARNING,
    ERROR: _logging.ERROR,
    FATAL: _logging.CRITICAL,
}


def debug(msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.debug(msg, *args, **{"stacklevel": 2, **kwargs})


def info(msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.info(msg, *args, **{"stacklevel": 2, **kwargs})


def warning(msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.warning(msg, *args, **{"stacklevel": 2, **kwargs})


warn = warning


def error(msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.error(msg, *args, **{"stacklevel": 2, **kwargs})


def exception(msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.exception(msg, *args, **{"stacklevel": 2, **kwargs})


def fatal(msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.critical(msg, *args, **{"stacklevel": 2, **kwargs})
    raise SystemExit(1)


def log(level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.log(_PYTHON_LEVEL.get(level, _logging.DEBUG), msg, *args, **{"stacklevel": 2, **kwargs})


def vlog(level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
    _logger.log(_logging.DEBUG, msg, *args, **{"stacklevel": 2, **kwargs})


_calls: _Counter = _Counter()  # calls per (file, line) of log_every_n / log_first_n


def _call_count() -> int:
    """How often the caller's line called before (absl counts per call site)."""
    frame = _sys._getframe(2)
    key = (frame.f_code.co_filename, frame.f_lineno)
    count = _calls[key]
    _calls[key] += 1
    return count


def log_every_n(level: int, msg: Any, n: int, *args: Any) -> None:
    """Logs the 1st, (n+1)th, (2n+1)th ... call from one line."""
    if _call_count() % max(1, int(n)) == 0:
        log(level, msg, *args, stacklevel=3)


def log_first_n(level: int, msg: Any, n: int, *args: Any) -> None:
    """Logs the first n calls from one line."""
    if _call_count() < n:
        log(level, msg, *args, stacklevel=3)


def flush() -> None:
    for handler in _logger.handlers:
        handler.flush()


def set_verbosity(level: int | str) -> None:
    if isinstance(level, str):
        _logger.setLevel(level.upper())
    else:
        _logger.setLevel(_PYTHON_LEVEL.get(level, _logging.DEBUG))


def get_verbosity() -> int:
    return INFO
