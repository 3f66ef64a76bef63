"""One learned model for a whole batch of series: fitted once on all their rows, used by each series' auto.

Why this module exists: a per-series tree model refits on every series (and every backtest fold group); a
fleet pays that a thousand times. Because the features and the target are scale free (ratios to the recent
weekly level, :mod:`forecaster.models.features`), one regressor can learn from every series of a batch at
once: a quiet series borrows the shapes of busy ones, and a series with a regime change has seen how others
recovered from theirs. :func:`fit_global` fits it once per batch, twice in fact:

- a *backtest* regressor on each series' rows before that series' earliest backtest cut, so the folds that
  judge it are never in its training data (it is up to two weeks staler than the final one: pessimistic);
- a *final* regressor on every row, for the real forecast.

:func:`global_factory` wraps the fitted pair as a registered-model-like class (alias ``lgbm_global`` or
``ridge_global``) that the pipeline backtests and fits like any other candidate (``extra_models`` of
:func:`forecaster.pipeline.run_forecast`). Who calls it: :func:`forecaster.batch.forecast_many` when the
settings ask for a global model, and the benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext
from forecaster.models.common import future_index, make_frame
from forecaster.models.features import Grid, direct_min_lag, feature_names, features
from forecaster.models.learned import Z_MAX, _fallback_level, one_blas_thread
from forecaster.models.regressors import Regressor, make_regressor

MAX_ROWS = 200_000
Triple = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class GlobalModel:
    """A regressor pair fitted across a batch (see the module docstring), with what it was fitted on."""

    kind: str
    min_lag: int
    freq: pd.Timedelta
    names: tuple[str, ...]
    backtest: Regressor
    final: Regressor
    series: int
    rows: int
    seconds: float

    @property
    def alias(self) -> str:
        return f"{self.kind}_global"


def _rows(
    hist: pd.DataFrame, ctx: FitContext, horizon: int, first: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(features, target, rows before position ``first``, the earliest backtest cut) of one history."""
    g = Grid.build(hist, ctx, 0)
    min_lag = direct_min_lag(horizon, g.day)
    x3, level = features(g, g.y[None, :], np.arange(g.n)[None, :], min_lag)
    with np.errstate(all="ignore"):
        z = g.y / level[0]
    ok = np.isfinite(z)
    order = np.flatnonzero(ok)
    return x3[0][order], np.clip(z[order], 0.0, Z_MAX), int(np.searchsorted(order, first))


def fit_global(
    histories: Sequence[tuple[pd.DataFrame, FitContext, int]],
    horizon: int,
    *,
    kind: str = "lgbm",
    max_rows: int = MAX_ROWS,
) -> GlobalModel:
    """Fit the backtest and final regressors on every series (one interval, one covariate set: the first's).

    Each history comes with the position of its earliest backtest cut (its length when it has no folds):
    the backtest regressor trains only on rows before it.

    Series at another interval, or too short to give a row, are left out. ValueError when none is usable.
    """
    t0 = time.perf_counter()
    if not histories:
        raise ValueError("no series to fit a global model on")
    freq = pd.Timedelta(histories[0][1].freq)
    xs, zs, early = [], [], []
    names: list[str] = []
    for hist, ctx, first in histories:
        if pd.Timedelta(ctx.freq) != freq:
            continue
        try:
            x, z, before = _rows(hist, ctx, horizon, first)
        except ValueError:
            continue
        if len(z) == 0:
            continue
        cov = () if ctx.covariates is None else tuple(str(c) for c in ctx.covariates.columns if c != "ds")
        day = max(round(pd.Timedelta(days=1) / freq), 1)
        cur = feature_names(direct_min_lag(horizon, day), day, cov)
        if names and cur != names:
            continue
        names = cur
        xs.append(x)
        zs.append(z)
        early.append(np.arange(len(z)) < before)
    if not xs:
        raise ValueError("no series long enough for a global model")
    x, z, bt = np.vstack(xs), np.concatenate(zs), np.concatenate(early)
    rng = np.random.default_rng(11)
    keep_all = _sample(len(z), max_rows, rng)
    keep_bt = _sample(int(bt.sum()), max_rows, rng)
    day = max(round(pd.Timedelta(days=1) / freq), 1)
    with one_blas_thread():
        final = make_regressor(kind).fit(x[keep_all], z[keep_all], names)
        xb, zb = x[bt], z[bt]
        backtest = make_regressor(kind).fit(xb[keep_bt], zb[keep_bt], names) if len(zb) else final
    return GlobalModel(
        kind,
        direct_min_lag(horizon, day),
        freq,
        tuple(names),
        backtest,
        final,
        len(xs),
        len(z),
        time.perf_counter() - t0,
    )


def _sample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """All row indices, or ``cap`` of them drawn without replacement (sorted), deterministic."""
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))


def global_factory(gm: GlobalModel) -> type:
    """A model class (``fit``/``predict``/``fold_forecasts``) backed by the fitted global regressors."""

    class GlobalLearned:
        alias = gm.alias
        model = gm

        def __init__(self) -> None:
            self._history: pd.DataFrame | None = None
            self._ctx: FitContext | None = None

        def fit(self, history: pd.DataFrame, ctx: FitContext) -> GlobalLearned:
            self._history, self._ctx = history[["ds", "y"]].reset_index(drop=True), ctx
            return self

        def predict(self, horizon: int) -> pd.DataFrame:
            if self._history is None or self._ctx is None:
                raise RuntimeError("fit() must be called before predict()")
            hist = self._history
            yhat, lo, hi = self.fold_forecasts(hist, self._ctx, [len(hist)], horizon)
            return make_frame(
                future_index(hist["ds"].iloc[-1], self._ctx.freq, horizon), yhat[0], lo[0], hi[0]
            )

        @staticmethod
        def fold_forecasts(
            history: pd.DataFrame, ctx: FitContext, cuts: Sequence[int], horizon: int
        ) -> Triple:
            return global_forecasts(gm, history, ctx, cuts, horizon)

    return GlobalLearned


def global_forecasts(
    gm: GlobalModel, history: pd.DataFrame, ctx: FitContext, cuts: Sequence[int], horizon: int
) -> Triple:
    """(yhat, lower, upper) per cut: the backtest regressor for cuts inside the history, the final one at
    its end."""
    if pd.Timedelta(ctx.freq) != gm.freq:
        raise ValueError(f"the global model was fitted at {gm.freq}, not {ctx.freq}")
    g = Grid.build(history, ctx, horizon)
    if direct_min_lag(horizon, g.day) != gm.min_lag:
        raise ValueError("the global model was fitted for another horizon")
    m = np.asarray(cuts, dtype=np.int64)
    pos = m[:, None] + np.arange(horizon)[None, :]
    x, level = features(g, g.y[None, :], pos.reshape(1, -1), gm.min_lag)
    x, level = x[0], level[0].reshape(pos.shape)
    out = np.empty(pos.shape)
    with one_blas_thread():
        for i, cut in enumerate(m):
            reg = gm.final if cut >= g.n else gm.backtest
            lv = np.where(np.isfinite(level[i]), level[i], _fallback_level(g.y, int(cut), g.week))
            rows = slice(i * horizon, (i + 1) * horizon)
            out[i] = np.clip(reg.predict(x[rows]), 0.0, Z_MAX) * lv
    yhat = np.clip(out, 0.0, None) * g.factor[pos]
    if not np.isfinite(yhat).all():
        raise ValueError("returned non-finite values")
    return yhat, yhat * 0.9, yhat * 1.1
