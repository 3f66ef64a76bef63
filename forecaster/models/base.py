"""The one interface every forecasting model implements, in the spirit of Prophet and statsforecast.

A model sees a clean, regular history frame ``ds, y`` (``ds`` tz-aware, regular at ``freq``; ``y`` may hold
NaN where the interval was missing or flagged as an outage) plus the event calendar, and predicts the next
``horizon`` intervals as a frame ``ds, yhat, yhat_lower, yhat_upper``. Evaluation (cutoffs, metrics, band
calibration) lives outside the models, in :mod:`forecaster.backtest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

FORECAST_COLUMNS = ["ds", "yhat", "yhat_lower", "yhat_upper"]


@dataclass(frozen=True)
class FitContext:
    """What a model may know besides the series: the resolution, the zone and the calendar."""

    freq: pd.Timedelta
    timezone: str
    # columns: name, kind, start, end, uplift (see forecaster.series.calendar)
    events: pd.DataFrame | None = None
    band_level: float = 0.9
    # Known-future covariates: ds plus one column per covariate, covering the history and the horizon.
    # Models that can use them (learned, Prophet) must; the others ignore them.
    covariates: pd.DataFrame | None = None


@runtime_checkable
class Model(Protocol):
    """fit(history) -> predict(horizon) -> frame(ds, yhat, yhat_lower, yhat_upper)."""

    alias: str

    def fit(self, history: pd.DataFrame, ctx: FitContext) -> Model: ...

    def predict(self, horizon: int) -> pd.DataFrame: ...
