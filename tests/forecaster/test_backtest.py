"""Metrics, fold origins, rolling-origin evaluation and conformal calibration of the band."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.backtest import (
    calibrate,
    coverage,
    cross_coverage,
    cutoffs,
    mape,
    rolling_origin,
    scores,
    wape,
)
from forecaster.models.base import FitContext
from forecaster.models.baselines import SeasonalMedian, SeasonalNaive

HOUR = pd.Timedelta(hours=1)


@pytest.mark.parametrize(
    ("fn", "actual", "pred", "expected"),
    [
        (wape, [10, 20, 30], [10, 20, 30], 0.0),
        (wape, [10, 10], [15, 5], 0.5),
        (wape, [10, np.nan, 10], [12, 99, 8], 0.2),
        (mape, [0, 10, 20], [5, 12, 18], 0.15),  # the zero actual is left out
    ],
    ids=["perfect", "symmetric", "nan-ignored", "mape-skips-zero"],
)
def test_point_metrics(fn: Any, actual: list[float], pred: list[float], expected: float) -> None:
    assert fn(np.array(actual, float), np.array(pred, float)) == pytest.approx(expected)


def test_bias_sign_and_coverage() -> None:
    folds = pd.DataFrame(
        {
            "cutoff": [1, 1, 2, 2],
            "y": [10.0, 10.0, 10.0, 10.0],
            "yhat": [11.0, 11.0, 12.0, 10.0],
            "yhat_lower": [9.0, 10.5, 9.0, 9.0],
            "yhat_upper": [11.0, 12.0, 13.0, 9.5],
        }
    )
    s = scores(folds)
    assert s["bias"] == pytest.approx(0.1)  # over-forecast is positive
    assert s["coverage"] == pytest.approx(0.5)
    assert s["folds"] == 2
    assert math.isnan(wape(np.array([0.0]), np.array([1.0])))
    assert coverage(np.array([1.0, 5.0]), np.array([0.0, 0.0]), np.array([2.0, 2.0])) == 0.5


def _series(days: int, noise: float, seed: int = 1) -> pd.DataFrame:
    idx = pd.date_range("2026-01-01", periods=days * 24, freq="h", tz="UTC", name="ds")
    base = 100 + 60 * np.sin(2 * np.pi * idx.hour / 24) + 20 * (idx.day_of_week >= 5)
    y = base * np.random.default_rng(seed).lognormal(0.0, noise, len(idx))
    return pd.DataFrame({"ds": idx, "y": y})


@pytest.mark.parametrize(
    ("days", "folds", "expected"),
    [(30, 5, 5), (10, 5, 2), (7, 5, 0)],
    ids=["enough-history", "short-history-fewer-folds", "too-short-no-fold"],
)
def test_cutoffs_at_origin_time_of_day(days: int, folds: int, expected: int) -> None:
    hist = _series(days, 0.0)
    hist = hist.iloc[:-5]  # origin at 19:00, not midnight
    cuts = cutoffs(hist["ds"], HOUR, 24, folds)
    assert len(cuts) == expected
    origin = hist["ds"].iloc[-1] + HOUR
    for k, cut in enumerate(cuts, start=1):
        assert cut == origin - pd.Timedelta(days=k)  # newest first, one day apart, same time of day


def test_rolling_origin_joins_actuals_per_step() -> None:
    hist = _series(28, 0.1)
    cuts = cutoffs(hist["ds"], HOUR, 24, 3)
    folds = rolling_origin(hist, SeasonalNaive, FitContext(HOUR, "UTC"), 24, cuts)
    assert list(folds.columns) == ["cutoff", "step", "ds", "y", "yhat", "yhat_lower", "yhat_upper"]
    assert len(folds) == 3 * 24
    first = folds[folds["cutoff"] == cuts[0]]
    assert first["step"].tolist() == list(range(1, 25))
    truth = hist.set_index("ds")["y"]
    np.testing.assert_allclose(first["y"].to_numpy(), truth.reindex(pd.DatetimeIndex(first["ds"])).to_numpy())


@pytest.mark.parametrize("level", [0.8, 0.9], ids=["80%", "90%"])
def test_calibrated_band_covers_nominal_share_on_fresh_folds(level: float) -> None:
    hist = _series(70, 0.12, seed=7)
    ctx = FitContext(HOUR, "UTC")
    cuts = cutoffs(hist["ds"], HOUR, 24, 40, min_train=pd.Timedelta(days=28))
    folds = rolling_origin(hist, lambda: SeasonalMedian(weeks=4), ctx, 24, cuts)
    train = folds[folds["cutoff"].isin(cuts[20:])]  # calibrate on the older folds ...
    test = folds[folds["cutoff"].isin(cuts[:20])]  # ... judge on the newer ones
    cal = calibrate(train, level)
    banded = pd.concat([cal.apply(f) for _, f in test.groupby("cutoff")])
    cov = coverage(banded["y"].to_numpy(), banded["yhat_lower"].to_numpy(), banded["yhat_upper"].to_numpy())
    assert level - 0.1 <= cov <= level + 0.1  # 20 fresh days: sampling noise of a few points
    assert level - 0.04 <= cross_coverage(folds, level) <= level + 0.04
    assert (banded["yhat_lower"] <= banded["yhat"]).all() and (banded["yhat"] <= banded["yhat_upper"]).all()


def test_widening_widens_the_band() -> None:
    hist = _series(35, 0.1)
    cuts = cutoffs(hist["ds"], HOUR, 24, 5)
    folds = rolling_origin(hist, SeasonalNaive, FitContext(HOUR, "UTC"), 24, cuts)
    narrow = calibrate(folds, 0.9).apply(folds)
    wide = calibrate(folds, 0.9, widen=1.5).apply(folds)
    assert (wide["yhat_upper"] >= narrow["yhat_upper"]).all()
    assert (wide["yhat_upper"] - wide["yhat"]).sum() > (narrow["yhat_upper"] - narrow["yhat"]).sum()
