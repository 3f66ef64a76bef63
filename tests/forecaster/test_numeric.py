"""The array kernels against the frame models they replace: same forecast on every fold, same pipeline result.

The frame models in forecaster.models.baselines are the reference. Each case below is a history shape that
exercises one rule of theirs (DST in both directions, a cut inside the repeated fall-back hour, outage holes,
holidays, promotions, less than a week of history, a horizon longer than a day).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forecaster.pipeline as pipeline
from forecaster import numeric
from forecaster.backtest import cutoffs
from forecaster.models import AUTO_CANDIDATES, MODELS
from forecaster.models.base import FitContext
from forecaster.series.cleaning import clean

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
TZ = "America/New_York"


def history(days: int, *, end: str, freq: str = "1h", seed: int = 5, holes: bool = False) -> pd.DataFrame:
    step = pd.Timedelta(freq)
    idx = pd.date_range(end=pd.Timestamp(end, tz="UTC"), periods=int(days * DAY / step), freq=step)
    idx = idx.tz_convert(TZ).rename("ds")
    local = idx.hour + idx.minute / 60
    y = 100 + 80 * np.sin(2 * np.pi * (local - 7) / 24) ** 2 + 30 * (idx.day_of_week >= 5)
    y = np.asarray(y * np.random.default_rng(seed).lognormal(0, 0.15, len(idx)), dtype=float)
    if holes:
        y[len(y) // 3 : len(y) // 3 + 30] = np.nan  # an outage
        y[-200:-190] = np.nan
        y[-9 * 24 : -9 * 24 + 5] = np.nan
    return pd.DataFrame({"ds": idx, "y": y})


def events(hist: pd.DataFrame) -> pd.DataFrame:
    t = hist["ds"]
    return pd.DataFrame(
        {
            "name": ["Holiday", "Promo past", "Promo ahead", "Month start"],
            "kind": ["holiday", "promotion", "promotion", "month_start"],
            "start": [t.iloc[-15 * 24], t.iloc[-3 * 24 - 5], t.iloc[-1] + 5 * HOUR, t.iloc[-30 * 24]],
            "end": [t.iloc[-14 * 24], t.iloc[-3 * 24 + 7], t.iloc[-1] + 9 * HOUR, t.iloc[-29 * 24]],
            "uplift": [np.nan, 1.8, 2.5, np.nan],
        }
    )


CASES = {
    "plain": (history(56, end="2026-03-01 23:00"), 24, False),
    "spring-dst-holes-events": (history(40, end="2026-03-20 04:00", holes=True), 24, True),
    "fall-dst-30min": (history(30, end="2025-11-12 23:30", freq="30min"), 48, True),
    "fall-back-daily-profile": (history(10, end="2025-11-06 23:00"), 48, False),
    "horizon-3-days": (history(50, end="2026-02-10 17:00", holes=True), 72, True),
    "short-daily-profile": (history(5, end="2026-02-10 23:00", holes=True), 24, False),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("alias", AUTO_CANDIDATES)
def test_kernel_equals_frame_model_on_every_fold(case: str, alias: str) -> None:
    hist, steps, with_events = CASES[case]
    ctx = FitContext(
        freq=hist["ds"].iloc[1] - hist["ds"].iloc[0],
        timezone=TZ,
        events=events(hist) if with_events else None,
    )
    cuts = cutoffs(hist["ds"], ctx.freq, steps, 14)
    arrays = numeric.SeriesArrays.build(hist, ctx, steps)
    assert arrays is not None
    # Extra cuts around the repeated 01:00 of 2025-11-02 (05:00 and 06:00 UTC): a fold that saw one of the
    # two occurrences of a local time must use that one only.
    stamps = pd.DatetimeIndex(hist["ds"])
    near = pd.date_range("2025-11-02 03:00", periods=5, freq="h", tz="UTC")
    extra = [stamps[i] for i in np.flatnonzero(stamps.isin(near))]
    cuts = cuts + extra
    positions = [round((c - hist["ds"].iloc[0]) / ctx.freq) for c in cuts] + [len(hist)]
    spec = numeric.kernel_for(MODELS[alias])
    assert spec is not None
    yhat, lower, upper = numeric.predict(arrays, spec, positions, steps)
    for i, cut in enumerate([*cuts, None]):
        train = hist if cut is None else hist[hist["ds"] < cut]
        ref = MODELS[alias]().fit(train, ctx).predict(steps)
        np.testing.assert_allclose(yhat[i], ref["yhat"], rtol=1e-12, err_msg=f"fold {i}")
        np.testing.assert_allclose(lower[i], ref["yhat_lower"], rtol=1e-12, err_msg=f"fold {i}")
        np.testing.assert_allclose(upper[i], ref["yhat_upper"], rtol=1e-12, err_msg=f"fold {i}")


def test_a_subclass_takes_the_frame_path() -> None:
    sub = type("Tweaked", (MODELS["snaive"],), {})
    assert numeric.kernel_for(MODELS["snaive"]) is not None
    assert numeric.kernel_for(sub) is None


def test_irregular_history_is_left_to_the_frame_path() -> None:
    hist = history(20, end="2026-03-01 23:00").drop(index=[5])
    assert numeric.SeriesArrays.build(hist, FitContext(HOUR, TZ), 24) is None


def test_no_observed_value_before_a_cut_raises_like_the_model() -> None:
    hist = history(20, end="2026-03-01 23:00")
    hist.loc[: 9 * 24, "y"] = np.nan
    arrays = numeric.SeriesArrays.build(hist, FitContext(HOUR, TZ), 24)
    assert arrays is not None
    with pytest.raises(ValueError, match="no observed values"):
        numeric.predict(arrays, numeric.KERNELS[MODELS["snaive"]], [8 * 24], 24)


@pytest.mark.parametrize("case", ["spring-dst-holes-events", "fall-dst-30min"])
def test_pipeline_result_equals_the_frame_path(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    hist, steps, _ = CASES[case]
    series = clean(pd.Series(hist["y"].to_numpy(), index=pd.DatetimeIndex(hist["ds"])), where="test")
    fast = pipeline.run_forecast(series, steps * series.freq)
    for alias in AUTO_CANDIDATES:  # subclasses have no kernel: every candidate refits per fold
        monkeypatch.setitem(MODELS, alias, type(f"Frame_{alias}", (MODELS[alias],), {}))
    slow = pipeline.run_forecast(series, steps * series.freq)
    assert fast.model == slow.model
    pd.testing.assert_frame_equal(fast.frame, slow.frame, rtol=1e-10)
    pd.testing.assert_frame_equal(
        fast.scores.drop(columns="seconds"), slow.scores.drop(columns="seconds"), rtol=1e-10
    )
    assert fast.backtest == pytest.approx(slow.backtest, rel=1e-10)


def test_nanmedian_equals_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(3, 1, (400, 3, 8))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[0, 0] = np.nan  # a row without any value
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(values, axis=-1)
    np.testing.assert_array_equal(numeric._nanmedian(values), expected)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 24, 167, 336])
@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95])
def test_sorted_calibration_equals_the_quantile_one(n: int, level: float) -> None:
    from forecaster.backtest import calibrate_residuals
    from forecaster.folds import _calibration_sorted

    r = np.random.default_rng(n).standard_t(3, n)
    assert _calibration_sorted(np.sort(r), level, 1.25) == calibrate_residuals(r, level, widen=1.25)
