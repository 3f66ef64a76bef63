"""Seasonal baselines: seasonal naive, multi-week median and weighted mean, all on local wall-clock time.

Traffic repeats by local time of day and weekday, so "one week earlier" means the same wall-clock time in the
series' zone: across a DST change the lookup does not shift by an hour. Outage holes (NaN) are skipped by
taking the next older week. Declared promotion uplifts are divided out of the history and applied to the
horizon, so last week's promotion is not repeated and this week's is not missed.

These models are cheap enough to backtest on many folds and are hard to beat on strongly weekly traffic.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext
from forecaster.models.common import (
    deflate_history,
    first_available,
    future_index,
    make_frame,
    mask_holidays,
    uplift_factor,
    weekly_lags,
)

WEEK = pd.Timedelta(days=7)
DAY = pd.Timedelta(days=1)


class _Seasonal:
    """Shared fit/predict: collect the same local time in the last weeks, then combine them."""

    alias = "seasonal"
    max_weeks = 10

    level_damp = 0.7
    spread = 0  # > 0: also use the +-spread neighbouring intervals of each past week

    def __init__(self, weeks: int = 1, level_days: float = 0.0) -> None:
        self.weeks = weeks
        self.level_days = level_days
        self._history: pd.DataFrame | None = None
        self._ctx: FitContext | None = None
        self._period = WEEK

    def fit(self, history: pd.DataFrame, ctx: FitContext) -> _Seasonal:
        hist = history[["ds", "y"]].reset_index(drop=True)
        if not np.isfinite(hist["y"].to_numpy(dtype=float)).any():
            raise ValueError("history has no observed values")
        span = hist["ds"].iloc[-1] - hist["ds"].iloc[0] + ctx.freq
        # Less than a week of history: fall back to the daily profile.
        self._period = WEEK if span >= WEEK else DAY
        self._history = mask_holidays(deflate_history(hist, ctx.events), ctx.events)
        self._ctx = ctx
        return self

    def combine(self, lags: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _point(self, targets: pd.DatetimeIndex, history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        assert self._ctx is not None
        lags = weekly_lags(history, targets, self._ctx.timezone, self.max_weeks, self._period)
        picked = first_available(lags, self.weeks)
        if self.spread:
            # Neighbouring intervals of the same weeks: a smoother profile for noisy, bursty series.
            near = [picked]
            for off in range(-self.spread, self.spread + 1):
                if off:
                    shifted = weekly_lags(
                        history,
                        targets + off * self._ctx.freq,
                        self._ctx.timezone,
                        self.max_weeks,
                        self._period,
                    )
                    near.append(first_available(shifted, self.weeks))
            picked = np.hstack(near)
        yhat = self.combine(picked)
        return yhat, picked

    def _level(self, history: pd.DataFrame) -> float:
        """Ratio of the recent actuals to what the model would have said for them (damped, clipped)."""
        assert self._ctx is not None
        n = round(pd.Timedelta(days=self.level_days) / self._ctx.freq)
        if n <= 0 or len(history) <= n:
            return 1.0
        recent = history.iloc[-n:]
        pred, _ = self._point(pd.DatetimeIndex(recent["ds"]), history.iloc[:-n])
        actual = recent["y"].to_numpy(dtype=float)
        ok = np.isfinite(pred) & np.isfinite(actual)
        if ok.sum() < n / 2 or pred[ok].sum() <= 0:
            return 1.0
        ratio = float(actual[ok].sum() / pred[ok].sum())
        return float(np.clip(1.0 + self.level_damp * (ratio - 1.0), 0.75, 1.33))

    def predict(self, horizon: int) -> pd.DataFrame:
        if self._history is None or self._ctx is None:
            raise RuntimeError("fit() must be called before predict()")
        hist = self._history
        targets = future_index(hist["ds"].iloc[-1], self._ctx.freq, horizon)
        yhat, picked = self._point(targets, hist)
        # Rows with no observed week at all: use the mean of the last day, never a hole.
        if not np.isfinite(yhat).all():
            fallback = float(np.nanmean(hist["y"].to_numpy(dtype=float)[-int(DAY / self._ctx.freq) :]))
            if not np.isfinite(fallback):
                fallback = float(np.nanmean(hist["y"].to_numpy(dtype=float)))
            yhat = np.where(np.isfinite(yhat), yhat, fallback)
            picked = np.where(np.isfinite(picked), picked, fallback)
        yhat = yhat * (self._level(hist) if self.level_days else 1.0)
        with np.errstate(all="ignore"):
            lo = np.nanmin(picked, axis=1)
            hi = np.nanmax(picked, axis=1)
        lo = np.where(np.isfinite(lo), np.minimum(lo, yhat * 0.9), yhat * 0.9)
        hi = np.where(np.isfinite(hi), np.maximum(hi, yhat * 1.1), yhat * 1.1)
        factor = uplift_factor(targets, self._ctx.events)
        return make_frame(targets, yhat * factor, lo * factor, hi * factor)


class SeasonalNaive(_Seasonal):
    """The value at the same local time one week earlier (older weeks fill outage holes)."""

    alias = "snaive"

    def __init__(self) -> None:
        super().__init__(weeks=1)

    def combine(self, lags: np.ndarray) -> np.ndarray:
        return lags[:, 0]


class SeasonalMedian(_Seasonal):
    """Median of the same local time over the last ``weeks`` observed weeks: robust to one-off spikes."""

    alias = "seasonal_median"

    def __init__(self, weeks: int = 8, level_days: float = 0.0) -> None:
        super().__init__(weeks=weeks, level_days=level_days)

    def combine(self, lags: np.ndarray) -> np.ndarray:
        return _nanmedian(lags)


class SeasonalWeightedMean(_Seasonal):
    """Recency-weighted mean over the last ``weeks`` observed weeks, scaled to the last day's level."""

    alias = "seasonal_wmean"

    def __init__(self, weeks: int = 8, decay: float = 0.8, level_days: float = 1.0) -> None:
        super().__init__(weeks=weeks, level_days=level_days)
        self.decay = decay

    def combine(self, lags: np.ndarray) -> np.ndarray:
        w = self.decay ** np.arange(lags.shape[1], dtype=float)
        ok = np.isfinite(lags)
        num = np.where(ok, lags, 0.0) @ w
        den = ok.astype(float) @ w
        with np.errstate(all="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


class SeasonalMedianLevel(SeasonalMedian):
    """Seasonal median scaled to the level of the last day (damped): follows slow drifts and level shifts."""

    alias = "seasonal_median_level"

    def __init__(self, weeks: int = 8, level_days: float = 1.0) -> None:
        super().__init__(weeks=weeks, level_days=level_days)


class SeasonalMedianSmooth(SeasonalMedianLevel):
    """Level-adjusted seasonal median pooling the neighbouring interval on each side of every past week.

    Three times the samples and a smoother profile: better on noisy, bursty series."""

    alias = "seasonal_median_smooth"
    spread = 1


class SeasonalDayRatio(SeasonalMedian):
    """Yesterday's value at the same local time times the typical ratio (median over weeks) of the two days.

    Carries the most recent day's level and shape forward; beyond one day it chains its own forecast.
    """

    alias = "seasonal_dayratio"

    def predict(self, horizon: int) -> pd.DataFrame:
        base = super().predict(horizon)  # median forecast: the fallback and the band
        assert self._history is not None and self._ctx is not None
        hist, ctx = self._history, self._ctx
        if self._period != WEEK:
            return base
        targets = pd.DatetimeIndex(base["ds"])
        prev = targets - DAY
        num = _nanmedian(
            first_available(weekly_lags(hist, targets, ctx.timezone, self.max_weeks), self.weeks)
        )
        den = _nanmedian(first_available(weekly_lags(hist, prev, ctx.timezone, self.max_weeks), self.weeks))
        with np.errstate(all="ignore"):
            ratio = np.clip(num / np.where(den > 0, den, np.nan), 0.2, 5.0)
        tail = hist.iloc[-round(DAY / ctx.freq) - 1 :]
        known = dict(
            zip(
                pd.DatetimeIndex(tail["ds"]).as_unit("ns").asi8.tolist(),
                tail["y"].to_numpy(dtype=float).tolist(),
                strict=True,
            )
        )
        factor = uplift_factor(targets, ctx.events)
        fallback = base["yhat"].to_numpy(dtype=float) / factor
        out = np.empty(horizon)
        for i, (t, p) in enumerate(
            zip(targets.as_unit("ns").asi8.tolist(), prev.as_unit("ns").asi8.tolist(), strict=True)
        ):
            val = known.get(p, np.nan) * ratio[i]
            out[i] = known[t] = val if np.isfinite(val) else fallback[i]
        yhat = out * factor
        return make_frame(
            targets,
            yhat,
            np.minimum(base["yhat_lower"].to_numpy(), yhat),
            np.maximum(base["yhat_upper"].to_numpy(), yhat),
        )


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Row-wise median ignoring NaN; NaN (no warning) where a row has no value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmedian(values, axis=1), dtype=float)
