"""Lag and calendar features for the learned models, on arrays, for every fold at once.

Why this module exists: the learned models (:mod:`forecaster.models.learned`) regress a series on its own past
and on what is known about the future. Their features are built here, as numpy arrays over an absolute grid
that reaches ``horizon`` intervals past the history, so that the rolling-origin backtest evaluates all folds
from one feature matrix instead of rebuilding frames per fold.

The target is scale free: the value divided by the series' recent weekly level (the mean of the week that
ends ``min_lag`` intervals before the target). A quiet series and a busy one then share one feature space,
which is what lets one global model serve a whole batch. Features, all known ``min_lag`` intervals ahead:

- ``lag_L``: the value ``L`` intervals back over the level, for ``L`` in ``min_lag``, ``min_lag + day``,
  one and two weeks (those not shorter than ``min_lag``), scaled to the series' interval;
- ``smed``: the median of the same time 1..4 weeks back over the level (what the seasonal median says);
- ``day``: the mean of the day that ends ``min_lag`` before the target over the level (recent drift);
- ``trend``: this week's level over the previous week's;
- ``slot``, ``weekday``: local time of day (in intervals) and day of week;
- known-future covariates, one column each, as given.

Calendar days (holidays, month start, paydays) are not features: the pipeline learns their effect once for
every model family (:mod:`forecaster.series.event_effects`), and the history the models see has holidays
masked and declared promotions divided out, exactly as the seasonal models see it.

``min_lag`` decides direct against recursive forecasting. Direct: ``min_lag`` is the horizon rounded up to
whole days, so every feature of every horizon step is known at the origin and one matrix serves all folds.
Recursive: ``min_lag`` is 1 and the model's own forecasts fill the values not yet known, one step at a time.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext
from forecaster.models.common import holiday_mask, uplift_factor, wall_clock

DAY = pd.Timedelta(days=1)
SMED_WEEKS = 8
BASE_FEATURES = ("smed", "day", "trend", "slot", "weekday")


def steps_per_day(freq: pd.Timedelta) -> int:
    """Intervals in a day (at least 1)."""
    return max(round(DAY / pd.Timedelta(freq)), 1)


def lag_set(min_lag: int, day: int) -> tuple[int, ...]:
    """The lags (in intervals) used at this minimum lag: min_lag, min_lag + day, 1 and 2 weeks."""
    week = 7 * day
    lags = {min_lag, min_lag + day} | {k * week for k in (1, 2) if k * week >= min_lag}
    return tuple(sorted(lags))


def direct_min_lag(horizon: int, day: int) -> int:
    """The smallest whole number of days covering the horizon: every feature is known at the origin."""
    return day * max(math.ceil(horizon / day), 1)


@dataclass
class Grid:
    """One series on an absolute grid of ``n + horizon`` intervals: model values, calendar and covariates.

    ``y`` holds the values the models learn from (promotions divided out, holidays and outages NaN; NaN past
    the history), ``factor`` the declared uplift per interval (applied to the forecast), ``covariates`` the
    known-future values (columns in ``covariate_names``).
    """

    y: np.ndarray
    n: int
    day: int
    slot: np.ndarray
    weekday: np.ndarray
    factor: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    stamps: pd.DatetimeIndex

    @property
    def week(self) -> int:
        return 7 * self.day

    @classmethod
    def build(cls, history: pd.DataFrame, ctx: FitContext, horizon: int) -> Grid:
        """The grid of a regular ``ds, y`` history (ValueError on an irregular one)."""
        ds = pd.DatetimeIndex(history["ds"])
        if len(ds) < 2:
            raise ValueError("need at least two intervals of history")
        freq = pd.Timedelta(ctx.freq)
        if not (np.diff(ds.as_unit("ns").asi8) == freq.value).all():
            raise ValueError("history is not on a regular grid")
        n = len(ds)
        stamps = pd.date_range(ds[0], periods=n + horizon, freq=freq, name="ds")
        local = wall_clock(stamps, ctx.timezone)
        slot = np.asarray((local - local.normalize()) // freq, dtype=float)
        weekday = np.asarray(local.day_of_week, dtype=float)
        factor = uplift_factor(stamps, ctx.events)
        y = np.full(n + horizon, np.nan)
        y[:n] = history["y"].to_numpy(dtype=float) / factor[:n]
        y[:n][holiday_mask(stamps[:n], ctx.events, ctx.timezone)] = np.nan
        names, cov = covariate_matrix(ctx, stamps, n)
        return cls(y, n, steps_per_day(freq), slot, weekday, factor, cov, names, stamps)


def covariate_matrix(
    ctx: FitContext, stamps: pd.DatetimeIndex, n: int
) -> tuple[tuple[str, ...], np.ndarray]:
    """Known-future covariates aligned to ``stamps``; past gaps stay NaN, a gap from position ``n`` on (the
    horizon) is a ValueError naming the column and the first missing time."""
    cov = ctx.covariates
    if cov is None or len(cov.columns) <= 1:
        return (), np.empty((len(stamps), 0))
    frame = cov.set_index(pd.DatetimeIndex(cov["ds"])).drop(columns=["ds"])
    aligned = frame.reindex(stamps)
    for name in aligned.columns:
        values = aligned[name].to_numpy(dtype=float)
        missing = ~np.isfinite(values)
        missing[:n] = False
        if missing.any():
            first = stamps[int(np.flatnonzero(missing)[0])]
            raise ValueError(f"covariate {name!r} has no value at {first.isoformat()}")
    return tuple(str(c) for c in aligned.columns), aligned.to_numpy(dtype=float)


def feature_names(min_lag: int, day: int, covariates: tuple[str, ...]) -> list[str]:
    """Column names of :func:`features` (lags first, then the base features, then covariates)."""
    return [f"lag_{lag}" for lag in lag_set(min_lag, day)] + list(BASE_FEATURES) + list(covariates)


def _window_mean(cs: np.ndarray, cnt: np.ndarray, end: np.ndarray, length: int) -> np.ndarray:
    """Mean of the finite values in ``[end - length + 1, end]`` per row (cumsums padded with a leading 0)."""
    hi = np.clip(end + 1, 0, cs.shape[-1] - 1)
    lo = np.clip(end + 1 - length, 0, cs.shape[-1] - 1)
    s = np.take_along_axis(cs, hi, -1) - np.take_along_axis(cs, lo, -1)
    c = np.take_along_axis(cnt, hi, -1) - np.take_along_axis(cnt, lo, -1)
    with np.errstate(all="ignore"):
        return np.where(c >= length / 2, s / np.where(c > 0, c, 1), np.nan)


def features(g: Grid, ys: np.ndarray, pos: np.ndarray, min_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """(X, level) for target positions ``pos`` (F, R) on value rows ``ys`` (F, size).

    ``ys[f]`` is what fold ``f`` may see (NaN elsewhere). X has shape (F, R, features) with the columns of
    :func:`feature_names`; level (F, R) is the weekly level the target is divided by (NaN: no level).
    """
    day, week = g.day, g.week
    finite = np.isfinite(ys)
    zero = np.zeros((ys.shape[0], 1))
    cs = np.concatenate([zero, np.cumsum(np.where(finite, ys, 0.0), axis=-1)], axis=-1)
    cnt = np.concatenate([zero, np.cumsum(finite, axis=-1)], axis=-1)
    end = pos - min_lag
    level = _window_mean(cs, cnt, end, week)
    level = np.where(level > 0, level, np.nan)
    prev = _window_mean(cs, cnt, end - week, week)

    def at(p: np.ndarray) -> np.ndarray:
        ok = p >= 0
        return np.where(ok, np.take_along_axis(ys, np.where(ok, p, 0), -1), np.nan)

    cols = [at(pos - lag) / level for lag in lag_set(min_lag, day)]
    first_week = max(math.ceil(min_lag / week), 1)
    weekly = np.stack([at(pos - k * week) for k in range(first_week, first_week + SMED_WEEKS)], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        smed = np.nanmedian(weekly, axis=-1)
    cols.append(smed / level)
    cols.append(_window_mean(cs, cnt, end, day) / level)
    with np.errstate(all="ignore"):
        cols.append(level / np.where(prev > 0, prev, np.nan))
    cols.append(g.slot[pos])
    cols.append(g.weekday[pos])
    for j in range(g.covariates.shape[1]):
        cols.append(g.covariates[pos, j])
    return np.stack(cols, axis=-1), level
