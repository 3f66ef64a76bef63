"""Online level correction ("nowcast") of the forecast from the live load, for the decision core.

A forecast made at midnight can be right in shape and wrong in level for a whole day: a snowstorm that
empties the streets, an outage upstream, a marketing push nobody declared. The live load tells within
minutes. This module keeps, in the controller state, an exponentially weighted average of
``log(observed / forecast mean of the current interval)`` and turns it into a factor for the near-term
forecast once it has stayed outside a dead band on the same side for a sustained time:

- the average moves with a time constant of ``window``, except that a cut (average below 1) is released
  six times faster, up to on-forecast: believing in more traffic again is the safe direction. Increases
  above the forecast move at the normal pace, so noise around the forecast does not ratchet it up;
- each ratio is bounded to ``[minFactor, maxFactor]`` before it is averaged, so the factor is too, and it
  applies only while the live load is fresh;
- a gap longer than ``window`` without a usable sample starts the average afresh.

Callers still apply every safety rule after it (the observed-load floor, no scale-down while blind), so a
wrong correction costs at most money (too high) or one lead time of capacity below the observed need (too
low, until the floor catches up). Pure: ``now`` is passed in.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd

from controller.config import LevelCorrectionConfig
from controller.core.forecastview import per_object
from controller.core.state import ControllerState
from controller.core.steps import Text, deferred_fields
from forecaster.durations import format_duration

LEVEL_CORRECTED = "ForecastLevelCorrected"


@deferred_fields("message")
@dataclass(frozen=True, init=False)
class Level:
    """The updated level and the factor to apply to the forecast now (1.0: no correction).

    ``message`` (set while a correction applies) is built on first read (see
    :class:`controller.core.steps.Deferred`).
    """

    log: float
    at: pd.Timestamp | None
    since: pd.Timestamp | None
    factor: float = 1.0
    message: str | None = None

    def __init__(
        self,
        log: float,
        at: pd.Timestamp | None,
        since: pd.Timestamp | None,
        factor: float = 1.0,
        message: Text | None = None,
    ) -> None:
        # One dict update instead of a frozen dataclass's per-field object.__setattr__ (made every tick).
        self.__dict__.update(log=log, at=at, since=since, factor=factor, message=message)


class _Bounds:
    """What :func:`update` derives from a config, once per config object."""

    __slots__ = ("above", "below", "hi", "lo", "sustain_ns", "tau", "window_ns")

    def __init__(self, config: LevelCorrectionConfig) -> None:
        self.lo, self.hi = math.log(config.min_factor), math.log(config.max_factor)
        self.below, self.above = math.log1p(-config.deadband), math.log1p(config.deadband)
        self.window_ns = int(float(config.window) * 1e9)
        self.tau = float(config.window)
        self.sustain_ns = int(float(config.sustain) * 1e9)


_BOUNDS: dict[int, tuple[weakref.ref[Any], _Bounds]] = {}


def update(
    state: ControllerState,
    config: LevelCorrectionConfig,
    observed: float | None,
    mean_now: float | None,
    now: pd.Timestamp,
) -> Level:
    """Fold one observation into the level and say which factor applies now.

    ``observed`` is the fresh live rate (None when missing or stale) and ``mean_now`` the forecast mean of
    the interval containing now (None when the forecast does not cover now). Without both, the level is
    carried over unchanged and no correction applies.
    """
    if not config.enabled or observed is None or mean_now is None or mean_now <= 0:
        return Level(state.level, state.level_at, state.level_since)
    b = per_object(_BOUNDS, config, _Bounds)
    # A ratio beyond the factor's bounds counts as the bound: the average never strays where it cannot act,
    # so a cut after a collapse to zero is released as quickly as a cut to minFactor.
    lo, hi = b.lo, b.hi
    x = min(max(math.log(observed / mean_now), lo), hi) if observed > 0 else lo
    last = state.level_at
    now_ns = now.value
    if last is None or now_ns - last.value > b.window_ns or now_ns < last.value:
        log = x  # start afresh
        prev_side = 0
    else:
        dt, tau, prev = (now_ns - last.value) / 1e9, b.tau, state.level
        log = prev + (1.0 - math.exp(-dt / tau)) * (x - prev)
        if prev < 0 < x - prev:  # releasing a cut: quickly, but only up to on-forecast
            quick = prev + (1.0 - math.exp(-6.0 * dt / tau)) * (x - prev)
            log = max(log, min(quick, 0.0))
        prev_side = -1 if prev < b.below else 1 if prev > b.above else 0  # side of the deadband
    side = -1 if log < b.below else 1 if log > b.above else 0
    if side == 0:
        since = None
    elif side == prev_side and state.level_since is not None:
        since = state.level_since
    else:
        since = now
    if since is None or now_ns - since.value < b.sustain_ns:
        return Level(log, now, since)
    ratio = math.exp(log)
    factor = min(max(ratio, config.min_factor), config.max_factor)
    bound = " (bounded)" if factor != ratio else ""
    return Level(log, now, since, factor, partial(_message, ratio, now, since, factor, bound))


def _message(ratio: float, now: pd.Timestamp, since: pd.Timestamp, factor: float, bound: str) -> str:
    return (
        f"live load has been {ratio:.2f}x the forecast mean for {format_duration(now - since)}: "
        f"near-term forecast scaled by {factor:.2f}{bound}"
    )
