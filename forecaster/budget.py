"""The time budget of one forecast-job run, visible to every adapter the run calls.

``schedule.runTimeout`` bounds a whole run (issue 10, item 3): :func:`run_budget` sets the deadline for the
code inside it (a context variable, so concurrent runs in other threads are unaffected), adapters shorten
their own timeouts with :func:`cap` so no single request outlives the run, and the runner checks
:func:`expired` between stages. Pure: only ``time.monotonic`` is read.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("run_deadline", default=None)


@contextmanager
def run_budget(seconds: float | None) -> Iterator[None]:
    """Code inside has ``seconds`` (monotonic) in all; None means no budget (no change)."""
    if seconds is None:
        yield
        return
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left in the current run's budget, or None when there is none."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def cap(seconds: float) -> float:
    """``seconds``, shortened to what is left of the run's budget (never below 0)."""
    left = remaining()
    return seconds if left is None else max(0.0, min(seconds, left))


def expired() -> bool:
    left = remaining()
    return left is not None and left <= 0
