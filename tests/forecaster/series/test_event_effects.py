"""Learned calendar-day effects: applied when the history shows them consistently, not from a coincidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.pipeline import run_forecast
from forecaster.series.calendar import CalendarConfig, EventCalendar
from forecaster.series.cleaning import clean
from forecaster.series.event_effects import apply_effects, learn_effects

START, END = pd.Timestamp("2026-08-04", tz="UTC"), pd.Timestamp("2026-11-01", tz="UTC")


def series(month_start_factor: float, noise: float = 0.02, seed: int = 1) -> pd.Series:
    idx = pd.date_range(START, END, freq="1h", inclusive="left")
    hour = np.asarray(idx.hour)
    base = 1000 + 800 * np.sin((hour - 6) / 24 * 2 * np.pi).clip(0) - 200 * np.asarray(idx.day_of_week >= 5)
    factor = np.where(np.asarray(idx.day) == 1, month_start_factor, 1.0)
    rng = np.random.default_rng(seed)
    y = base * factor * (1 + noise * rng.standard_normal(len(idx)))
    return pd.Series(y, index=idx, name="y").rename_axis("ds")


def truth_next_day(month_start_factor: float) -> np.ndarray:
    idx = pd.date_range(END, periods=24, freq="1h")
    hour = np.asarray(idx.hour)
    base = 1000 + 800 * np.sin((hour - 6) / 24 * 2 * np.pi).clip(0) - 200 * np.asarray(idx.day_of_week >= 5)
    return base * month_start_factor


def calendar() -> EventCalendar:
    return EventCalendar(CalendarConfig(month_start=True), "UTC")


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.abs(actual - forecast).sum() / actual.sum())


@pytest.mark.parametrize("factor", [1.4, 0.7], ids=["month-start-peak", "month-start-dip"])
def test_a_consistent_month_start_effect_is_learned_and_applied(factor: float) -> None:
    s = clean(series(factor), where="synthetic")
    with_cal = run_forecast(s, pd.Timedelta("24h"), model="seasonal_median", calendar=calendar())
    without = run_forecast(s, pd.Timedelta("24h"), model="seasonal_median")
    truth = truth_next_day(factor)
    assert wape(truth, with_cal.frame["yhat"].to_numpy()) < 0.06
    assert wape(truth, without.frame["yhat"].to_numpy()) > 0.15  # the weekly profile alone misses it
    notes = [n.message for n in with_cal.notes if n.code == "event_effect"]
    assert len(notes) == 1 and "month_start days run x" in notes[0]
    month_start = with_cal.events[with_cal.events["kind"] == "month_start"]
    assert month_start["uplift"].iloc[0] == pytest.approx(factor, rel=0.05)


def test_no_effect_without_one_in_history() -> None:
    s = clean(series(1.0), where="synthetic")
    result = run_forecast(s, pd.Timedelta("24h"), model="seasonal_median", calendar=calendar())
    assert not [n for n in result.notes if n.code == "event_effect"]
    assert result.events["uplift"].isna().all()


def _history(values: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    idx = pd.date_range("2026-08-02", "2026-10-31", freq="1D", tz="UTC")  # month starts: Sep 1, Oct 1
    y = pd.Series(100.0, index=idx)
    for day, v in values.items():
        y[pd.Timestamp(day, tz="UTC")] = v
    events = calendar().events(idx[0], idx[-1] + pd.Timedelta("1D"))
    return pd.DataFrame({"ds": idx, "y": y.to_numpy()}), events


@pytest.mark.parametrize(
    ("days", "learned"),
    [
        ({"2026-09-01": 150.0, "2026-10-01": 140.0}, True),
        ({"2026-09-01": 150.0, "2026-10-01": 70.0}, False),
        ({"2026-09-01": 104.0, "2026-10-01": 105.0}, False),
    ],
    ids=["agree", "disagree", "too-small"],
)
def test_effects_need_agreeing_evidence(days: dict[str, float], learned: bool) -> None:
    history, events = _history(days)
    effects = learn_effects(history, events)
    assert bool(effects) == learned
    if learned:
        assert effects[0].factor == pytest.approx(1.45)


def test_apply_scales_only_the_event_intervals() -> None:
    history, events = _history({"2026-09-01": 150.0, "2026-10-01": 150.0})
    effects = learn_effects(history, events)
    idx = pd.date_range("2026-10-31", periods=3, freq="1D", tz="UTC")
    frame = pd.DataFrame({"ds": idx, "yhat": 100.0, "yhat_lower": 90.0, "yhat_upper": 110.0})
    horizon = EventCalendar(CalendarConfig(month_start=True), "UTC").events(idx[0], idx[-1])
    out, evs, touched = apply_effects(frame, horizon, effects)
    assert out["yhat"].tolist() == [100.0, 150.0, 100.0]
    assert out["yhat_upper"].tolist() == [110.0, 165.0, 110.0]
    assert touched == {"month_start": 1}
    assert evs["uplift"].tolist() == [1.5]
