"""Properties of decide() over random forecasts, loads, states and configs (hypothesis).

Whatever the inputs: replicas stay within [minReplicas, maxReplicas] (maxReplicas + burstBuffer in exceed
mode); never below what a fresh observed load needs (capped by that ceiling); never below the current count
while blind; and the same inputs always give the same decision.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.config import BehaviorConfig, ScalingPolicy, ScalingRules
from controller.core.decision import decide, replicas_for
from controller.core.state import ControllerState
from controller.ports import ObservedLoad
from tests.support.builders import T0, artifact, config

rates = st.floats(min_value=0.0, max_value=20_000.0, allow_nan=False, allow_infinity=False)
policies = st.lists(
    st.builds(ScalingPolicy, st.sampled_from(["Pods", "Percent"]), st.integers(1, 200), st.integers(1, 600)),
    min_size=1, max_size=3,
).map(tuple)
rules = st.builds(ScalingRules, policies, st.sampled_from(["Max", "Min", "Disabled"]), st.integers(0, 900))


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    lo = draw(st.integers(0, 10))
    hi = draw(st.integers(max(lo, 1), 60))
    exceed = draw(st.booleans())
    cfg = config(
        capacity_per_replica=draw(st.floats(1.0, 500.0)),
        headroom=draw(st.floats(0.0, 1.0)),
        min_replicas=lo,
        max_replicas=hi,
        tolerance=draw(st.floats(0.0, 0.5)),
        max_capacity="exceed" if exceed else "honour",
        burst_buffer=draw(st.integers(0, 10)),
        behavior=BehaviorConfig(scale_up=draw(rules), scale_down=draw(rules)),
    )
    step = draw(st.sampled_from([60, 300, 3600]))
    peaks = draw(st.lists(rates, min_size=1, max_size=24))
    start = T0 + pd.Timedelta(seconds=draw(st.integers(-7200, 600)))
    age = pd.Timedelta(seconds=draw(st.integers(0, 6 * 3600)))
    forecast = draw(st.none() | st.just(artifact(peaks, step=step, start=start, created=T0 - age)))
    load_age = draw(st.integers(0, 600))
    observed = draw(st.none() | st.builds(ObservedLoad, rates, st.just(T0 - pd.Timedelta(seconds=load_age))))
    history = draw(st.lists(st.tuples(st.integers(-900, 0), st.integers(0, 80)), max_size=6))
    events = draw(st.lists(st.tuples(st.integers(-900, 0), st.integers(-20, 20)), max_size=4))
    state = ControllerState(
        replicas=draw(st.none() | st.integers(0, 80)),
        recommendations=tuple(sorted((T0 + pd.Timedelta(seconds=s), n) for s, n in history)),
        scale_events=tuple(sorted((T0 + pd.Timedelta(seconds=s), n) for s, n in events if n)),
    )
    return {"cfg": cfg, "forecast": forecast, "observed": observed, "state": state}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_replicas_stay_within_limits_and_cover_the_observed_load(s: dict) -> None:
    cfg, state, observed = s["cfg"], s["state"], s["observed"]
    d = decide(s["forecast"], observed, state, cfg, T0)
    ceiling = cfg.max_replicas + (cfg.burst_buffer if cfg.max_capacity == "exceed" else 0)
    assert cfg.min_replicas <= d.replicas <= ceiling, d.explain()
    fresh = observed is not None and T0 - observed.sampled_at <= pd.Timedelta(seconds=float(cfg.load_max_age))
    if fresh:
        need = replicas_for(observed.rate, cfg.capacity_per_replica, cfg.headroom)
        assert d.replicas >= min(need, ceiling), d.explain()
    blind = not fresh or d.forecast_need is None or any(x.reason == "ForecastPartial" for x in d.steps)
    if blind and state.replicas is not None:
        assert d.replicas >= min(state.replicas, ceiling), d.explain()
    assert d.state.replicas == d.replicas
    assert decide(s["forecast"], observed, state, cfg, T0) == d
    setters = [x for x in d.steps if x.replicas is not None]
    assert setters[-1].replicas == d.replicas and all(x.message for x in d.steps)
