"""Every registered model: contract shape, finite ordered bands, DST-correct lookups, outages and events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.models import AUTO_CANDIDATES, FALLBACK_CHAIN, MODELS, available_models
from forecaster.models.base import FORECAST_COLUMNS, FitContext, Model
from forecaster.models.baselines import SeasonalMedian, SeasonalNaive

TZ = "Europe/Paris"
HOUR = pd.Timedelta(hours=1)


def weekly_pattern(index: pd.DatetimeIndex, tz: str = TZ) -> np.ndarray:
    """Deterministic traffic: a function of local weekday and local hour only."""
    local = index.tz_convert(tz)
    return 100.0 + 10.0 * local.day_of_week + 5.0 * local.hour


def history(
    days: int = 21, end: str = "2026-03-28 23:00", tz: str = TZ, noise: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    idx = pd.date_range(end=pd.Timestamp(end, tz=tz), periods=days * 24, freq="h", name="ds")
    y = weekly_pattern(idx, tz)
    if noise:
        y = y * np.random.default_rng(seed).lognormal(0.0, noise, len(y))
    return pd.DataFrame({"ds": idx, "y": y})


FAST: list[Any] = [a for a in available_models() if not a.startswith("prophet") and a != "mstl_ets"]
SLOW = [pytest.param(a, marks=pytest.mark.slow) for a in available_models() if a not in FAST]


@pytest.mark.parametrize("alias", FAST + SLOW)
def test_model_contract_across_dst(alias: str) -> None:
    hist = history(days=15, noise=0.05)  # ends the evening before the spring-forward night in Paris
    model = MODELS[alias]()
    assert isinstance(model, Model) and model.alias == alias
    fc = model.fit(hist, FitContext(freq=HOUR, timezone=TZ)).predict(48)
    assert list(fc.columns) == FORECAST_COLUMNS
    assert len(fc) == 48
    vals = fc[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()
    assert np.isfinite(vals).all()
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert (fc["yhat_lower"] >= 0).all()
    ds = pd.DatetimeIndex(fc["ds"])
    assert ds[0] == hist["ds"].iloc[-1] + HOUR
    assert (pd.Series(ds).diff().iloc[1:] == HOUR).all()
    # Forecasts are in the right ballpark of a weekly pattern ranging 100..275.
    assert 50 < float(fc["yhat"].mean()) < 350


@pytest.mark.parametrize(
    "alias",
    ["snaive", "seasonal_median", "seasonal_median_level", "seasonal_wmean", "seasonal_dayratio"],
    ids=str,
)
def test_seasonal_models_follow_wall_clock_across_dst(alias: str) -> None:
    hist = history(days=35)
    fc = MODELS[alias]().fit(hist, FitContext(freq=HOUR, timezone=TZ)).predict(48)
    expected = weekly_pattern(pd.DatetimeIndex(fc["ds"]))
    np.testing.assert_allclose(fc["yhat"].to_numpy(), expected, rtol=1e-9)


def test_seasonal_naive_skips_outage_holes() -> None:
    hist = history(days=21)
    last_week = hist["ds"] > hist["ds"].iloc[-1] - pd.Timedelta(days=7)
    hist.loc[last_week, "y"] = np.nan  # a week-long outage: never demand
    fc = SeasonalNaive().fit(hist, FitContext(freq=HOUR, timezone=TZ)).predict(24)
    np.testing.assert_allclose(fc["yhat"].to_numpy(), weekly_pattern(pd.DatetimeIndex(fc["ds"])))


def test_seasonal_median_ignores_a_one_off_spike() -> None:
    hist = history(days=35)
    spike = hist["ds"] > hist["ds"].iloc[-1] - pd.Timedelta(days=7)
    hist.loc[spike, "y"] *= 5
    fc = SeasonalMedian(weeks=4).fit(hist, FitContext(freq=HOUR, timezone=TZ)).predict(24)
    np.testing.assert_allclose(fc["yhat"].to_numpy(), weekly_pattern(pd.DatetimeIndex(fc["ds"])))


def _events(rows: list[tuple[str, str, pd.Timestamp, pd.Timestamp, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "kind", "start", "end", "uplift"])


@pytest.mark.parametrize(
    "alias", ["snaive", "seasonal_median", "seasonal_wmean", "seasonal_dayratio"], ids=str
)
def test_declared_promotion_uplift_is_applied_in_horizon_and_removed_from_history(alias: str) -> None:
    hist = history(days=28)
    last = hist["ds"].iloc[-1]
    past = (last - pd.Timedelta(days=7) + HOUR, last - pd.Timedelta(days=7) + 7 * HOUR)
    hist.loc[(hist["ds"] >= past[0]) & (hist["ds"] < past[1]), "y"] *= 3.0  # last week's promotion
    promo = (last + HOUR, last + 7 * HOUR)
    events = _events(
        [("old", "promotion", past[0], past[1], 3.0), ("new", "promotion", promo[0], promo[1], 1.5)]
    )
    fc = MODELS[alias]().fit(hist, FitContext(freq=HOUR, timezone=TZ, events=events)).predict(24)
    base = weekly_pattern(pd.DatetimeIndex(fc["ds"]))
    np.testing.assert_allclose(fc["yhat"].to_numpy()[:6], 1.5 * base[:6], rtol=0.02)
    np.testing.assert_allclose(fc["yhat"].to_numpy()[6:], base[6:], rtol=0.02)


def test_past_holiday_is_not_repeated_by_seasonal_naive() -> None:
    hist = history(days=21)
    last = hist["ds"].iloc[-1]
    day = (last - pd.Timedelta(days=7) + HOUR, last - pd.Timedelta(days=6) + HOUR)
    hist.loc[(hist["ds"] >= day[0]) & (hist["ds"] < day[1]), "y"] = 1.0
    events = _events([("Holiday", "holiday", day[0], day[1], float("nan"))])
    fc = SeasonalNaive().fit(hist, FitContext(freq=HOUR, timezone=TZ, events=events)).predict(24)
    np.testing.assert_allclose(fc["yhat"].to_numpy(), weekly_pattern(pd.DatetimeIndex(fc["ds"])))


def test_short_history_uses_the_daily_profile() -> None:
    hist = history(days=3)
    fc = SeasonalNaive().fit(hist, FitContext(freq=HOUR, timezone=TZ)).predict(24)
    assert np.isfinite(fc["yhat"]).all() and len(fc) == 24


def test_registry_lists_candidates_and_fallbacks() -> None:
    assert set(AUTO_CANDIDATES) <= set(MODELS) and set(FALLBACK_CHAIN) <= set(MODELS)
    assert available_models() == sorted(MODELS)
    assert len({MODELS[a]().alias for a in MODELS}) == len(MODELS)


@pytest.mark.slow
def test_prophet_traffic_sees_calendar_holidays() -> None:
    hist = history(days=14)
    last = hist["ds"].iloc[-1]
    events = _events(
        [
            (
                "Day off",
                "holiday",
                last - pd.Timedelta(days=3) + HOUR,
                last - pd.Timedelta(days=2) + HOUR,
                float("nan"),
            )
        ]
    )
    model = MODELS["prophet"]().fit(hist, FitContext(freq=HOUR, timezone=TZ, events=events))
    fc = model.predict(24)
    assert np.isfinite(fc["yhat"]).all()
    assert "holiday:Day off" in set(model._model.holidays["holiday"])  # type: ignore[attr-defined]
