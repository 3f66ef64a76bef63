"""Helpers shared by the models: the future index, wall-clock lookups, event uplifts and crude bands.

Models only produce a point forecast and a rough band; the pipeline replaces the band with one calibrated on
backtest residuals (:mod:`forecaster.backtest`), so the band here only has to be ordered and finite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.models.base import FORECAST_COLUMNS

WEEK = pd.Timedelta(days=7)


def future_index(last: pd.Timestamp, freq: pd.Timedelta, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` interval starts after ``last`` (absolute time: DST never skips or repeats one)."""
    return pd.date_range(pd.Timestamp(last) + freq, periods=horizon, freq=freq, name="ds")


def wall_clock(ds: pd.DatetimeIndex | pd.Series, timezone: str) -> pd.DatetimeIndex:
    """Local wall-clock times (tz-naive) of tz-aware stamps; naive stamps are taken as already local."""
    idx = pd.DatetimeIndex(ds)
    if idx.tz is None:
        return idx
    return idx.tz_convert(timezone).tz_localize(None)


def by_wall_clock(history: pd.DataFrame, timezone: str) -> pd.Series:
    """History values keyed by local wall-clock time; the repeated hour at a DST fall-back is averaged."""
    local = wall_clock(history["ds"], timezone)
    s = pd.Series(history["y"].to_numpy(dtype=float), index=local)
    if s.index.has_duplicates:
        s = s.groupby(level=0).mean()
    return s.sort_index()


def weekly_lags(
    history: pd.DataFrame,
    targets: pd.DatetimeIndex,
    timezone: str,
    weeks: int,
    period: pd.Timedelta = WEEK,
) -> np.ndarray:
    """Matrix (len(targets), weeks): value at the same local time 1..weeks periods before each target.

    NaN where that time is missing, an outage, not yet observed, or does not exist locally (DST gap).
    """
    s = by_wall_clock(history, timezone)
    keys = pd.DatetimeIndex(s.index).as_unit("ns").asi8
    vals = s.to_numpy(dtype=float)
    local = wall_clock(targets, timezone).as_unit("ns").asi8
    step = int(pd.Timedelta(period).value)
    out = np.full((len(targets), weeks), np.nan)
    if len(keys) == 0:
        return out
    for j in range(1, weeks + 1):
        q = local - j * step
        pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
        hit = keys[pos] == q
        out[hit, j - 1] = vals[pos[hit]]
    return out


def first_available(lags: np.ndarray, k: int) -> np.ndarray:
    """Per row, the first ``k`` finite values (most recent first), NaN-padded: outage holes are skipped."""
    order = np.argsort(~np.isfinite(lags), axis=1, kind="stable")
    packed = np.take_along_axis(lags, order, axis=1)
    out = np.full((lags.shape[0], k), np.nan)
    m = min(k, lags.shape[1])
    out[:, :m] = packed[:, :m]
    return out


def promotions(events: pd.DataFrame | None) -> pd.DataFrame:
    """Events that declare a finite multiplicative uplift (promotions, or any event given one)."""
    if events is None or len(events) == 0 or "uplift" not in events:
        return pd.DataFrame(columns=["name", "kind", "start", "end", "uplift"])
    up = pd.to_numeric(events["uplift"], errors="coerce")
    return events[np.isfinite(up.to_numpy(dtype=float)) & (up.to_numpy(dtype=float) > 0)]


def uplift_factor(ds: pd.DatetimeIndex | pd.Series, events: pd.DataFrame | None) -> np.ndarray:
    """Product of the declared uplifts of the events covering each stamp (1.0 where none)."""
    idx = pd.DatetimeIndex(ds)
    factor = np.ones(len(idx))
    for _, ev in promotions(events).iterrows():
        inside = (idx >= pd.Timestamp(ev["start"])) & (idx < pd.Timestamp(ev["end"]))
        factor[np.asarray(inside)] *= float(ev["uplift"])
    return factor


def deflate_history(history: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
    """History with past declared promotions divided out, so last week's promotion is not repeated."""
    factor = uplift_factor(history["ds"], events)
    if np.all(factor == 1.0):
        return history
    out = history.copy()
    out["y"] = out["y"].to_numpy(dtype=float) / factor
    return out


def holidays_only(events: pd.DataFrame | None) -> pd.DataFrame:
    """Public holidays (kind ``holiday`` without a declared uplift)."""
    if events is None or len(events) == 0 or "kind" not in events:
        return pd.DataFrame(columns=["name", "kind", "start", "end", "uplift"])
    up = (
        pd.to_numeric(events["uplift"], errors="coerce").to_numpy(dtype=float) if "uplift" in events else None
    )
    keep = (events["kind"] == "holiday").to_numpy().copy()
    if up is not None:
        keep &= ~np.isfinite(up)
    return events[keep]


def holiday_mask(ds: pd.DatetimeIndex | pd.Series, events: pd.DataFrame | None, timezone: str) -> np.ndarray:
    """True for stamps on a public holiday (whole local days, so it works at any resolution)."""
    idx = pd.DatetimeIndex(ds)
    inside = np.zeros(len(idx), dtype=bool)
    for _, ev in holidays_only(events).iterrows():
        inside |= np.asarray((idx >= pd.Timestamp(ev["start"])) & (idx < pd.Timestamp(ev["end"])))
    return inside


def mask_holidays(history: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
    """History with past holidays (events without a declared uplift) set to NaN: a holiday last week must not
    be repeated as if it were an ordinary day; lookups then take the next older week."""
    inside = holiday_mask(history["ds"], events, "UTC")
    if not inside.any():
        return history
    out = history.copy()
    y = out["y"].to_numpy(dtype=float).copy()
    y[inside] = np.nan
    out["y"] = y
    return out


def make_frame(
    ds: pd.DatetimeIndex, yhat: np.ndarray, lower: np.ndarray | None = None, upper: np.ndarray | None = None
) -> pd.DataFrame:
    """The contract frame: non-negative, ordered lower <= yhat <= upper."""
    y = np.clip(np.asarray(yhat, dtype=float), 0.0, None)
    lo = y if lower is None else np.clip(np.minimum(np.asarray(lower, dtype=float), y), 0.0, None)
    hi = y if upper is None else np.maximum(np.asarray(upper, dtype=float), y)
    return pd.DataFrame(
        {"ds": pd.DatetimeIndex(ds), "yhat": y, "yhat_lower": lo, "yhat_upper": hi}, columns=FORECAST_COLUMNS
    )


def fill_gaps(y: pd.Series) -> pd.Series:
    """Linear interpolation over NaN holes (for models that cannot take NaN); ends take the nearest value."""
    out = y.astype(float).interpolate(limit_direction="both")
    return out.fillna(0.0)
