"""MSTL decomposition (daily + weekly seasonality) with an exponential-smoothing forecast of the remainder.

Traffic is multiplicative (the evening peak scales with the level), so the model works on ``log1p(y)``: the
seasonal components are repeated from the last period and the deseasonalised level is forecast by a damped
Holt (ETS) model. Outage holes are interpolated before decomposition only, never counted as demand.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext
from forecaster.models.common import (
    deflate_history,
    fill_gaps,
    future_index,
    make_frame,
    uplift_factor,
)


class MSTLETS:
    """MSTL(day, week) on log1p(y) + damped-trend ETS on the seasonally adjusted series."""

    alias = "mstl_ets"

    def __init__(self, log: bool = True, max_days: int = 28) -> None:
        self.log = log
        self.max_days = max_days
        self._ctx: FitContext | None = None
        self._last: pd.Timestamp | None = None
        self._seasonals: list[np.ndarray] = []
        self._adjusted: np.ndarray | None = None
        self._resid_sd = 0.0

    def fit(self, history: pd.DataFrame, ctx: FitContext) -> MSTLETS:
        from statsmodels.tsa.seasonal import MSTL

        hist = deflate_history(history[["ds", "y"]].reset_index(drop=True), ctx.events)
        day = round(pd.Timedelta(days=1) / ctx.freq)
        keep = self.max_days * day
        hist = hist.iloc[-keep:] if len(hist) > keep else hist
        y = fill_gaps(hist["y"]).to_numpy(dtype=float)
        if len(y) < 2 * day or not np.isfinite(y).all():
            raise ValueError("MSTL needs at least two days of history")
        z = np.log1p(np.clip(y, 0, None)) if self.log else y
        periods = [p for p in (day, 7 * day) if 2 * p <= len(z)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = MSTL(z, periods=periods, iterate=2, stl_kwargs={"robust": False}).fit()
        seas = np.asarray(res.seasonal)
        seas = seas.reshape(len(z), -1)
        self._seasonals = [seas[:, i] for i in range(seas.shape[1])]
        self._periods = periods
        self._adjusted = z - seas.sum(axis=1)
        self._resid_sd = float(np.std(np.asarray(res.resid)))
        self._ctx = ctx
        self._last = hist["ds"].iloc[-1]
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        if self._ctx is None or self._adjusted is None or self._last is None:
            raise RuntimeError("fit() must be called before predict()")
        seasonal = np.zeros(horizon)
        for comp, p in zip(self._seasonals, self._periods, strict=True):
            last = comp[-p:]
            seasonal += np.resize(last, horizon)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ets = ExponentialSmoothing(
                self._adjusted, trend="add", damped_trend=True, initialization_method="estimated"
            ).fit()
            level = np.asarray(ets.forecast(horizon), dtype=float)
        z = level + seasonal
        sd = self._resid_sd * 1.645
        if self.log:
            yhat, lo, hi = np.expm1(z), np.expm1(z - sd), np.expm1(z + sd)
        else:
            yhat, lo, hi = z, z - sd, z + sd
        targets = future_index(self._last, self._ctx.freq, horizon)
        factor = uplift_factor(targets, self._ctx.events)
        return make_frame(targets, yhat * factor, lo * factor, hi * factor)
