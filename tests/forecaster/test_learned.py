"""The learned family: LightGBM and ridge on lag features, direct and recursive, per series.

What must hold: forecasts follow a regular weekly series closely; the all-folds backtest gives exactly what a
model refitted on each fold's history would (no look-ahead); the future cannot leak into a fold; LightGBM is
deterministic; known-future covariates are used, and a missing future value is an error naming the column.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from forecaster.backtest import wape
from forecaster.models import MODELS
from forecaster.models.base import FitContext
from forecaster.models.features import Grid, direct_min_lag, feature_names, features, lag_set

HOUR = pd.Timedelta(hours=1)
LEARNED = ["lgbm", "ridge", "lgbm_direct", "ridge_recursive"]


def weekly(days: int = 42, seed: int = 3, end: str = "2026-03-01 23:00") -> pd.DataFrame:
    idx = pd.date_range(end=pd.Timestamp(end, tz="UTC"), periods=days * 24, freq=HOUR, name="ds")
    hour, weekend = idx.hour, idx.day_of_week >= 5
    y = 200 + 150 * np.sin(np.pi * hour / 24) ** 2 - 60 * weekend
    noise = np.random.default_rng(seed).lognormal(0, 0.05, len(idx))
    return pd.DataFrame({"ds": idx, "y": np.asarray(y * noise, dtype=float)})


CTX = FitContext(HOUR, "UTC")


@pytest.mark.parametrize("alias", LEARNED)
def test_follows_a_regular_weekly_series(alias: str) -> None:
    hist = weekly()
    train, test = hist.iloc[:-24], hist.iloc[-24:]
    fc = MODELS[alias]().fit(train, CTX).predict(24)
    assert list(fc.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper"]
    assert (pd.DatetimeIndex(fc["ds"]) == pd.DatetimeIndex(test["ds"])).all()
    assert np.isfinite(fc[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    assert wape(test["y"].to_numpy(), fc["yhat"].to_numpy()) < 0.08


@pytest.mark.parametrize("alias", ["ridge", "ridge_recursive", "lgbm", "lgbm_direct"])
def test_all_folds_equal_refits_on_each_folds_history(alias: str) -> None:
    hist = weekly(days=35)
    n = len(hist)
    cuts = [n - 24 * k for k in (3, 2)] if not alias.startswith("lgbm") else [n - 48]
    yhat, _, _ = MODELS[alias].fold_forecasts(hist, CTX, cuts, 24)  # type: ignore[attr-defined]
    for i, cut in enumerate(cuts):
        alone = MODELS[alias]().fit(hist.iloc[:cut], CTX).predict(24)["yhat"].to_numpy()
        np.testing.assert_allclose(yhat[i], alone, rtol=1e-9)


@pytest.mark.parametrize("alias", LEARNED)
def test_a_fold_never_sees_its_future(alias: str) -> None:
    hist = weekly(days=35)
    cut = len(hist) - 48
    before, _, _ = MODELS[alias].fold_forecasts(hist, CTX, [cut], 24)  # type: ignore[attr-defined]
    spoiled = hist.copy()
    spoiled.loc[cut:, "y"] = spoiled["y"].to_numpy()[cut:] * 5
    after, _, _ = MODELS[alias].fold_forecasts(spoiled, CTX, [cut], 24)  # type: ignore[attr-defined]
    np.testing.assert_allclose(before, after)


def test_lightgbm_is_deterministic() -> None:
    hist = weekly(days=30)
    a = MODELS["lgbm"]().fit(hist, CTX).predict(24)["yhat"].to_numpy()
    b = MODELS["lgbm"]().fit(hist, CTX).predict(24)["yhat"].to_numpy()
    np.testing.assert_array_equal(a, b)


def test_too_short_a_history_is_a_model_error() -> None:
    with pytest.raises(ValueError, match="training intervals"):
        MODELS["ridge"]().fit(weekly(days=7), CTX).predict(24)


def test_direct_features_lag_the_target_by_whole_days_covering_the_horizon() -> None:
    assert direct_min_lag(24, 24) == 24 and direct_min_lag(30, 24) == 48 and direct_min_lag(6, 48) == 48
    assert lag_set(24, 24) == (24, 48, 168, 336)
    assert lag_set(1, 24) == (1, 25, 168, 336)
    assert lag_set(288, 288) == (288, 576, 2016, 4032)  # 5-minute data: the same days and weeks


def test_feature_values_are_ratios_to_the_weekly_level() -> None:
    hist = weekly(days=21)
    g = Grid.build(hist, CTX, 24)
    pos = np.array([[len(hist) + 3]])
    x, level = features(g, g.y[None, :], pos, 24)
    names = feature_names(24, 24, ())
    y = hist["y"].to_numpy()
    end = len(hist) + 3 - 24
    assert level[0, 0] == pytest.approx(y[end - 167 : end + 1].mean())
    assert x[0, 0, names.index("lag_168")] == pytest.approx(y[len(hist) + 3 - 168] / level[0, 0])
    assert x[0, 0, names.index("slot")] == 3


def covariate_history(days: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A series driven by a known-ahead campaign intensity (0 or 1 on random days)."""
    hist = weekly(days=days + 1, seed=9)
    rng = np.random.default_rng(4)
    day_on = rng.random(days + 1) < 0.3
    campaign = np.repeat(day_on.astype(float), 24)
    hist["y"] = hist["y"].to_numpy() * (1 + 0.6 * campaign)
    cov = pd.DataFrame({"ds": hist["ds"], "campaign": campaign})
    return hist, cov


@pytest.mark.parametrize("alias", ["lgbm", "ridge", "lgbm_direct"])
def test_known_future_covariate_is_learned(alias: str) -> None:
    hist, cov = covariate_history()
    train, test = hist.iloc[:-24], hist.iloc[-24:]
    with_cov = FitContext(HOUR, "UTC", covariates=cov)
    fc = MODELS[alias]().fit(train, with_cov).predict(24)["yhat"].to_numpy()
    plain = MODELS[alias]().fit(train, CTX).predict(24)["yhat"].to_numpy()
    actual = test["y"].to_numpy()
    assert wape(actual, fc) < wape(actual, plain)


def test_a_missing_future_covariate_value_names_the_column_and_time() -> None:
    hist, cov = covariate_history()
    train = hist.iloc[:-24]
    short = cov.iloc[:-20]
    ctx = FitContext(HOUR, "UTC", covariates=short)
    first_missing = pd.Timestamp(cov["ds"].iloc[-20]).isoformat()
    with pytest.raises(ValueError, match=re.escape(f"'campaign' has no value at {first_missing}")):
        MODELS["lgbm"]().fit(train, ctx).predict(24)
