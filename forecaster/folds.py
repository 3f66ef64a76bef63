"""Backtest folds as arrays: one (folds x horizon) matrix per column instead of a long frame per candidate.

Why this module exists: model selection scores six candidates, tries every blend of two or three of the best
four, calibrates the band and cross-validates its coverage. On long frames each of those is a groupby per
cutoff; on a :class:`FoldSet` they are array operations. The metrics and the calibration are the ones in
:mod:`forecaster.backtest` (same formulas, same order of summation, so the same numbers); this module only
changes the container. :func:`from_frame` and :meth:`FoldSet.frame` convert to and from the long frame that
:func:`forecaster.backtest.rolling_origin` returns, so a model without an array implementation still fits in.

Who calls it: :mod:`forecaster.pipeline` (selection and calibration) and :mod:`forecaster.batch`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.backtest import Calibration, bias, calibrate_residuals, coverage, mape, scale, wape

FOLD_COLUMNS = ["cutoff", "step", "ds", "y", "yhat", "yhat_lower", "yhat_upper"]


@dataclass(frozen=True)
class FoldSet:
    """Forecasts made at each cutoff (newest first) for ``horizon`` steps, beside the actuals (NaN = none)."""

    cutoffs: tuple[pd.Timestamp, ...]
    freq: pd.Timedelta
    y: np.ndarray  # (folds, horizon)
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """Steps with an observed actual (the rows a long fold frame would hold)."""
        return np.isfinite(self.y)

    def __len__(self) -> int:
        """Number of scored steps, as ``len()`` of the long frame."""
        return int(self.ok.sum())

    def frame(self) -> pd.DataFrame:
        """The long frame of :func:`forecaster.backtest.rolling_origin` (only steps with an actual)."""
        f, h = self.y.shape
        if f == 0:
            return pd.DataFrame(columns=FOLD_COLUMNS)
        ok = self.ok.ravel()
        cut = np.repeat(np.asarray([c.value for c in self.cutoffs], dtype=np.int64), h)
        tz = self.cutoffs[0].tz
        step = np.tile(np.arange(1, h + 1), f)
        ds_ns = cut + (step - 1) * int(self.freq.value)
        out = pd.DataFrame(
            {
                "cutoff": pd.DatetimeIndex(cut[ok].view("M8[ns]")).tz_localize("UTC").tz_convert(tz),
                "step": step[ok],
                "ds": pd.DatetimeIndex(ds_ns[ok].view("M8[ns]")).tz_localize("UTC").tz_convert(tz),
                "y": self.y.ravel()[ok],
                "yhat": self.yhat.ravel()[ok],
                "yhat_lower": self.lower.ravel()[ok],
                "yhat_upper": self.upper.ravel()[ok],
            }
        )
        return out[FOLD_COLUMNS]


def empty(freq: pd.Timedelta, horizon: int = 0) -> FoldSet:
    """A fold set without folds."""
    z = np.empty((0, horizon))
    return FoldSet((), freq, z, z, z, z)


def from_frame(
    folds: pd.DataFrame, cuts: Sequence[pd.Timestamp], horizon: int, freq: pd.Timedelta
) -> FoldSet:
    """Arrays from a long fold frame (columns of :data:`FOLD_COLUMNS`), folds in the order of ``cuts``."""
    shape = (len(cuts), horizon)
    arrays = {c: np.full(shape, np.nan) for c in ("y", "yhat", "yhat_lower", "yhat_upper")}
    if len(folds):
        where = {pd.Timestamp(c): i for i, c in enumerate(cuts)}
        rows = np.asarray([where[pd.Timestamp(c)] for c in folds["cutoff"]], dtype=np.int64)
        cols = folds["step"].to_numpy(dtype=np.int64) - 1
        for c, arr in arrays.items():
            arr[rows, cols] = folds[c].to_numpy(dtype=float)
    return FoldSet(
        tuple(pd.Timestamp(c) for c in cuts),
        freq,
        arrays["y"],
        arrays["yhat"],
        arrays["yhat_lower"],
        arrays["yhat_upper"],
    )


def _flat(fs: FoldSet, values: np.ndarray) -> np.ndarray:
    return values[fs.ok]  # row-major: fold by fold, step by step, as the long frame


def scores(fs: FoldSet) -> dict[str, float]:
    """wape, mape, bias, coverage and number of folds (see :func:`forecaster.backtest.scores`)."""
    y, p = _flat(fs, fs.y), _flat(fs, fs.yhat)
    return {
        "wape": wape(y, p),
        "mape": mape(y, p),
        "bias": bias(y, p),
        "coverage": coverage(y, _flat(fs, fs.lower), _flat(fs, fs.upper)),
        "folds": float(fs.ok.any(axis=1).sum()),
    }


def wape_of(fs: FoldSet) -> float:
    """WAPE of the folds; +inf when there is none (ranks last)."""
    if len(fs) == 0:
        return math.inf
    w = wape(_flat(fs, fs.y), _flat(fs, fs.yhat))
    return w if math.isfinite(w) else math.inf


def blend(members: Sequence[FoldSet], weights: Sequence[float]) -> FoldSet:
    """The weighted mean of the members' fold forecasts (same cutoffs and actuals as the first)."""
    total = sum(weights)

    def mix(col: str) -> np.ndarray:
        return np.asarray(sum(w * getattr(m, col) for m, w in zip(members, weights, strict=True)) / total)

    first = members[0]
    return FoldSet(first.cutoffs, first.freq, first.y, mix("yhat"), mix("lower"), mix("upper"))


def scaled_residuals(fs: FoldSet) -> tuple[np.ndarray, np.ndarray]:
    """(fold label per residual, residual / scale), each fold scaled by its own mean forecast."""
    ok = fs.ok
    seen = ok.any(axis=1)
    if ok[seen].all():  # every fold with an actual has all of them: one 2-D pass, the same sums per row
        yhat, y = fs.yhat[seen], fs.y[seen]
        clipped = np.clip(yhat, 0.0, None)
        m = np.maximum(np.mean(clipped, axis=1, keepdims=True), 1e-9)
        r = (y - yhat) / np.sqrt(np.maximum(clipped, 0.05 * m) * m)
        return np.repeat(np.arange(len(yhat)), yhat.shape[1]), r.ravel()
    labels: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    for i in range(len(fs.cutoffs)):
        if not ok[i].any():
            continue
        yhat = fs.yhat[i][ok[i]]
        parts.append((fs.y[i][ok[i]] - yhat) / scale(yhat))
        labels.append(np.full(len(yhat), len(labels)))
    if not parts:
        return np.array([], dtype=int), np.array([])
    return np.concatenate(labels), np.concatenate(parts)


def _calibration_sorted(rs: np.ndarray, level: float, widen: float) -> Calibration:
    """:func:`forecaster.backtest.calibrate_residuals` on finite residuals already sorted: the 'lower' and
    'higher' quantiles are order statistics, read at numpy's own index formula instead of re-sorting."""
    n = len(rs)
    if n < 4:
        return Calibration(-0.5, 0.5, level, n, widen)
    alpha = 1.0 - level
    lo_q = max(math.floor((n + 1) * alpha / 2) / n, 0.0)
    hi_q = min(math.ceil((n + 1) * (1 - alpha / 2)) / n, 1.0)
    q_lo = float(rs[int(np.floor((n - 1) * lo_q))])
    q_hi = float(rs[int(np.ceil((n - 1) * hi_q))])
    return Calibration(min(q_lo, 0.0), max(q_hi, 0.0), level, n, widen)


def calibrate(fs: FoldSet, level: float, *, widen: float = 1.0) -> Calibration:
    """Split-conformal band from the folds (see :func:`forecaster.backtest.calibrate`)."""
    return calibrate_residuals(scaled_residuals(fs)[1], level, widen=widen)


def cross_coverage(fs: FoldSet, level: float, *, widen: float = 1.0) -> float:
    """Leave-one-fold-out coverage (see :func:`forecaster.backtest.cross_coverage`).

    All folds at once: each held-out fold's band quantiles are order statistics of the sorted residuals of
    the other folds, found by counting, per fold, the other folds' residuals up to each sorted position.
    """
    labels, r = scaled_residuals(fs)
    keep = np.isfinite(r)
    labels, r = labels[keep], r[keep]
    labs, labels = np.unique(labels, return_inverse=True)
    if len(labs) < 2:
        return math.nan
    order = np.argsort(r, kind="stable")
    rs, ls = r[order], labels[order]
    others = ls[None, :] != np.arange(len(labs))[:, None]  # (folds, residuals): calibrates fold i's band
    seen = np.cumsum(others, axis=1)
    n = seen[:, -1]
    alpha = 1.0 - level
    lo_q = np.maximum(np.floor((n + 1) * alpha / 2) / n, 0.0)
    hi_q = np.minimum(np.ceil((n + 1) * (1 - alpha / 2)) / n, 1.0)
    # The k-th (0-based) of the other folds' sorted residuals sits where their count first reaches k + 1.
    at_lo = np.floor((n - 1) * lo_q).astype(np.int64)
    at_hi = np.ceil((n - 1) * hi_q).astype(np.int64)
    q_lo = rs[(seen <= at_lo[:, None]).sum(axis=1)]
    q_hi = rs[(seen <= at_hi[:, None]).sum(axis=1)]
    q_lo = np.where(n < 4, -0.5, np.minimum(q_lo, 0.0))
    q_hi = np.where(n < 4, 0.5, np.maximum(q_hi, 0.0))
    inside = (r >= widen * q_lo[labels]) & (r <= widen * q_hi[labels])
    return int(inside.sum()) / len(r)
