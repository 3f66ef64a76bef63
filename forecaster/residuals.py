"""The forecast's error table by lead time: what an availability target is sized from.

An operator who states "99.5% of intervals covered" wants each interval sized at the forecast error that
is exceeded in at most 0.5% of intervals, no more (replicas cost money) and no less. The band already comes
from the backtest residuals (:mod:`forecaster.band`: two-sided, one level, per horizon step); this module
turns the same residuals (the chosen model's rolling-origin folds, scaled the same way:
:func:`forecaster.band.step_residuals`) into one-sided quantiles at several levels and lead times, carried
in the artifact as :class:`forecaster.artifact.ErrorQuantiles` together with the band's own per-step upper
quantile, so a reader can put the bound on the band's scale. Only shortfalls count against availability,
so the bound is one-sided: for the same coverage it sits below a two-sided band's upper edge.

Quantiles are split-conformal (the ``ceil((n + 1) * level)``-th smallest of ``n`` residuals), which needs
``n >= level / (1 - level)`` residuals: 199 for 99.5%, 999 for 99.9%. A lead bucket with fewer uses the
residuals of all leads; when even those are too few, the largest residual is used and the table's
``coverage`` (each fold judged by a table built from the other folds, at the band's widening) tells what
that achieves.

Who calls it: :func:`forecaster.pipeline.run_forecast`. Pure, numpy only; a few sorts per forecast.
"""

from __future__ import annotations

import math

import numpy as np

from forecaster.artifact import ErrorQuantiles
from forecaster.band import StepCalibration, step_residuals
from forecaster.folds import FoldSet

LEVELS = (0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.998, 0.999)
LEAD_EDGES = (0.0, 3600.0, 3 * 3600.0, 6 * 3600.0, 12 * 3600.0, 24 * 3600.0)  # seconds


def lead_residuals(fs: FoldSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fold label, lead in seconds, scaled residual) per backtest actual, as the band scales them; a step
    ``k`` (0-based) of a fold forecasts the interval ``k`` intervals after its cutoff."""
    r = step_residuals(fs)
    folds, steps = r.shape
    labels = np.repeat(np.arange(folds), steps)
    leads = np.tile(np.arange(steps) * fs.freq.total_seconds(), folds)
    flat = r.ravel()
    ok = np.isfinite(flat)
    return labels[ok], leads[ok], flat[ok]


def quantile_table(leads: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``[bucket][level]`` one-sided conformal quantiles of the scaled residuals ``r`` (see module doc)."""
    bucket = np.searchsorted(LEAD_EDGES, leads, side="right") - 1
    parts = [np.sort(r[bucket == b]) for b in range(len(LEAD_EDGES))]
    pooled: np.ndarray | None = None  # sorted all-lead residuals, merged only when a bucket needs them
    out = np.empty((len(LEAD_EDGES), len(LEVELS)))
    for b, own in enumerate(parts):
        for j, level in enumerate(LEVELS):
            q = _conformal(own, level)
            if q is None:
                if pooled is None:
                    pooled = np.sort(np.concatenate(parts))
                q = _conformal(pooled, level)
                if q is None:
                    q = float(pooled[-1]) if len(pooled) else 0.0
            out[b, j] = q
    return np.maximum.accumulate(out, axis=1)  # never less at a higher level


def error_table(fs: FoldSet, band: StepCalibration) -> ErrorQuantiles | None:
    """The artifact's error table from the chosen model's folds and its band calibration, or None when
    there are too few residuals or folds to judge one fold by the others."""
    labels, leads, r = lead_residuals(fs)
    folds_seen = np.unique(labels)
    if len(r) < 4 or len(folds_seen) < 2:
        return None
    table = quantile_table(leads, r)
    bucket = np.searchsorted(LEAD_EDGES, leads, side="right") - 1
    hits = np.zeros(len(LEVELS))
    for lab in folds_seen:
        test = labels == lab
        held = quantile_table(leads[~test], r[~test])
        hits += (r[test][:, None] <= band.widen * held[bucket[test]]).sum(axis=0)
    counts = np.bincount(bucket, minlength=len(LEAD_EDGES))
    return ErrorQuantiles(
        levels=LEVELS,
        lead_seconds=LEAD_EDGES,
        quantiles=tuple(tuple(round(float(q), 6) for q in row) for row in table),
        band_upper=tuple(round(float(max(q, 0.0)), 6) for q in band.q_upper),
        residuals=tuple(int(n) for n in counts),
        coverage=tuple(round(float(h / len(r)), 6) for h in hits),
    )


def _conformal(sorted_r: np.ndarray, level: float) -> float | None:
    n = len(sorted_r)
    k = math.ceil((n + 1) * level - 1e-9)
    return float(sorted_r[k - 1]) if 1 <= k <= n else None
