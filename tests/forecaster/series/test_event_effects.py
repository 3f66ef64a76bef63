"""Learned calendar-day effects: applied when the history shows them consistently, not from a coincidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.pipeline import run_forecast
from forecaster.series.calendar import CalendarConfig, EventCalendar
from forecaster.series.cleaning import clean
from forecaster.series.event_effects import NEIGHBOUR_DAYS, _event_ratios, apply_effects, learn_effects

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


def holiday_series(dip: float, *, end: str = "2026-12-24") -> pd.Series:
    """Hourly traffic where the listed holidays run at ``dip`` times an ordinary day."""
    idx = pd.date_range("2026-09-20", end, freq="1h", inclusive="left", tz="UTC")
    hour = np.asarray(idx.hour)
    base = 1000 + 800 * np.sin((hour - 6) / 24 * 2 * np.pi).clip(0)
    days = pd.DatetimeIndex(idx.normalize().tz_localize(None))
    us = {pd.Timestamp(d) for d in ("2026-10-12", "2026-11-11", "2026-11-26")}
    factor = np.where(np.isin(days, list(us)), dip, 1.0)
    noise = 1 + 0.02 * np.random.default_rng(3).standard_normal(len(idx))
    return pd.Series(base * factor * noise, index=idx.rename("ds"), name="y")


def test_a_holiday_is_forecast_from_how_the_series_behaved_on_other_holidays() -> None:
    cal = EventCalendar(CalendarConfig(country="US", month_start=False), "UTC")
    s = clean(holiday_series(0.5), where="synthetic")  # history ends 2026-12-23
    res = run_forecast(s, pd.Timedelta("48h"), model="seasonal_median", calendar=cal)
    christmas = res.frame[pd.DatetimeIndex(res.frame["ds"]).day == 25]["yhat"].to_numpy()
    ordinary = res.frame[pd.DatetimeIndex(res.frame["ds"]).day == 24]["yhat"].to_numpy()
    # Three past holidays at x0.5, shrunk by 3 / (3 + 3): x0.75.
    assert christmas.sum() / ordinary.sum() == pytest.approx(0.75, rel=0.05)
    notes = [n.message for n in res.notes if n.code == "event_effect"]
    assert len(notes) == 1 and "holiday Christmas Day: x0.7" in notes[0] and "3 other holiday(s)" in notes[0]
    ev = res.events[res.events["kind"] == "holiday"]
    assert ev["uplift"].iloc[0] == pytest.approx(0.75, rel=0.05)


def test_a_past_occurrence_of_the_same_holiday_is_the_stronger_evidence() -> None:
    from forecaster.series.event_effects import holiday_effects

    y = holiday_series(0.5)
    events = EventCalendar(CalendarConfig(country="US", month_start=False), "UTC").events(
        y.index[0], y.index[-1] + pd.Timedelta(days=400)
    )
    ahead = events[(events["name"] == "Veterans Day") & (events["start"] > y.index[-1])].iloc[:1]
    past = events[events["start"] <= y.index[-1]]
    effects = holiday_effects(y, y.where(y > 0), pd.concat([past, ahead]))
    (veterans,) = effects
    assert veterans.name == "Veterans Day" and veterans.ratios == pytest.approx((0.5,), rel=0.05)
    assert veterans.factor == pytest.approx(0.75, rel=0.05)  # one occurrence, shrunk by 1 / (1 + 1)


def test_no_holiday_effect_without_evidence() -> None:
    cal = EventCalendar(CalendarConfig(country="US", month_start=False), "UTC")
    s = clean(holiday_series(1.0), where="synthetic")
    res = run_forecast(s, pd.Timedelta("48h"), model="seasonal_median", calendar=cal)
    assert not [n for n in res.notes if n.code == "event_effect"]


def _ratios_one_event_at_a_time(y: pd.Series, calm: pd.Series, past: pd.DataFrame) -> list[float | None]:
    """The definition, spelled out per event and per stamp (the module computes all events at once)."""
    out: list[float | None] = []
    for start, end in zip(past["start"], past["end"], strict=True):
        actual = y[(y.index >= start) & (y.index < end)]
        refs = []
        for k in NEIGHBOUR_DAYS:
            row = []
            for t in actual.index:
                try:
                    target = (t.tz_localize(None) + pd.Timedelta(days=k)).tz_localize(t.tz)
                except ValueError:  # a DST change: that local time does not exist or is ambiguous
                    row.append(np.nan)
                    continue
                row.append(calm.get(target, np.nan))
            refs.append(row)
        ref_rows = np.asarray(refs, dtype=float).reshape(len(NEIGHBOUR_DAYS), len(actual))
        ref = np.array([np.nanmedian(c) if np.isfinite(c).any() else np.nan for c in ref_rows.T])
        a = actual.to_numpy(dtype=float)
        ok = np.isfinite(a) & np.isfinite(ref)
        good = ok.sum() >= max(1, len(a) // 2) and ref[ok].sum() > 0
        out.append(float(a[ok].sum() / ref[ok].sum()) if good else None)
    return out


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney"])
def test_event_ratios_match_the_per_event_definition(tz: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(6):
        start = pd.Timestamp("2025-01-01", tz=tz) + pd.Timedelta(days=int(rng.integers(0, 365)))
        idx = pd.date_range(start, periods=int(rng.integers(24 * 30, 24 * 90)), freq="1h", name="ds")
        y = pd.Series(rng.lognormal(3, 0.3, len(idx)), index=idx)
        y[rng.random(len(y)) < 0.05] = np.nan
        cfg = CalendarConfig(country="US", month_start=True, paydays=[int(rng.integers(1, 32))])
        events = EventCalendar(cfg, tz).events(idx[0], idx[-1])
        calm = y.where(y > np.nanquantile(y, 0.1))
        got = _event_ratios(y, calm, events)
        want = _ratios_one_event_at_a_time(y, calm, events)
        assert len(got) == len(want) == len(events)
        for g, w in zip(got, want, strict=True):
            assert (g is None and w is None) or g == pytest.approx(w, rel=1e-12)


def test_a_neighbour_day_across_a_dst_change_does_not_stop_the_forecast() -> None:
    """March 1st, 2026 + 7 days is the local 02:00 that New York skips: that neighbour is left out."""
    idx = pd.date_range("2026-01-10", "2026-03-20", freq="1h", inclusive="left", tz="America/New_York")
    hour = np.asarray(idx.hour)
    base = 1000 + 800 * np.sin((hour - 6) / 24 * 2 * np.pi).clip(0)
    y = pd.Series(base * np.where(np.asarray(idx.day) == 1, 1.5, 1.0), index=idx.rename("ds"), name="y")
    cal = EventCalendar(CalendarConfig(month_start=True), "America/New_York")
    events = cal.events(idx[0], idx[-1] + pd.Timedelta(days=1))
    march_1st = events[events["start"] == pd.Timestamp("2026-03-01", tz="America/New_York")]
    (ratio,) = _event_ratios(y, y, march_1st)
    assert ratio == pytest.approx(1.5)
    (effect,) = learn_effects(pd.DataFrame({"ds": idx, "y": y.to_numpy()}), events)
    assert effect.kind == "month_start" and effect.ratios == pytest.approx((1.5, 1.5))
    history = clean(y, where="synthetic")
    res = run_forecast(history, pd.Timedelta("24h"), model="seasonal_median", calendar=cal)
    assert len(res.frame) == 24
