"""Properties of decide() with declared scaling windows and an availability target (hypothesis).

Whatever the forecast, load, state, behaviour and windows: the replicas are never below the largest floor
of the windows in force (capped by maxReplicas), and never above the tightest cap in force except where a
safety floor (the observed need, or the current count while blind) asks for more. Which windows are in
force is worked out here from their occurrences alone, not from the core's timetable. An availability
target never breaks the limits and safety floors either.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.decision import decide, replicas_for
from controller.windows import ScalingWindow, occurrences
from forecaster.artifact import ErrorQuantiles
from tests.controller.core.test_decision_properties import scenarios
from tests.support.builders import T0

DAY_NS = 86_400 * 1_000_000_000


@st.composite
def declared(draw: st.DrawFn) -> dict:
    s = draw(scenarios())
    cfg = s["cfg"]
    windows = []
    for n in range(draw(st.integers(1, 3))):
        ago = draw(st.integers(-3, 240))  # minutes since it opened (negative: opens soon)
        zone = draw(st.sampled_from(["UTC", "Asia/Jakarta", "America/New_York"]))
        opens = (T0 - pd.Timedelta(minutes=ago)).tz_convert(zone)
        weekly = draw(st.booleans())
        start = f"{opens.minute} {opens.hour} * * {(opens.day_of_week + 1) % 7 if weekly else '*'}"
        floor = draw(st.integers(0, cfg.max_replicas) | st.just(0))
        low = max(floor, cfg.min_replicas, 1)
        cap = draw(st.none() | st.integers(low, low + 4))  # often below what the demand needs
        windows.append(ScalingWindow(
            name=f"w{n}", start=start, duration=max(60, ago * 60 + draw(st.integers(-600, 4 * 3600))),
            min_replicas=floor,
            max_replicas=cap, timezone=zone,
        ))
    return {**s, "cfg": cfg.evolve(scaling_windows=tuple(windows))}


def in_force(cfg, now: pd.Timestamp) -> tuple[int, int | None]:  # type: ignore[no-untyped-def]
    """(largest floor, tightest cap never below it) of the windows in force at ``now``, from occurrences."""
    pre = int(cfg.window_td.value)
    floor, caps = 0, []
    for w in cfg.scaling_windows:
        for s, e in occurrences(w.cron, now.value - 2 * DAY_NS, now.value + 2 * DAY_NS):
            if s - pre <= now.value < e:
                floor = max(floor, w.min_replicas)
            if w.max_replicas is not None and s <= now.value < e - pre:
                caps.append(w.max_replicas)
    return floor, (max(min(caps), floor) if caps else None)


def safety(s: dict, d, cfg) -> int:  # type: ignore[no-untyped-def]
    """The most any safety floor (observed need, blind hold) may ask for."""
    ceiling, observed, state = cfg.ceiling, s["observed"], s["state"]
    fresh = observed is not None and T0 - observed.sampled_at <= pd.Timedelta(seconds=float(cfg.load_max_age))
    need = min(replicas_for(observed.rate, cfg.capacity_per_replica, cfg.headroom), ceiling) if fresh else 0
    blind = not fresh or d.forecast_need is None or any(x.reason == "ForecastPartial" for x in d.steps)
    hold = min(state.replicas, ceiling) if blind and state.replicas is not None else 0
    return max(need, hold)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declared())
def test_never_below_a_floor_nor_above_a_cap_outside_the_safety_floors(s: dict) -> None:
    cfg = s["cfg"]
    d = decide(s["forecast"], s["observed"], s["state"], cfg, T0)
    floor, cap = in_force(cfg, T0)
    assert d.replicas >= min(floor, cfg.ceiling), d.explain()
    if cap is not None:
        assert d.replicas <= max(cap, cfg.min_replicas, safety(s, d, cfg)), d.explain()
    assert cfg.min_replicas <= d.replicas <= cfg.ceiling, d.explain()
    assert decide(s["forecast"], s["observed"], s["state"], cfg, T0) == d


TABLE = ErrorQuantiles((0.9, 0.99, 0.999), (0.0, 3600.0), ((0.5, 1.5, 2.5), (1.0, 2.0, 4.0)), (1.0, 0.5),
                       (50, 50), (0.9, 0.98, 0.99))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declared(), st.floats(0.5, 0.999))
def test_an_availability_target_keeps_the_limits_and_the_safety_floors(s: dict, target: float) -> None:
    cfg = s["cfg"].evolve(availability_target=target)
    forecast = s["forecast"]
    if forecast is not None:
        forecast = dataclasses.replace(forecast, error_quantiles=TABLE)
    d = decide(forecast, s["observed"], s["state"], cfg, T0)
    floor, _ = in_force(cfg, T0)
    assert cfg.min_replicas <= d.replicas <= cfg.ceiling, d.explain()
    assert d.replicas >= min(floor, cfg.ceiling) and d.replicas >= safety(s, d, cfg), d.explain()
    if d.mode == "predictive":
        assert any(x.reason == "AvailabilityTarget" for x in d.steps), d.explain()
