"""Tests of the replay's refits: fitted ahead on worker processes, shared between policies, same results."""

from __future__ import annotations

import pandas as pd
import pytest

from controller.config import ControllerConfig
from controller.planning.policies import CronPolicy, OraclePolicy, ReactivePolicy
from controller.planning.predictive import PredictivePolicy
from controller.planning.refits import (
    FitAhead,
    PipelineForecaster,
    history_before,
    pipeline_forecaster,
    shared,
)
from controller.planning.replay import replay_all
from controller.planning.simulate import SimParams, make_trace, simulate
from forecaster.engine import ProcessPoolEngine

T0 = pd.Timestamp("2026-11-02T00:00:00Z")
DAY = pd.Timedelta(days=1)


def weekly(days: int) -> pd.Series:
    idx = pd.date_range(T0, periods=days * 24, freq="h")
    hours = idx.hour.to_numpy()
    return pd.Series(20.0 + 15.0 * ((hours >= 8) & (hours < 22)) + 5.0 * (idx.day_of_week.to_numpy() < 5),
                     index=idx)


PARAMS = SimParams(capacity_per_replica=5, min_replicas=2, max_replicas=30)
CONFIG = ControllerConfig(capacity_per_replica=5, interval=60)


@pytest.fixture(scope="module")
def pool():
    engine = ProcessPoolEngine(2)
    yield engine
    engine.close()


class Counting:
    """A forecaster that counts its calls (in this process) and delegates to the real pipeline."""

    def __init__(self, fit: PipelineForecaster) -> None:
        self.fit, self.calls = fit, 0

    def __call__(self, history, origin, horizon):
        self.calls += 1
        return self.fit(history, origin, horizon)


def test_fit_ahead_gives_the_same_forecasts_as_fitting_here(pool) -> None:
    rate = weekly(24)
    fit = pipeline_forecaster("seasonal_median", "UTC")
    origins = [T0 + (14 + i) * DAY for i in range(6)]
    horizon = pd.Timedelta(hours=27)
    ahead = FitAhead(fit, pool)
    ahead.plan(rate, origins, horizon)
    for origin in origins:
        got = ahead(history_before(rate, origin), origin, horizon)
        want = fit(history_before(rate, origin), origin, horizon)
        assert got is not None and want is not None
        assert got.to_dict() == want.to_dict()
    assert not ahead._done and not ahead._planned  # handed out and forgotten: nothing kept
    # an origin that was not planned is fitted here
    extra = T0 + 21 * DAY
    assert ahead(history_before(rate, extra), extra, horizon).to_dict() == fit(
        history_before(rate, extra), extra, horizon).to_dict()


def test_replay_with_workers_equals_the_replay_here(pool) -> None:
    """Predictive (refits ahead on the pool) and the baselines (replayed on the pool) give exactly the
    results of everything in this process, in the order asked."""
    rate = weekly(21)
    trace = make_trace(rate[rate.index >= T0 + 14 * DAY])
    fit = pipeline_forecaster("seasonal_median", "UTC")

    def policies(forecaster):
        return [
            PredictivePolicy(config=CONFIG, history=rate, forecaster=forecaster),
            ReactivePolicy(),
            CronPolicy(fixed=6),
            OraclePolicy(),
        ]

    here, _ = replay_all(trace, policies(shared(fit)), PARAMS)
    counting = Counting(fit)
    away, seconds = replay_all(trace, policies(shared(FitAhead(fit, pool))), PARAMS, pool=pool)
    assert [r.policy for r in away] == ["predictive", "reactive", "cron", "oracle"] == list(seconds)
    for a, b in zip(here, away, strict=True):
        assert a.metrics == b.metrics
        assert (a.requested == b.requested).all() and (a.ready == b.ready).all()
        assert b.trace is trace
    # the in-process forecaster is not called when the refits come from the pool
    ahead = FitAhead(counting, pool)
    simulate(trace, PredictivePolicy(config=CONFIG, history=rate, forecaster=ahead), PARAMS)
    assert counting.calls == 0
