"""The forecast band: conformal quantiles per horizon step, and a coverage check that widens it when needed.

Why this module exists: errors grow with lead time and differ by time of day, so one pair of residual
quantiles for the whole horizon is too wide for the first hours and too narrow for the last. Here each horizon
step gets its own quantiles of the scaled backtest residuals (:func:`forecaster.folds.scaled_residuals`),
pooled over the neighbouring steps until at least ``MIN_POOL`` residuals back each one (with 14 folds, three
steps either side), with the split-conformal finite-sample correction.

The check: each of the most recent ``RECENT_FOLDS`` folds is judged by a band calibrated on all the other
folds (leave one fold out, so the check is honest). When that recent coverage falls short of the nominal
level by more than ``TOLERANCE``, the band is widened by the smallest factor that would have covered the
nominal share of those folds, and the pipeline says so in a quality note. Who calls it: forecaster.pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.backtest import scale
from forecaster.folds import FoldSet

MIN_POOL = 96
RECENT_FOLDS = 7
TOLERANCE = 0.03
MAX_WIDEN = 3.0


@dataclass(frozen=True)
class StepCalibration:
    """Per-step quantiles of the scaled residuals: the band is yhat + widen * q[step] * scale(yhat)."""

    q_lower: np.ndarray
    q_upper: np.ndarray
    level: float
    residuals: int
    widen: float = 1.0

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame (one row per horizon step, in order) with its band replaced (yhat unchanged)."""
        out = frame.copy()
        yhat = out["yhat"].to_numpy(dtype=float)
        s = scale(yhat)
        k = min(len(yhat), len(self.q_lower))
        q_lo = np.concatenate([self.q_lower[:k], np.full(len(yhat) - k, self.q_lower[-1])])
        q_hi = np.concatenate([self.q_upper[:k], np.full(len(yhat) - k, self.q_upper[-1])])
        out["yhat_lower"] = np.clip(yhat + self.widen * q_lo * s, 0.0, yhat)
        out["yhat_upper"] = np.maximum(yhat + self.widen * q_hi * s, yhat)
        return out


def step_residuals(fs: FoldSet) -> np.ndarray:
    """(folds, steps) residuals over scale, each fold scaled by its own mean forecast; NaN where no actual."""
    out = np.full(fs.y.shape, np.nan)
    for i in range(fs.y.shape[0]):
        ok = fs.ok[i]
        if ok.any():
            yhat = fs.yhat[i][ok]
            out[i, ok] = (fs.y[i][ok] - yhat) / scale(yhat)
    return out


def _quantiles(r: np.ndarray, level: float) -> tuple[float, float]:
    """Finite-sample corrected lower/upper quantiles of finite residuals (as backtest.calibrate_residuals)."""
    r = r[np.isfinite(r)]
    n = len(r)
    if n < 4:
        return -0.5, 0.5
    alpha = 1.0 - level
    lo_q = max(math.floor((n + 1) * alpha / 2) / n, 0.0)
    hi_q = min(math.ceil((n + 1) * (1 - alpha / 2)) / n, 1.0)
    q_lo = float(np.quantile(r, lo_q, method="lower"))
    q_hi = float(np.quantile(r, hi_q, method="higher"))
    return min(q_lo, 0.0), max(q_hi, 0.0)


def _per_step(r: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles per step of a (folds, steps) residual matrix, pooling neighbouring steps to MIN_POOL.

    All steps from one sort: row h of the pool matrix holds the residuals of steps h-half..h+half (NaN
    outside the horizon, sorted last), and each quantile is read at numpy's 'lower'/'higher' index, as
    :func:`_quantiles` computes it one step at a time.
    """
    folds, steps = r.shape
    per_step = max(int(np.isfinite(r).sum(axis=0).mean()) if r.size else 0, 1)
    half = min(max(math.ceil((MIN_POOL / per_step - 1) / 2), 0), steps)
    padded = np.full((folds, steps + 2 * half), np.nan)
    padded[:, half : half + steps] = r
    cols = np.arange(steps)[:, None] + np.arange(2 * half + 1)[None, :]
    pools = np.sort(padded[:, cols].transpose(1, 0, 2).reshape(steps, -1), axis=1)
    n = np.isfinite(pools).sum(axis=1)
    alpha = 1.0 - level
    safe = np.maximum(n, 1)
    lo_q = np.maximum(np.floor((n + 1) * alpha / 2) / safe, 0.0)
    hi_q = np.minimum(np.ceil((n + 1) * (1 - alpha / 2)) / safe, 1.0)
    top = np.maximum(n - 1, 0)
    lo_i = np.clip(np.floor((n - 1) * lo_q).astype(int), 0, top)
    hi_i = np.clip(np.ceil((n - 1) * hi_q).astype(int), 0, top)
    rows = np.arange(steps)
    lo = np.where(n >= 4, np.minimum(pools[rows, lo_i], 0.0), -0.5)
    hi = np.where(n >= 4, np.maximum(pools[rows, hi_i], 0.0), 0.5)
    return lo, hi


def calibrate_steps(fs: FoldSet, level: float, *, widen: float = 1.0) -> StepCalibration:
    """Per-step split-conformal band from the backtest folds."""
    r = step_residuals(fs)
    lo, hi = _per_step(r, level)
    return StepCalibration(lo, hi, level, int(np.isfinite(r).sum()), widen)


@dataclass(frozen=True)
class CoverageCheck:
    """Leave-one-fold-out coverage of the per-step band, overall and on the most recent folds."""

    coverage: float  # all folds, at the final widening
    recent: float  # the most recent folds, before any widening by the check
    recent_folds: int
    widen: float  # the factor the check applies (1.0: none)


def check_coverage(fs: FoldSet, level: float, *, widen: float = 1.0) -> CoverageCheck:
    """Judge each fold by a band calibrated on the others; widen when the recent folds fall short.

    Folds are ordered newest first (as :func:`forecaster.backtest.cutoffs` makes them).
    """
    r = step_residuals(fs)
    used = np.flatnonzero(np.isfinite(r).any(axis=1))
    if len(used) < 2:
        return CoverageCheck(math.nan, math.nan, 0, 1.0)
    need = np.full(r.shape, np.nan)  # the widening each residual needs to fall inside its LOO band
    for i in used:
        lo, hi = _per_step(np.delete(r, i, axis=0), level)
        lo, hi = widen * lo, widen * hi
        ri = r[i]
        with np.errstate(all="ignore"):
            need[i] = np.where(ri >= 0, ri / np.where(hi > 0, hi, np.nan), ri / np.where(lo < 0, lo, np.nan))
        need[i] = np.where((ri == 0) & np.isfinite(ri), 0.0, need[i])
        need[i] = np.where(np.isfinite(ri) & ~np.isfinite(need[i]), np.inf, need[i])
    recent_rows = used[:RECENT_FOLDS]
    recent_need = need[recent_rows][np.isfinite(r[recent_rows])]
    recent = float(np.mean(recent_need <= 1.0)) if len(recent_need) else math.nan
    factor = 1.0
    if len(recent_need) and recent < level - TOLERANCE:
        k = min(math.ceil(level * len(recent_need)), len(recent_need)) - 1
        factor = float(min(max(np.sort(recent_need)[k], 1.0), MAX_WIDEN))
    all_need = need[np.isfinite(r)]
    overall = float(np.mean(all_need <= factor)) if len(all_need) else math.nan
    return CoverageCheck(overall, recent, len(recent_rows), factor)
