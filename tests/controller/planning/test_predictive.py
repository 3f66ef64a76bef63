"""Tests of the predictive policy: the real decide() replayed with forecasts made only from earlier data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from controller.config import ControllerConfig, WarmupConfig
from controller.planning.policies import OraclePolicy, ReactivePolicy
from controller.planning.predictive import PredictivePolicy
from controller.planning.refits import history_before
from controller.planning.simulate import SimParams, make_trace, simulate
from forecaster.artifact import ForecastArtifact, Interval

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-11-02T00:00:00Z")


def daily_wave(days: int, step_min: int = 10, base: float = 100.0, amp: float = 80.0) -> pd.Series:
    idx = pd.date_range(T0, periods=days * 24 * 60 // step_min, freq=f"{step_min}min")
    hours = idx.hour + idx.minute / 60
    return pd.Series(base + amp * (hours >= 8) * (hours < 20), index=idx, dtype=float)


class DayAgoForecaster:
    """Forecast = the same time one day earlier (from the history it is given); records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def __call__(
        self, history: pd.Series, origin: pd.Timestamp, horizon: pd.Timedelta
    ) -> ForecastArtifact | None:
        self.seen.append((origin, history.index.max()))
        if len(history) < 2:
            return None
        step = history.index[1] - history.index[0]
        ds = pd.date_range(origin, origin + horizon, freq=step, inclusive="left")
        prev = history.reindex(ds - DAY).ffill().fillna(float(history.iloc[-1])).to_numpy()
        ivs = tuple(Interval(d, v, 0.95 * v, 1.05 * v, 1.1 * v) for d, v in zip(ds, prev, strict=True))
        return ForecastArtifact(
            created_at=origin,
            model="day_ago",
            timezone="UTC",
            interval_seconds=int(step.total_seconds()),
            band_level=0.9,
            history_start=history.index[0],
            history_end=history.index[-1],
            history_points=len(history),
            source="test",
            horizon_seconds=int(horizon.total_seconds()),
            intervals=ivs,
        )


PARAMS = SimParams(capacity_per_replica=10, min_replicas=2, max_replicas=40, price_per_replica_hour=1.0)
CONFIG = ControllerConfig(capacity_per_replica=10, headroom=0.1, interval=60)


def run_predictive(
    history: pd.Series, start: pd.Timestamp, refit: pd.Timedelta = DAY, config: ControllerConfig = CONFIG
):
    fc = DayAgoForecaster()
    policy = PredictivePolicy(config=config, history=history, forecaster=fc, refit=refit)
    trace = make_trace(history[history.index >= start])
    return simulate(trace, policy, PARAMS), fc, policy


def test_forecasts_only_see_earlier_data() -> None:
    hist = daily_wave(4)
    _, fc, policy = run_predictive(hist, T0 + 2 * DAY, refit=pd.Timedelta(hours=6))
    assert len(fc.seen) == 8 and [o for o, _ in fc.seen] == policy.origins
    for origin, last in fc.seen:
        assert last + pd.Timedelta(minutes=10) <= origin  # complete intervals before the refit time only


def test_perturbing_the_future_does_not_change_earlier_decisions() -> None:
    hist = daily_wave(4)
    cut = T0 + pd.Timedelta(days=3, hours=5)
    changed = hist.copy()
    changed[changed.index >= cut] *= 3.0
    a, _, _ = run_predictive(hist, T0 + 2 * DAY, refit=pd.Timedelta(hours=6))
    b, _, _ = run_predictive(changed, T0 + 2 * DAY, refit=pd.Timedelta(hours=6))
    before = a.trace.times < cut
    assert np.array_equal(a.requested[before], b.requested[before])
    assert not np.array_equal(a.requested, b.requested)  # the perturbation is visible after the cut


def test_history_before_drops_incomplete_intervals() -> None:
    hist = daily_wave(1)
    cut = T0 + pd.Timedelta(minutes=25)
    assert history_before(hist, cut).index.max() == T0 + pd.Timedelta(minutes=10)


def test_good_forecast_beats_reactive_and_stays_near_oracle() -> None:
    hist = daily_wave(4)
    res, _, _ = run_predictive(hist, T0 + 2 * DAY)
    trace = res.trace
    reactive = simulate(trace, ReactivePolicy(), PARAMS)
    oracle = simulate(trace, OraclePolicy(), PARAMS)
    assert res.metrics.short_time_share == 0.0  # the ramp is forecast and replicas are ready before it
    assert reactive.metrics.short_time_share > 0.0
    assert res.metrics.replica_hours <= 1.5 * oracle.metrics.replica_hours
    assert res.notes and "forecastMaxAge" in res.notes[0]


def test_without_forecasts_decide_falls_back_to_reactive() -> None:
    hist = daily_wave(3)

    def never(history: pd.Series, origin: pd.Timestamp, horizon: pd.Timedelta) -> ForecastArtifact | None:
        return None

    policy = PredictivePolicy(config=CONFIG, history=hist, forecaster=never)
    res = simulate(make_trace(hist[hist.index >= T0 + DAY]), policy, PARAMS)
    assert res.requested.max() >= 19  # 180 req/s * 1.1 / 10 -> 20 (observed floor), reached reactively
    assert any("refits failed" in n for n in res.notes)


@pytest.mark.parametrize("enabled", [True, False], ids=["warmups-on", "warmups-off"])
def test_warmups_recorded(enabled: bool) -> None:
    warm = WarmupConfig(enabled=enabled, url="http://warm.invalid/warm" if enabled else None, lead=600)
    cfg = ControllerConfig(capacity_per_replica=10, interval=60, warmup=warm)
    res, _, _ = run_predictive(daily_wave(4), T0 + 2 * DAY, config=cfg)
    if enabled:
        assert res.metrics.warmups_issued >= 2
        assert res.metrics.warmups_before_ramp >= 2  # the 08:00 ramp on both days, warmed 10 min ahead
    else:
        assert res.metrics.warmups_issued == 0


def test_blocks_of_ticks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay builds timestamps and observed rates a block of ticks at a time; any block size (here
    blocks that end between refits and between decision ticks) gives the same run."""
    from controller.planning import predictive

    rate = daily_wave(5)
    trace = make_trace(rate[rate.index >= T0 + 2 * DAY], step=pd.Timedelta(seconds=30))

    def replay() -> tuple[list[int], int]:
        policy = PredictivePolicy(config=CONFIG, history=rate, forecaster=DayAgoForecaster(),
                                  refit=pd.Timedelta(hours=7))
        res = simulate(trace, policy, PARAMS)
        return res.requested.tolist(), len(res.warmups)

    whole = replay()
    monkeypatch.setattr(predictive, "TICK_BLOCK", 7)
    assert replay() == whole
