"""The seasonal models on numpy arrays: one series prepared once, every fold and every candidate from it.

Why this module exists: the rolling-origin backtest refits every candidate on every fold (6 x 14 = 84 fits per
forecast). Through the frame-based models in :mod:`forecaster.models.baselines` each fit rebuilds DataFrames,
wall-clock indexes, holiday masks and uplift factors, about 30 ms of which 0.5 ms is arithmetic. Here a
history is turned into arrays once (:class:`SeriesArrays`): an absolute time grid that extends into the
horizon, the promotion-deflated and holiday-masked values, the uplift factor per interval, and one wall-clock
lag matrix (for each interval, where the same local time 1..10 weeks earlier sits in the history). A fold is
then just a train length ``m`` (what the model may see) and a block of target positions, and a model
evaluates all folds at once.

The results equal the frame-based models' (``tests/forecaster/test_numeric.py`` compares them fold by fold);
those stay the reference and the public :class:`~forecaster.models.base.Model` API. Who calls it:
:mod:`forecaster.pipeline` for the registered seasonal aliases; any other model takes the frame path.

Availability rule (the frame models' behaviour, kept exactly): a fold trained on the first ``m`` intervals
sees a wall-clock key only through intervals at positions ``< m``; at a DST fall-back a local time occurs
twice and its value is the mean of the observed occurrences the fold can see.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext
from forecaster.models.baselines import (
    SeasonalDayRatio,
    SeasonalMedian,
    SeasonalMedianLevel,
    SeasonalMedianSmooth,
    SeasonalNaive,
    SeasonalWeightedMean,
)
from forecaster.models.common import holidays_only, promotions, wall_clock

WEEK = pd.Timedelta(days=7)
DAY = pd.Timedelta(days=1)
MAX_WEEKS = 10
PAD = 1  # grid positions before the history (the smooth model looks one interval back)


@dataclass(frozen=True)
class Spec:
    """What distinguishes one seasonal model: how many weeks, how they combine, level and neighbours."""

    weeks: int
    combine: str  # "first", "median" or "wmean"
    level_days: float = 0.0
    spread: int = 0
    dayratio: bool = False
    decay: float = 0.8
    level_damp: float = 0.7


def _spec(model: type) -> Spec:
    inst = model()
    combine = {SeasonalNaive: "first", SeasonalWeightedMean: "wmean"}.get(model, "median")
    return Spec(
        weeks=inst.weeks,
        combine=combine,
        level_days=inst.level_days,
        spread=inst.spread,
        dayratio=model is SeasonalDayRatio,
        decay=getattr(inst, "decay", 0.8),
        level_damp=inst.level_damp,
    )


# Exactly these classes (not subclasses: a subclass may change behaviour) have an array implementation.
KERNELS: dict[type, Spec] = {
    cls: _spec(cls)
    for cls in (
        SeasonalNaive,
        SeasonalMedian,
        SeasonalMedianLevel,
        SeasonalMedianSmooth,
        SeasonalWeightedMean,
        SeasonalDayRatio,
    )
}


def kernel_for(factory: object) -> Spec | None:
    """The array implementation of a registered model factory, or None (use the frame path)."""
    return KERNELS.get(factory) if isinstance(factory, type) else None


class SeriesArrays:
    """One regular history as arrays on an absolute grid reaching ``horizon`` (+1) intervals past its end.

    Grid index ``g`` is history position ``g - PAD``. Build with :meth:`build`, which returns None when the
    history is not on a regular grid whose interval divides a day (the frame path handles those).
    """

    def __init__(
        self, ds: pd.DatetimeIndex, y: np.ndarray, ctx: FitContext, horizon: int, freq_ns: int
    ) -> None:
        self.n = len(y)
        self.ctx = ctx
        self.freq_ns = freq_ns
        self.day = int(DAY.value // freq_ns)
        self.horizon = horizon
        size = PAD + self.n + horizon + 1
        start = int(ds.as_unit("ns").asi8[0]) - PAD * freq_ns
        abs_ns = start + freq_ns * np.arange(size, dtype=np.int64)
        self.stamps = pd.DatetimeIndex(abs_ns.view("M8[ns]")).tz_localize("UTC").tz_convert(ds.tz)
        self.local = wall_clock(self.stamps, ctx.timezone).as_unit("ns").asi8
        self.y = np.asarray(y, dtype=float)  # the actuals (outages NaN), history positions
        events = ctx.events
        factor = np.ones(size)
        for start, end, up in _windows(promotions(events), with_uplift=True):
            factor[(abs_ns >= start) & (abs_ns < end)] *= up  # in event order, as models.common does
        self.factor = factor  # declared uplift per grid interval
        hist = slice(PAD, PAD + self.n)
        ym = self.y / factor[hist] if not np.all(factor[hist] == 1.0) else self.y.copy()
        for start, end, _ in _windows(holidays_only(events)):
            ym[(abs_ns[hist] >= start) & (abs_ns[hist] < end)] = np.nan
        self.ym = ym  # what the models fit on: promotions divided out, holidays masked
        # Unique wall-clock keys of the history, with the (at most two) positions holding each.
        keys = self.local[hist]
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        new = np.ones(len(sk), dtype=bool)
        new[1:] = sk[1:] != sk[:-1]
        starts = np.flatnonzero(new)
        self.keys = sk[starts]
        self.first = order[starts]
        counts = np.diff(np.append(starts, len(sk)))
        if counts.max(initial=1) > 2:
            raise ValueError("a wall-clock time repeats more than twice")
        second = np.full(len(starts), -1, dtype=np.int64)
        two = counts == 2
        second[two] = order[starts[two] + 1]
        self.second = second
        v1 = ym[self.first]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            both = np.nanmean(np.vstack([v1, ym[np.where(two, second, self.first)]]), axis=0)
        self.v_first = v1
        self.v_both = np.where(two, both, v1)
        self._lags: dict[int, np.ndarray] = {}

    @classmethod
    def build(cls, history: pd.DataFrame, ctx: FitContext, horizon: int) -> SeriesArrays | None:
        ds = pd.DatetimeIndex(history["ds"])
        freq_ns = int(pd.Timedelta(ctx.freq).value)
        if len(ds) < 1 or ds.tz is None or freq_ns <= 0 or DAY.value % freq_ns:
            return None
        if len(ds) > 1 and not np.all(np.diff(ds.as_unit("ns").asi8) == freq_ns):
            return None
        try:
            return cls(ds, history["y"].to_numpy(dtype=float), ctx, horizon, freq_ns)
        except ValueError:
            return None

    def lag_index(self, period_ns: int) -> np.ndarray:
        """(grid, MAX_WEEKS) index into the unique keys of the same local time 1..10 periods back, or -1."""
        if period_ns not in self._lags:
            out = np.full((len(self.local), MAX_WEEKS), -1, dtype=np.int64)
            if len(self.keys):
                for j in range(1, MAX_WEEKS + 1):
                    q = self.local - j * period_ns
                    pos = np.clip(np.searchsorted(self.keys, q), 0, len(self.keys) - 1)
                    out[:, j - 1] = np.where(self.keys[pos] == q, pos, -1)
            self._lags[period_ns] = out
        return self._lags[period_ns]

    def lags(self, positions: np.ndarray, limit: np.ndarray, period_ns: int) -> np.ndarray:
        """Values 1..10 periods before each history ``position`` (any shape), seen by a fold of train length
        ``limit`` (broadcast against positions): (..., MAX_WEEKS), NaN where unknown to that fold."""
        idx = self.lag_index(period_ns)[positions + PAD]
        lim = np.asarray(limit)[..., None]
        safe = np.where(idx >= 0, idx, 0)
        seen_first = (idx >= 0) & (self.first[safe] < lim)
        sec = self.second[safe]
        seen_both = seen_first & (sec >= 0) & (sec < lim)
        return np.where(seen_both, self.v_both[safe], np.where(seen_first, self.v_first[safe], np.nan))


def _windows(events: pd.DataFrame | None, *, with_uplift: bool = False) -> list[tuple[int, int, float]]:
    """(start ns, end ns, uplift) of each event row, in order (comparisons on int64 stamps)."""
    if events is None or len(events) == 0:
        return []
    starts = [pd.Timestamp(s).value for s in events["start"]]
    ends = [pd.Timestamp(e).value for e in events["end"]]
    ups = [float(u) for u in events["uplift"]] if with_uplift else [1.0] * len(starts)
    return list(zip(starts, ends, ups, strict=True))


def first_available(lags: np.ndarray, k: int) -> np.ndarray:
    """Along the last axis, the first ``k`` finite values (most recent first), NaN-padded."""
    order = np.argsort(~np.isfinite(lags), axis=-1, kind="stable")
    packed = np.take_along_axis(lags, order, axis=-1)
    out = np.full((*lags.shape[:-1], k), np.nan)
    m = min(k, lags.shape[-1])
    out[..., :m] = packed[..., :m]
    return out


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median along the last axis ignoring NaN (NaN where none), computed as numpy's nanmedian does for
    short rows (mean of the two middle values, each counted twice when odd) but without masked arrays."""
    if values.shape[-1] == 0:
        return np.full(values.shape[:-1], np.nan)
    s = np.sort(values, axis=-1)  # NaN sort last
    n = (~np.isnan(values)).sum(axis=-1, keepdims=True)
    h = n // 2
    low = np.where(n % 2 == 1, h, h - 1)
    top = values.shape[-1] - 1
    lo = np.take_along_axis(s, np.clip(low, 0, top), axis=-1)[..., 0]
    hi = np.take_along_axis(s, np.clip(h, 0, top), axis=-1)[..., 0]
    return np.where(n[..., 0] > 0, (lo + hi) / 2.0, np.nan)


def _combine(spec: Spec, picked: np.ndarray) -> np.ndarray:
    if spec.combine == "first":
        return picked[..., 0]
    if spec.combine == "median":
        return _nanmedian(picked)
    w = spec.decay ** np.arange(picked.shape[-1], dtype=float)
    ok = np.isfinite(picked)
    num = np.where(ok, picked, 0.0) @ w
    den = ok.astype(float) @ w
    with np.errstate(all="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _point(
    a: SeriesArrays, spec: Spec, targets: np.ndarray, limit: np.ndarray, period_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """(yhat, picked) for target positions (F, H) seen by folds of train length ``limit`` (F, 1)."""
    picked = first_available(a.lags(targets, limit, period_ns), spec.weeks)
    if spec.spread:
        near = [picked]
        for off in range(-spec.spread, spec.spread + 1):
            if off:
                near.append(first_available(a.lags(targets + off, limit, period_ns), spec.weeks))
        picked = np.concatenate(near, axis=-1)
    return _combine(spec, picked), picked


def _level(a: SeriesArrays, spec: Spec, m: np.ndarray, period_ns: int) -> np.ndarray:
    """Per fold, the damped ratio of the last ``level_days`` actuals to the model's own forecast of them."""
    n = round(spec.level_days * DAY.value / a.freq_ns)
    out = np.ones(len(m))
    live = m > n
    if n <= 0 or not live.any():
        return out
    mm = m[live]
    recent = mm[:, None] - n + np.arange(n)[None, :]
    pred, _ = _point(a, spec, recent, (mm - n)[:, None], period_ns)
    actual = a.ym[recent]
    ok = np.isfinite(pred) & np.isfinite(actual)
    res = np.ones(len(mm))
    for i in range(len(mm)):  # per fold, as the frame model sums (same rounding)
        p, act = pred[i][ok[i]], actual[i][ok[i]]
        if ok[i].sum() < n / 2 or p.sum() <= 0:
            continue
        ratio = float(act.sum() / p.sum())
        res[i] = float(np.clip(1.0 + spec.level_damp * (ratio - 1.0), 0.75, 1.33))
    out[live] = res
    return out


Triple = tuple[np.ndarray, np.ndarray, np.ndarray]


def _frame(yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> Triple:
    """The model contract (see models.common.make_frame): non-negative, lower <= yhat <= upper."""
    y = np.clip(yhat, 0.0, None)
    return y, np.clip(np.minimum(lower, y), 0.0, None), np.maximum(upper, y)


def predict(
    a: SeriesArrays, spec: Spec, cuts: Sequence[int], horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(yhat, lower, upper), each (folds, horizon), of models trained on the first ``cut`` intervals.

    A cut equal to the history length is the real forecast. Raises ValueError as the frame model would
    (no observed value to train on, non-finite forecast).
    """
    m = np.asarray(cuts, dtype=np.int64)
    if len(m) == 0:
        empty = np.empty((0, horizon))
        return empty, empty, empty
    if horizon > a.horizon or (m > a.n).any() or (m < 1).any():
        raise ValueError("cut or horizon outside the prepared grid")
    observed = np.cumsum(np.isfinite(a.y))
    if (observed[m - 1] == 0).any():
        raise ValueError("history has no observed values")
    # Train span m * freq: a week or more uses weekly lags, less the daily profile (as the frame models).
    periods = np.where(m * a.freq_ns >= WEEK.value, WEEK.value, DAY.value)
    out = [np.empty((len(m), horizon)) for _ in range(3)]
    for period in np.unique(periods):
        sel = np.flatnonzero(periods == period)
        parts = _predict_period(a, spec, m[sel], horizon, int(period))
        for o, p in zip(out, parts, strict=True):
            o[sel] = p
    if not all(np.isfinite(o).all() for o in out):
        raise ValueError("returned non-finite values")
    return out[0], out[1], out[2]


def _predict_period(
    a: SeriesArrays, spec: Spec, m: np.ndarray, horizon: int, period_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    targets = m[:, None] + np.arange(horizon)[None, :]
    lim = m[:, None]
    yhat, picked = _point(a, spec, targets, lim, period_ns)
    raw_median = yhat
    bad = ~np.isfinite(yhat).all(axis=1)
    for i in np.flatnonzero(bad):  # no observed week for some rows: the last day's mean, never a hole
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            hist = a.ym[: m[i]]
            fb = float(np.nanmean(hist[-a.day :]))
            if not math.isfinite(fb):
                fb = float(np.nanmean(hist))
        yhat = yhat.copy() if yhat is raw_median else yhat
        picked = picked.copy()
        yhat[i] = np.where(np.isfinite(yhat[i]), yhat[i], fb)
        picked[i] = np.where(np.isfinite(picked[i]), picked[i], fb)
    if spec.level_days:
        yhat = yhat * _level(a, spec, m, period_ns)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanmin(picked, axis=-1)
        hi = np.nanmax(picked, axis=-1)
    lo = np.where(np.isfinite(lo), np.minimum(lo, yhat * 0.9), yhat * 0.9)
    hi = np.where(np.isfinite(hi), np.maximum(hi, yhat * 1.1), yhat * 1.1)
    factor = a.factor[targets + PAD]
    base = _frame(yhat * factor, lo * factor, hi * factor)
    if not spec.dayratio or period_ns != WEEK.value:
        return base
    return _dayratio(a, spec, m, targets, raw_median, base, factor)


def _dayratio(
    a: SeriesArrays,
    spec: Spec,
    m: np.ndarray,
    targets: np.ndarray,
    num: np.ndarray,
    base: Triple,
    factor: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Yesterday's value times the typical ratio of the two days (see SeasonalDayRatio); chains past a day."""
    day = a.day
    den = _nanmedian(first_available(a.lags(targets - day, m[:, None], WEEK.value), spec.weeks))
    with np.errstate(all="ignore"):
        ratio = np.clip(num / np.where(den > 0, den, np.nan), 0.2, 5.0)
    fallback = base[0] / factor
    horizon = targets.shape[1]
    out = np.empty_like(fallback)
    for i in range(0, horizon, day):
        j = min(i + day, horizon)
        if i == 0:
            prev_pos = targets[:, i:j] - day  # in the history: the last day before the cut
            known = np.where(prev_pos >= 0, a.ym[np.maximum(prev_pos, 0)], np.nan)
        else:
            known = out[:, i - day : j - day]
        with np.errstate(all="ignore"):
            val = known * ratio[:, i:j]
        out[:, i:j] = np.where(np.isfinite(val), val, fallback[:, i:j])
    yhat = out * factor
    return _frame(yhat, np.minimum(base[1], yhat), np.maximum(base[2], yhat))
