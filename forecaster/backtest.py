"""Rolling-origin evaluation, accuracy metrics and conformal calibration of the forecast band.

Who calls it: :mod:`forecaster.pipeline` (to pick or blend models and to calibrate the band), the ``backtest``
subcommand and ``benchmarks/forecast_bench.py``.

Folds end at the same time of day as the real forecast origin, one day apart, so the backtest measures the
forecast users will get (a midnight run is judged on midnight runs). The band is calibrated from the fold
residuals (split-conformal): residuals are scaled by ``sqrt(yhat * mean level)``, which sits between absolute
errors (too wide at night) and relative errors (too wide for quiet series), and the band is the empirical
quantiles of the scaled residuals with the finite-sample correction. Few folds or a short history widen it,
and the pipeline says so in a quality note.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext, Model

DAY = pd.Timedelta(days=1)
MIN_TRAIN = pd.Timedelta(days=7)


def wape(actual: np.ndarray, pred: np.ndarray) -> float:
    """Weighted absolute percentage error: sum|error| / sum|actual| (NaN actuals ignored)."""
    a, p = np.asarray(actual, dtype=float), np.asarray(pred, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    den = np.abs(a[ok]).sum()
    return float(np.abs(a[ok] - p[ok]).sum() / den) if den > 0 else math.nan


def mape(actual: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute percentage error over non-zero actuals."""
    a, p = np.asarray(actual, dtype=float), np.asarray(pred, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p) & (a != 0)
    return float(np.mean(np.abs((a[ok] - p[ok]) / a[ok]))) if ok.any() else math.nan


def bias(actual: np.ndarray, pred: np.ndarray) -> float:
    """Signed error relative to the total: > 0 means over-forecast."""
    a, p = np.asarray(actual, dtype=float), np.asarray(pred, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    den = np.abs(a[ok]).sum()
    return float((p[ok] - a[ok]).sum() / den) if den > 0 else math.nan


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper]."""
    a = np.asarray(actual, dtype=float)
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    ok = np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi)
    return float(np.mean((a[ok] >= lo[ok]) & (a[ok] <= hi[ok]))) if ok.any() else math.nan


def scores(folds: pd.DataFrame) -> dict[str, float]:
    """wape, mape, bias, coverage and number of folds of a fold frame (columns y, yhat, yhat_lower, ...)."""
    y, p = folds["y"].to_numpy(dtype=float), folds["yhat"].to_numpy(dtype=float)
    return {
        "wape": wape(y, p),
        "mape": mape(y, p),
        "bias": bias(y, p),
        "coverage": coverage(
            y, folds["yhat_lower"].to_numpy(dtype=float), folds["yhat_upper"].to_numpy(dtype=float)
        ),
        "folds": float(folds["cutoff"].nunique()) if len(folds) else 0.0,
    }


def cutoffs(
    history_ds: pd.DatetimeIndex | pd.Series,
    freq: pd.Timedelta,
    horizon: int,
    folds: int,
    *,
    min_train: pd.Timedelta = MIN_TRAIN,
) -> list[pd.Timestamp]:
    """Fold origins at the real origin's time of day, newest first, each with a full horizon of actuals.

    A fold needs ``min_train`` of training history before it; a short history gives fewer folds.
    """
    ds = pd.DatetimeIndex(history_ds)
    origin = ds[-1] + freq
    span = horizon * freq
    first_back = max(math.ceil(span / DAY), 1)
    out = []
    for k in range(first_back, first_back + max(folds, 0) + 400):
        cut = origin - k * DAY
        if cut - ds[0] < min_train:
            break
        out.append(cut)
        if len(out) >= folds:
            break
    return out


def rolling_origin(
    history: pd.DataFrame,
    make_model: Callable[[], Model],
    ctx: FitContext,
    horizon: int,
    cuts: Sequence[pd.Timestamp],
) -> pd.DataFrame:
    """Fit on the history before each cutoff, predict ``horizon`` steps, and join the actuals.

    Returns columns cutoff, step, ds, y, yhat, yhat_lower, yhat_upper (only steps with an observed actual).
    Model exceptions propagate: the caller decides whether a failing model is dropped.
    """
    frames = []
    ds = pd.DatetimeIndex(history["ds"])
    y = pd.Series(history["y"].to_numpy(dtype=float), index=ds)
    for cut in cuts:
        train = history[ds < cut]
        fc = make_model().fit(train, ctx).predict(horizon)
        check_forecast(fc, horizon)
        fc = fc.assign(
            cutoff=cut, step=np.arange(1, horizon + 1), y=y.reindex(pd.DatetimeIndex(fc["ds"])).to_numpy()
        )
        frames.append(fc[np.isfinite(fc["y"].to_numpy(dtype=float))])
    if not frames:
        return pd.DataFrame(columns=["cutoff", "step", "ds", "y", "yhat", "yhat_lower", "yhat_upper"])
    return pd.concat(frames, ignore_index=True)[
        ["cutoff", "step", "ds", "y", "yhat", "yhat_lower", "yhat_upper"]
    ]


def check_forecast(frame: pd.DataFrame, horizon: int) -> None:
    """Raise ValueError unless the model returned ``horizon`` finite, ordered rows."""
    if len(frame) != horizon:
        raise ValueError(f"returned {len(frame)} rows, expected {horizon}")
    vals = frame[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(dtype=float)
    if not np.isfinite(vals).all():
        raise ValueError("returned non-finite values")


@dataclass(frozen=True)
class Calibration:
    """Quantiles of the scaled residuals that define the band: yhat + q * scale(yhat)."""

    q_lower: float
    q_upper: float
    level: float
    residuals: int
    widen: float = 1.0

    def apply(self, frame: pd.DataFrame, level_of: float | None = None) -> pd.DataFrame:
        """The frame with its band replaced by the calibrated one (yhat unchanged, lower clipped at 0)."""
        out = frame.copy()
        yhat = out["yhat"].to_numpy(dtype=float)
        s = scale(yhat, level_of)
        out["yhat_lower"] = np.clip(yhat + self.widen * self.q_lower * s, 0.0, yhat)
        out["yhat_upper"] = np.maximum(yhat + self.widen * self.q_upper * s, yhat)
        return out


def scale(yhat: np.ndarray, level: float | None = None) -> np.ndarray:
    """Residual scale: geometric mean of the forecast and its mean level (never zero)."""
    y = np.clip(np.asarray(yhat, dtype=float), 0.0, None)
    m = float(np.mean(y)) if level is None else float(level)
    m = max(m, 1e-9)
    return np.sqrt(np.maximum(y, 0.05 * m) * m)


def scaled_residuals(folds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(fold label per residual, residual / scale), each fold scaled by its own mean forecast."""
    labels, parts = [], []
    for i, (_, f) in enumerate(folds.groupby("cutoff", sort=False)):
        yhat = f["yhat"].to_numpy(dtype=float)
        parts.append((f["y"].to_numpy(dtype=float) - yhat) / scale(yhat))
        labels.append(np.full(len(f), i))
    if not parts:
        return np.array([], dtype=int), np.array([])
    return np.concatenate(labels), np.concatenate(parts)


def calibrate(folds: pd.DataFrame, level: float, *, widen: float = 1.0) -> Calibration:
    """Split-conformal band from backtest folds: scaled residual quantiles, finite-sample corrected."""
    return calibrate_residuals(scaled_residuals(folds)[1], level, widen=widen)


def calibrate_residuals(r: np.ndarray, level: float, *, widen: float = 1.0) -> Calibration:
    """Band quantiles from scaled residuals (see :func:`scaled_residuals`)."""
    r = r[np.isfinite(r)]
    n = len(r)
    if n < 4:
        return Calibration(-0.5, 0.5, level, n, widen)
    alpha = 1.0 - level
    lo_q = max(math.floor((n + 1) * alpha / 2) / n, 0.0)
    hi_q = min(math.ceil((n + 1) * (1 - alpha / 2)) / n, 1.0)
    q_lo = float(np.quantile(r, lo_q, method="lower"))
    q_hi = float(np.quantile(r, hi_q, method="higher"))
    return Calibration(min(q_lo, 0.0), max(q_hi, 0.0), level, n, widen)


def cross_coverage(folds: pd.DataFrame, level: float, *, widen: float = 1.0) -> float:
    """Leave-one-fold-out coverage: each fold judged by a band calibrated on the other folds (honest)."""
    labels, r = scaled_residuals(folds)
    ok = np.isfinite(r)
    labels, r = labels[ok], r[ok]
    if len(np.unique(labels)) < 2:
        return math.nan
    hits = 0
    for lab in np.unique(labels):
        cal = calibrate_residuals(r[labels != lab], level, widen=widen)
        test = r[labels == lab]
        hits += int(((test >= widen * cal.q_lower) & (test <= widen * cal.q_upper)).sum())
    return hits / len(r)
