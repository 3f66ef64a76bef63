"""The learned family: LightGBM and ridge regression on lag and calendar features, per series.

Every seasonal model is an average of the past; these learn how a series responds to its own recent level,
time of day, weekday and known-future covariates (features in :mod:`forecaster.models.features`, regressors
in :mod:`forecaster.models.regressors`). The target is the value over the recent weekly level, so the model
predicts a shape and the level comes from the data at the origin.

Two ways to reach several steps ahead, both registered so the benchmark can compare them:

- direct (``ridge``, ``lgbm_direct``): every feature lags the target by at least the horizon (rounded up to
  days), so one model predicts all steps from what is known at the origin and nothing compounds;
- recursive (``lgbm``, ``ridge_recursive``): features from one interval back, each step's forecast fed in as
  the next step's history.

Each regressor's plain alias is the variant that backtested better on the development traces
(docs/benchmarks.md): recursive for LightGBM, direct for ridge.

Backtesting: :meth:`_Learned.fold_forecasts` gives the pipeline every fold at once. A direct model's features
never look past the origin, so one feature matrix serves all folds; a model is refitted on the history before
each cut, or, for trees, before each group of ``refit_every`` consecutive daily cuts (a fit costs ~50 ms; a
week-old model is a fair, slightly pessimistic stand-in for the one refitted at every origin).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext
from forecaster.models.common import future_index, make_frame
from forecaster.models.features import Grid, direct_min_lag, feature_names, features
from forecaster.models.regressors import Regressor, make_regressor

MIN_TRAIN_DAYS = 4
Z_MAX = 20.0
Triple = tuple[np.ndarray, np.ndarray, np.ndarray]


def _fallback_level(ys: np.ndarray, m: int, week: int) -> float:
    """The mean of the last observed week before ``m`` (any observed value if none): used when a target's
    own weekly level is unknown (a long outage)."""
    for part in (ys[max(m - week, 0) : m], ys[:m]):
        ok = np.isfinite(part)
        if ok.any():
            return float(part[ok].mean())
    raise ValueError("history has no observed values")


class _Learned:
    """A regressor on the features of :mod:`forecaster.models.features`, direct or recursive."""

    alias = "learned"
    kind = "ridge"
    recursive = False
    refit_every = 1  # consecutive daily folds sharing one fitted model in the backtest

    def __init__(self) -> None:
        self._history: pd.DataFrame | None = None
        self._ctx: FitContext | None = None

    def fit(self, history: pd.DataFrame, ctx: FitContext) -> _Learned:
        hist = history[["ds", "y"]].reset_index(drop=True)
        if not np.isfinite(hist["y"].to_numpy(dtype=float)).any():
            raise ValueError("history has no observed values")
        self._history, self._ctx = hist, ctx
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if self._history is None or self._ctx is None:
            raise RuntimeError("fit() must be called before predict()")
        hist = self._history
        yhat, lo, hi = type(self).fold_forecasts(hist, self._ctx, [len(hist)], horizon)
        targets = future_index(hist["ds"].iloc[-1], self._ctx.freq, horizon)
        return make_frame(targets, yhat[0], lo[0], hi[0])

    @classmethod
    def fold_forecasts(
        cls, history: pd.DataFrame, ctx: FitContext, cuts: Sequence[int], horizon: int
    ) -> Triple:
        """(yhat, lower, upper), each (len(cuts), horizon): models trained on the first ``cut`` intervals.

        ValueError when a fold has too little history to train on (the pipeline then skips the model).
        """
        g = Grid.build(history, ctx, horizon)
        m = np.asarray(cuts, dtype=np.int64)
        if len(m) == 0:
            empty = np.empty((0, horizon))
            return empty, empty, empty
        with one_blas_thread():
            yhat = _recursive(g, cls, m, horizon) if cls.recursive else _direct(g, cls, m, horizon)
        targets = m[:, None] + np.arange(horizon)[None, :]
        yhat = np.clip(yhat, 0.0, None) * g.factor[targets]
        if not np.isfinite(yhat).all():
            raise ValueError("returned non-finite values")
        return yhat, yhat * 0.9, yhat * 1.1


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the small matrix algebra of a fit on one BLAS thread: on a busy machine a multi-threaded BLAS
    spends far longer waiting for its threads than computing (measured: 15 ridge fits 8.5 s against 0.13 s
    with one thread, on 2 shared cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; without it, just slower on busy machines
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _groups(m: np.ndarray, every: int) -> list[np.ndarray]:
    """Fold indices grouped so each group shares the model fitted before its earliest cut."""
    order = np.argsort(m, kind="stable")
    return [order[i : i + every] for i in range(0, len(order), max(every, 1))]


def _fit(
    cls: type[_Learned], x: np.ndarray, z: np.ndarray, names: list[str], limit: int, day: int
) -> Regressor:
    """A regressor fitted on the rows before ``limit`` with a finite target."""
    rows = np.flatnonzero(np.isfinite(z[:limit]))
    if len(rows) < MIN_TRAIN_DAYS * day:
        raise ValueError(
            f"only {len(rows)} training intervals with a weekly level (need {MIN_TRAIN_DAYS * day})"
        )
    return make_regressor(cls.kind).fit(x[rows], np.clip(z[rows], 0.0, Z_MAX), names)


def _direct(g: Grid, cls: type[_Learned], m: np.ndarray, horizon: int) -> np.ndarray:
    min_lag = direct_min_lag(horizon, g.day)
    size = len(g.y)
    x3, level2 = features(g, g.y[None, :], np.arange(size)[None, :], min_lag)
    x, level = x3[0], level2[0]
    with np.errstate(all="ignore"):
        z = g.y / level
    names = feature_names(min_lag, g.day, g.covariate_names)
    out = np.empty((len(m), horizon))
    for group in _groups(m, cls.refit_every):
        reg = _fit(cls, x, z, names, int(m[group].min()), g.day)
        for i in group:
            pos = np.arange(m[i], m[i] + horizon)
            lv = level[pos]
            lv = np.where(np.isfinite(lv), lv, _fallback_level(g.y, int(m[i]), g.week))
            out[i] = np.clip(reg.predict(x[pos]), 0.0, Z_MAX) * lv
    return out


def _recursive(g: Grid, cls: type[_Learned], m: np.ndarray, horizon: int) -> np.ndarray:
    x3, level2 = features(g, g.y[None, :], np.arange(g.n)[None, :], 1)
    with np.errstate(all="ignore"):
        z = g.y[: g.n] / level2[0]
    names = feature_names(1, g.day, g.covariate_names)
    out = np.empty((len(m), horizon))
    for group in _groups(m, cls.refit_every):
        reg = _fit(cls, x3[0], z, names, int(m[group].min()), g.day)
        cuts = m[group]
        ys = np.tile(g.y, (len(group), 1))
        ys[np.arange(ys.shape[1])[None, :] >= cuts[:, None]] = np.nan
        fb = np.array([_fallback_level(g.y, int(c), g.week) for c in cuts])
        for s in range(horizon):
            pos = (cuts + s)[:, None]
            xs, lv = features(g, ys, pos, 1)
            lv = np.where(np.isfinite(lv[:, 0]), lv[:, 0], fb)
            pred = np.clip(reg.predict(xs[:, 0, :]), 0.0, Z_MAX) * lv
            ys[np.arange(len(group)), cuts + s] = pred
            out[group, s] = pred
    return out


class LGBMDirect(_Learned):
    """LightGBM (L1 loss) on day-ahead lag, level and calendar features: all steps from the origin."""

    alias = "lgbm_direct"
    kind = "lgbm"
    refit_every = 7


class RidgeDirect(_Learned):
    """Ridge regression on the same features as ``lgbm``: the cheap, smooth member of the family."""

    alias = "ridge"
    kind = "ridge"


class LGBMRecursive(LGBMDirect):
    """LightGBM with features from one interval back; each step's forecast feeds the next (the better of the
    two LightGBM variants on the development traces, so it is plain ``lgbm``)."""

    alias = "lgbm"
    recursive = True


class RidgeRecursive(RidgeDirect):
    """Ridge regression, recursive (see ``lgbm``)."""

    alias = "ridge_recursive"
    recursive = True
