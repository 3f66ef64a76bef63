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
from dataclasses import dataclass

import pandas as pd

from controller.config import LevelCorrectionConfig
from controller.state import ControllerState
from forecaster.durations import format_duration

LEVEL_CORRECTED = "ForecastLevelCorrected"


@dataclass(frozen=True)
class Level:
    """The updated level and the factor to apply to the forecast now (1.0: no correction)."""

    log: float
    at: pd.Timestamp | None
    since: pd.Timestamp | None
    factor: float = 1.0
    message: str | None = None


def _side(log: float, deadband: float) -> int:
    if log < math.log1p(-deadband):
        return -1
    if log > math.log1p(deadband):
        return 1
    return 0


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
    keep = Level(state.level, state.level_at, state.level_since)
    if not config.enabled or observed is None or mean_now is None or mean_now <= 0:
        return keep
    # A ratio beyond the factor's bounds counts as the bound: the average never strays where it cannot act,
    # so a cut after a collapse to zero is released as quickly as a cut to minFactor.
    lo, hi = math.log(config.min_factor), math.log(config.max_factor)
    x = min(max(math.log(observed / mean_now), lo), hi) if observed > 0 else lo
    window_ns = int(float(config.window) * 1e9)
    last = state.level_at
    if last is None or now.value - last.value > window_ns or now.value < last.value:
        log = x  # start afresh
        prev_side = 0
    else:
        dt, tau, prev = (now.value - last.value) / 1e9, float(config.window), state.level
        log = prev + (1.0 - math.exp(-dt / tau)) * (x - prev)
        if prev < 0 < x - prev:  # releasing a cut: quickly, but only up to on-forecast
            quick = prev + (1.0 - math.exp(-6.0 * dt / tau)) * (x - prev)
            log = max(log, min(quick, 0.0))
        prev_side = _side(state.level, config.deadband)
    side = _side(log, config.deadband)
    if side == 0:
        since = None
    elif side == prev_side and state.level_since is not None:
        since = state.level_since
    else:
        since = now
    if since is None or now.value - since.value < int(float(config.sustain) * 1e9):
        return Level(log, now, since)
    ratio = math.exp(log)
    factor = min(max(ratio, config.min_factor), config.max_factor)
    bound = " (bounded)" if factor != ratio else ""
    message = (
        f"live load has been {ratio:.2f}x the forecast mean for {format_duration(now - since)}: "
        f"near-term forecast scaled by {factor:.2f}{bound}"
    )
    return Level(log, now, since, factor, message)
