"""Known-future covariates: read from their own file, required over the whole horizon, used by the learned
models and by Prophet as a regressor."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.backtest import wape
from forecaster.errors import UserError
from forecaster.pipeline import run_forecast
from forecaster.series.cleaning import clean
from forecaster.series.covariates import load_covariates

HOUR = pd.Timedelta(hours=1)


def campaign_series(days: int = 43) -> tuple[pd.Series, pd.DataFrame]:
    idx = pd.date_range("2026-01-01", periods=days * 24, freq=HOUR, tz="UTC", name="ds")
    on = np.repeat(np.random.default_rng(4).random(days) < 0.3, 24).astype(float)
    on[-24:] = 1.0  # the campaign runs over the forecast day
    y = (300 + 200 * np.sin(np.pi * idx.hour / 24) ** 2) * (1 + 0.6 * on)
    y = y * np.random.default_rng(2).lognormal(0, 0.03, len(idx))
    return pd.Series(np.asarray(y), index=idx, name="y"), pd.DataFrame({"ds": idx, "campaign": on})


def test_a_learned_model_uses_the_campaign_calendar() -> None:
    raw, cov = campaign_series()
    hist, actual = clean(raw.iloc[:-24], where="t"), raw.iloc[-24:].to_numpy()
    with_cov = run_forecast(hist, pd.Timedelta("24h"), model="lgbm", covariates=cov)
    without = run_forecast(hist, pd.Timedelta("24h"), model="lgbm")
    plain = wape(actual, without.frame["yhat"].to_numpy())
    assert wape(actual, with_cov.frame["yhat"].to_numpy()) < 0.5 * plain


@pytest.mark.slow
def test_prophet_takes_a_covariate_as_regressor() -> None:
    raw, cov = campaign_series()
    hist, actual = clean(raw.iloc[:-24], where="t"), raw.iloc[-24:].to_numpy()
    with_cov = run_forecast(hist, pd.Timedelta("24h"), model="prophet", covariates=cov, folds=2)
    without = run_forecast(hist, pd.Timedelta("24h"), model="prophet", folds=2)
    assert wape(actual, with_cov.frame["yhat"].to_numpy()) < wape(actual, without.frame["yhat"].to_numpy())


def test_a_missing_future_value_is_an_error_naming_column_and_time() -> None:
    raw, cov = campaign_series()
    hist = clean(raw.iloc[:-24], where="t")
    short = cov.iloc[:-5]
    first = pd.Timestamp(cov["ds"].iloc[-5]).isoformat()
    with pytest.raises(UserError, match=re.escape(f"covariate 'campaign' has no value for {first}")):
        run_forecast(hist, pd.Timedelta("24h"), model="auto", covariates=short)


def test_covariates_file_is_read_with_every_non_time_column(tmp_path: Path) -> None:
    p = tmp_path / "cov.csv"
    p.write_text("timestamp,promo,temp\n2026-01-01 00:00,1,3.5\n2026-01-01 01:00,0,\n", encoding="utf-8")
    cov = load_covariates(p, timezone="UTC")
    assert list(cov.columns) == ["ds", "promo", "temp"]
    assert cov["promo"].tolist() == [1.0, 0.0] and np.isnan(cov["temp"].iloc[1])
    bad = tmp_path / "bad.csv"
    bad.write_text("when,promo\n2026-01-01,1\n", encoding="utf-8")
    with pytest.raises(UserError, match="no time column"):
        load_covariates(bad)
