"""run_forecast end to end on synthetic histories: contract, selection, fallback, calibration notes, peaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forecaster.pipeline as pipeline
from forecaster.artifact import ForecastArtifact
from forecaster.errors import UserError
from forecaster.models import MODELS
from forecaster.models.base import FitContext
from forecaster.models.common import future_index, make_frame
from forecaster.pipeline import run_forecast, to_artifact
from forecaster.series.cleaning import clean

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


def raw_series(
    days: int,
    *,
    freq: str = "h",
    tz: str = "UTC",
    noise: float = 0.05,
    seed: int = 3,
    end: str = "2026-03-20 23:00",
) -> pd.Series:
    step = pd.Timedelta(freq if freq != "h" else "1h")
    idx = pd.date_range(end=pd.Timestamp(end, tz=tz), periods=int(days * DAY / step), freq=step, name="ds")
    local = idx.tz_convert(tz)
    y = 200 + 150 * np.sin(2 * np.pi * (local.hour - 6) / 24) ** 2 + 50 * (local.day_of_week >= 5)
    y = y * np.random.default_rng(seed).lognormal(0, noise, len(idx))
    return pd.Series(y, index=idx, name="y")


class _Calendar:
    def __init__(self, events: pd.DataFrame) -> None:
        self._events = events

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        e = self._events
        return e[(e["start"] < end) & (e["end"] > start)].reset_index(drop=True)


def test_forecast_contract_and_artifact() -> None:
    series = clean(raw_series(28), where="test")
    res = run_forecast(series, pd.Timedelta(hours=24))
    f = res.frame
    assert list(f.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper", "peak_upper"]
    assert len(f) == 24 and f["ds"].iloc[0] == series.y.index[-1] + HOUR
    assert np.isfinite(f[["yhat", "yhat_lower", "yhat_upper", "peak_upper"]].to_numpy()).all()
    assert (f["yhat_lower"] <= f["yhat"]).all() and (f["yhat"] <= f["yhat_upper"]).all()
    assert (f["peak_upper"] == f["yhat_upper"]).all()  # no finer history than the output
    assert res.backtest is not None and res.backtest["folds"] == pipeline.DEFAULT_FOLDS
    assert res.backtest["wape"] < 0.15
    assert set(res.scores.index) == set(pipeline.AUTO_CANDIDATES)
    art = to_artifact(res, created_at=pd.Timestamp("2026-03-21", tz="UTC"), source="test", series=series)
    again = ForecastArtifact.from_json(art.to_json())
    assert len(again.intervals) == 24 and again.model == res.model


def test_output_freq_coarser_than_history_and_peak_ratio() -> None:
    raw = raw_series(21, freq="30min", noise=0.0)
    raw.iloc[1::2] *= 1.5  # every second half hour is a burst: peak/mean = 1.5 / 1.25 = 1.2
    series = clean(raw, where="test")
    res = run_forecast(series, pd.Timedelta(hours=12), freq=HOUR)
    f = res.frame
    assert len(f) == 12 and res.freq == HOUR
    np.testing.assert_allclose(f["peak_upper"] / f["yhat_upper"], 1.2, rtol=1e-6)


def test_unknown_model_lists_aliases() -> None:
    series = clean(raw_series(10), where="test")
    with pytest.raises(UserError, match=r"available: auto, .*snaive"):
        run_forecast(series, DAY, model="nope")


@pytest.mark.parametrize(
    ("horizon", "freq", "band"),
    [(pd.Timedelta(minutes=30), HOUR, 0.9), (DAY, pd.Timedelta(minutes=90), 0.9), (DAY, HOUR, 1.2)],
    ids=["horizon-shorter-than-interval", "freq-not-a-multiple", "band-level-out-of-range"],
)
def test_bad_arguments_are_user_errors(horizon: pd.Timedelta, freq: pd.Timedelta, band: float) -> None:
    series = clean(raw_series(10), where="test")
    with pytest.raises(UserError):
        run_forecast(series, horizon, freq=freq, band_level=band)


class _Broken:
    alias = "broken"

    def fit(self, history: pd.DataFrame, ctx: FitContext) -> _Broken:
        self.last, self.freq = history["ds"].iloc[-1], ctx.freq
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        raise RuntimeError("solver diverged")


class _NonFinite(_Broken):
    alias = "nonfinite"

    def predict(self, horizon: int) -> pd.DataFrame:
        return make_frame(future_index(self.last, self.freq, horizon), np.full(horizon, np.nan))


@pytest.mark.parametrize("bad", [_Broken, _NonFinite], ids=["raises", "non-finite"])
def test_failing_model_falls_back_with_a_note(monkeypatch: pytest.MonkeyPatch, bad: type[_Broken]) -> None:
    monkeypatch.setitem(MODELS, bad.alias, bad)
    series = clean(raw_series(21), where="test")
    res = run_forecast(series, DAY, model=bad.alias)
    assert res.model == pipeline.FALLBACK_CHAIN[0]
    codes = [n.code for n in res.notes]
    assert "model_failed" in codes and "fallback" in codes
    assert np.isfinite(res.frame["yhat"]).all()


def test_auto_skips_a_failing_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "broken", _Broken)
    monkeypatch.setattr(pipeline, "AUTO_CANDIDATES", ("broken", "snaive", "seasonal_median"))
    res = run_forecast(clean(raw_series(21), where="test"), DAY)
    assert "broken" not in res.members and "broken" not in res.scores.index
    assert any(n.code == "model_failed" and "broken" in n.message for n in res.notes)


def test_selection_picks_the_model_the_series_favours(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = raw_series(56, noise=0.0)
    raw[raw.index >= raw.index[-1] - pd.Timedelta(days=15)] *= 3.0  # a lasting level shift 15 days ago
    monkeypatch.setattr(pipeline, "AUTO_CANDIDATES", ("seasonal_median", "snaive"))
    res = run_forecast(clean(raw, where="test"), DAY, folds=6)
    assert res.model == "snaive"  # last week already has the new level; an 8-week median does not
    assert res.scores.loc["snaive", "wape"] < res.scores.loc["seasonal_median", "wape"]


def test_short_history_and_few_folds_widen_the_band_with_notes() -> None:
    series = clean(raw_series(9), where="test")
    res = run_forecast(series, DAY)
    codes = {n.code for n in res.notes}
    assert {"short_history_band", "few_folds"} <= codes
    assert (res.frame["yhat_upper"] > res.frame["yhat"]).any()


def test_events_in_horizon_are_listed_and_promotions_lift_the_forecast() -> None:
    series = clean(raw_series(28, noise=0.0), where="test")
    start = series.y.index[-1] + HOUR
    events = pd.DataFrame(
        {
            "name": ["Flash sale", "Old"],
            "kind": ["promotion", "holiday"],
            "start": [start + 6 * HOUR, start - 20 * DAY],
            "end": [start + 10 * HOUR, start - 19 * DAY],
            "uplift": [2.0, np.nan],
        }
    )
    plain = run_forecast(series, DAY, model="snaive")
    lifted = run_forecast(series, DAY, model="snaive", calendar=_Calendar(events))
    assert lifted.events["name"].tolist() == ["Flash sale"]
    ratio = lifted.frame["yhat"].to_numpy() / plain.frame["yhat"].to_numpy()
    np.testing.assert_allclose(ratio[6:10], 2.0)
    np.testing.assert_allclose(ratio[:6], 1.0)


def test_candidates_replace_the_auto_set_and_are_validated() -> None:
    series = clean(raw_series(21), where="test")
    res = run_forecast(series, DAY, candidates=["snaive", "seasonal_median"])
    assert set(res.scores.index) == {"snaive", "seasonal_median"}
    with pytest.raises(UserError, match="--candidates: unknown model 'nope'"):
        run_forecast(series, DAY, candidates=["nope"])
