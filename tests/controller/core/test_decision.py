"""Table-driven tests of decide(): every rule, every safety rule, frozen time."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from controller.config import BehaviorConfig, ScalingPolicy, ScalingRules
from controller.core.decision import Decision, Step, decide, replicas_for
from controller.core.level import Level
from controller.core.state import ControllerState
from controller.ports import ObservedLoad
from forecaster.artifact import ForecastArtifact
from tests.support.builders import T0, artifact, at, config

FLAT_1000 = artifact([1000.0] * 12)  # peak_upper 1000, mean 833 req/s: the band (10) needs more than 833 +10%
NARROW_1000 = artifact([1000.0] * 12, yhat=[950.0] * 12)  # mean 950 +10% needs 11, more than the band (10)


def obs(rate: float, age_s: float = 0.0) -> ObservedLoad:
    return ObservedLoad(rate=rate, sampled_at=T0 - pd.Timedelta(seconds=age_s))


def slow_down(pods: int = 1, period: int = 60, window: int = 0) -> BehaviorConfig:
    return BehaviorConfig(scale_down=ScalingRules((ScalingPolicy("Pods", pods, period),), "Max", window))


@dataclass(frozen=True)
class Case:
    id: str
    forecast: ForecastArtifact | None
    observed: ObservedLoad | None
    current: int | None
    want: int
    reason: str
    cfg: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    steps: tuple[str, ...] = ()  # reason codes that must appear among the steps
    mode: str | None = None


CASES = [
    Case("headroom-on-the-mean", NARROW_1000, obs(800), 11, 11, "Headroom",
         steps=("ForecastPeak", "Headroom"), mode="predictive"),
    Case("headroom-not-stacked-on-the-band", FLAT_1000, obs(800), 10, 10, "ForecastPeak", mode="predictive"),
    Case("no-headroom", FLAT_1000, obs(800), 10, 10, "ForecastPeak", cfg={"headroom": 0.0}),
    # now=10:00, lead 90 s + interval 30 s -> the window ends 10:02: the 10:00 interval only.
    Case("peak-inside-window", artifact([1000.0, 3000.0], yhat=[950.0, 2850.0]), obs(800), 11, 11,
         "Headroom"),
    Case("peak-inside-lead-blocks-scale-down", artifact([100.0, 2000.0], step=60, yhat=[90.0, 1900.0]),
         obs(100), 21, 21, "Headroom", steps=("ForecastPeak",)),
    # one scale-up step (11 -> 22) reaches the 10:02 peak from the next tick on: no need to move yet.
    Case("peak-after-window-not-yet",
         artifact([1000.0, 1000.0, 2000.0], step=60, yhat=[950.0, 950.0, 1900.0]), obs(800), 11, 11,
         "Headroom"),
    # 11 -> 33 takes two steps; the last useful tick for 10:02 is 10:00:30: start climbing now.
    Case("peak-after-window-anticipated", artifact([1000.0, 1000.0, 3000.0], step=60), obs(800), 11, 22,
         "ScaleUpLimit", steps=("RampAnticipation",)),
    Case("min-replicas", artifact([50.0] * 12), obs(40), 3, 3, "TooFewReplicas", cfg={"min_replicas": 3}),
    Case("max-honour", artifact([9000.0] * 12), obs(800), 20, 20, "MaxCapacityExceeded",
         cfg={"max_replicas": 20}, steps=("MaxCapacityExceeded",)),
    Case("max-exceed-with-buffer", artifact([9000.0] * 12), obs(800), 25, 25, "MaxCapacityExceeded",
         cfg={"max_replicas": 20, "max_capacity": "exceed", "burst_buffer": 5}),
    Case("max-exceed-within-buffer", artifact([2250.0] * 12), obs(800), 25, 25, "MaxCapacityExceeded",
         cfg={"max_replicas": 20, "max_capacity": "exceed", "burst_buffer": 10}),
    Case("scale-up-limit-hpa-default", FLAT_1000, obs(100), 2, 6, "ScaleUpLimit"),  # max(+100%, +4)
    Case("scale-up-limit-min-policy", FLAT_1000, obs(100), 2, 4, "ScaleUpLimit",
         cfg={"behavior": BehaviorConfig(scale_up=ScalingRules(
             (ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)), "Min", 0))}),
    Case("scale-up-limit-counts-period", FLAT_1000, obs(100), 4, 4, "ScaleUpLimit",
         cfg={"behavior": BehaviorConfig(scale_up=ScalingRules((ScalingPolicy("Pods", 2, 60),), "Max", 0))},
         state={"scale_events": ((at(-20), 2),)}),
    Case("scale-up-disabled", FLAT_1000, obs(100), 4, 4, "ScaleUpLimit",
         cfg={"behavior": BehaviorConfig(scale_up=ScalingRules((), "Disabled", 0))}),
    Case("scale-down-limit", artifact([200.0] * 12), obs(150), 10, 9, "ScaleDownLimit",
         cfg={"behavior": slow_down()}),
    Case("scale-down-stabilized", artifact([200.0] * 12), obs(150), 10, 10, "ScaleDownStabilized",
         state={"recommendations": ((at(-120), 10),)}),
    Case("stabilization-window-expired", artifact([200.0] * 12), obs(150), 10, 2, "ForecastPeak",
         state={"recommendations": ((at(-400), 10),)}),
    Case("within-tolerance-down", artifact([900.0] * 12, yhat=[880.0] * 12), obs(800), 11, 11,
         "WithinTolerance"),  # wants 10
    Case("tolerance-never-below-band", artifact([1050.0] * 12), obs(800), 10, 11, "ForecastPeak",
         cfg={"headroom": 0.0}),
    Case("tolerance-never-delays-scale-up", NARROW_1000, obs(800), 10, 11, "Headroom"),
    Case("beyond-tolerance-down", artifact([800.0] * 12, yhat=[780.0] * 12), obs(700), 11, 9, "Headroom"),
    Case("observed-above-plan-forecast-missed", FLAT_1000, obs(2000), 2, 22, "ObservedLoadFloor",
         steps=("ForecastMissed",)),  # not rate-limited below the observed need
    Case("observed-floor-capped-at-max", FLAT_1000, obs(9000), 5, 20, "MaxCapacityExceeded",
         cfg={"max_replicas": 20}),
    Case("observed-floor-after-down-limit", artifact([100.0] * 12), obs(1000), 10, 11, "ForecastMissed",
         cfg={"behavior": slow_down()}),
    Case("stale-forecast-reactive-up", artifact([100.0] * 12, created=T0 - pd.Timedelta(hours=4)), obs(1000),
         3, 11, "ObservedLoadFloor", steps=("StaleForecast", "ReactiveScaling"), mode="reactive"),
    Case("stale-forecast-never-down", artifact([100.0] * 12, created=T0 - pd.Timedelta(hours=4)), obs(300),
         10, 10, "NoScaleDownWhileBlind", steps=("StaleForecast",), mode="reactive"),
    Case("no-forecast-reactive", None, obs(1000), 11, 11, "ReactiveScaling", steps=("NoForecast",)),
    Case("no-forecast-never-down", None, obs(100), 8, 8, "NoScaleDownWhileBlind"),
    Case("forecast-exhausted", artifact([100.0] * 3, start=T0 - pd.Timedelta(hours=2)), obs(100), 8, 8,
         "NoScaleDownWhileBlind", steps=("ForecastExhausted",)),
    Case("forecast-partial-no-scale-down", artifact([100.0], step=60), obs(100), 8, 8,
         "NoScaleDownWhileBlind", steps=("ForecastPartial",)),
    Case("observed-missing-no-scale-down", artifact([200.0] * 12), None, 10, 10, "NoScaleDownWhileBlind",
         steps=("ObservedLoadMissing",)),
    Case("observed-missing-still-scales-up", NARROW_1000, None, 6, 11, "Headroom",
         steps=("ObservedLoadMissing",)),
    Case("observed-nan-is-missing", artifact([200.0] * 12), obs(float("nan")), 10, 10,
         "NoScaleDownWhileBlind", steps=("ObservedLoadMissing",)),
    Case("observed-negative-is-missing", artifact([200.0] * 12), obs(-50.0), 10, 10,
         "NoScaleDownWhileBlind", steps=("ObservedLoadMissing",)),
    Case("observed-stale-no-scale-down", artifact([200.0] * 12), obs(100, age_s=600), 10, 10,
         "NoScaleDownWhileBlind", steps=("ObservedLoadStale",)),
    Case("no-data-keeps-current", None, None, 7, 7, "NoData", mode="hold"),
    Case("no-data-unknown-current", None, None, None, 1, "NoData"),
    Case("first-decision-no-limits", NARROW_1000, obs(800), None, 11, "Headroom"),
    Case("zero-load-min", artifact([0.0] * 12), obs(0), 4, 1, "TooFewReplicas"),
    Case("above-max-scale-down-anyway", artifact([200.0] * 12), obs(100), 60, 50, "TooManyReplicas",
         cfg={"behavior": slow_down()}),
    Case("ramp-anticipation", artifact([500.0] * 2 + [4000.0] * 4, step=60), obs(400), 6, 12,
         "ScaleUpLimit", steps=("RampAnticipation",)),
    # 2 pods per 60 s climbs every other 30 s tick: 10 -> 20 takes 9 ticks, too slow for the 10:05 peak.
    Case("ramp-anticipation-policy-period-longer-than-interval",
         artifact([900.0] * 5 + [2000.0] * 6, step=60), obs(800), 10, 12, "ScaleUpLimit",
         steps=("RampAnticipation",),
         cfg={"behavior": BehaviorConfig(scale_up=ScalingRules((ScalingPolicy("Pods", 2, 60),), "Max", 0))}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide_rules(case: Case) -> None:
    state = ControllerState(replicas=case.current, **case.state)
    d = decide(case.forecast, case.observed, state, config(**case.cfg), T0)
    assert (d.replicas, d.reason) == (case.want, case.reason), d.explain()
    codes = [s.reason for s in d.steps]
    for code in case.steps:
        assert code in codes, d.explain()
    if case.mode:
        assert d.mode == case.mode
    assert d.state.replicas == d.replicas
    assert all(s.message for s in d.steps)
    setters = [s for s in d.steps if s.replicas is not None]
    assert setters and setters[-1].replicas == d.replicas, d.explain()
    assert d.message == setters[-1].message


@pytest.mark.parametrize(
    ("rate", "capacity", "headroom", "want"),
    [(0.0, 100.0, 0.1, 0), (100.0, 100.0, 0.0, 1), (100.0, 100.0, 0.1, 2), (1000.0, 100.0, 0.1, 11),
     (999.9, 100.0, 0.0, 10), (0.01, 100.0, 0.0, 1)],
    ids=["zero", "exact", "exact-plus-headroom", "ten-percent", "just-below", "tiny"],
)
def test_replicas_for(rate: float, capacity: float, headroom: float, want: int) -> None:
    assert replicas_for(rate, capacity, headroom) == want


def test_decide_is_pure_and_deterministic() -> None:
    state = ControllerState(replicas=3, recommendations=((at(-60), 5),), scale_events=((at(-10), 1),),
                            issued_warmups=(("k", at(600)),))
    before = copy.deepcopy(state)
    art = artifact([1500.0] * 12)
    cfg = config()
    one = decide(art, obs(700), state, cfg, T0)
    two = decide(art, obs(700), state, cfg, T0)
    assert state == before
    assert one == two


def test_state_records_history_and_scale_events() -> None:
    d = decide(NARROW_1000, obs(800), ControllerState(replicas=8), config(), T0)
    assert d.state.recommendations[-1] == (T0, 11)
    assert d.state.scale_events == ((T0, 3),)
    later = decide(NARROW_1000, obs(800), d.state, config(), at(3600))
    assert later.state.scale_events == ()  # pruned once older than every period and the lead
    assert all(t > at(3600 - 300) for t, _ in later.state.recommendations)


def test_scale_down_after_blindness_waits_for_stabilisation() -> None:
    low, cfg = artifact([200.0] * 40), config()
    held = decide(low, None, ControllerState(replicas=10), cfg, T0)
    assert held.replicas == 10 and held.state.recommendations[-1] == (T0, 10)
    back = decide(low, ObservedLoad(150.0, at(30)), held.state, cfg, at(30))
    assert (back.replicas, back.reason) == (10, "ScaleDownStabilized")
    later = decide(low, ObservedLoad(150.0, at(330)), back.state, cfg, at(330))
    assert later.replicas == 2  # band 200 -> 2; mean 167 +10% -> 2


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(None, None, ControllerState(), config(), pd.Timestamp("2026-11-26 10:00"))


def test_scale_up_happens_lead_before_the_peak() -> None:
    """Replicas must be requested by peak - lead; not earlier than one interval before that."""
    art = artifact([500.0] * 6 + [2000.0] * 6)  # the rise at 10:30
    state, cfg = ControllerState(replicas=6), config()
    first_up = None
    for k in range(0, 70):
        now = at(30 * k)
        d = decide(art, ObservedLoad(400, now), state, cfg, now)
        state = d.state
        if d.replicas >= 20 and first_up is None:  # the band of 2000 req/s needs 20
            first_up = now
    assert first_up is not None
    peak = at(1800)
    assert peak - cfg.lead - 3 * cfg.interval_td <= first_up <= peak - cfg.lead


def test_decision_serialises() -> None:
    d = decide(NARROW_1000, obs(800), ControllerState(), config(), T0)
    data = d.to_dict()
    assert data["replicas"] == 11 and data["reason"] == d.reason and data["steps"]
    assert '"replicas":11' in d.annotation()
    assert "ForecastPeak" in d.explain()


DEFERRED = [
    # id, case: every Deferred field is built on first read and reads the same as an eager value
    ("forecast-peak", CASES[0]),
    ("stale-forecast", next(c for c in CASES if c.id == "stale-forecast-reactive-up")),
    ("observed-stale", next(c for c in CASES if c.id == "observed-stale-no-scale-down")),
    ("forecast-partial", next(c for c in CASES if c.id == "forecast-partial-no-scale-down")),
]


@pytest.mark.parametrize("case", [d[1] for d in DEFERRED], ids=[d[0] for d in DEFERRED])
def test_deferred_message_and_window_end_read_as_plain_values(case: Case) -> None:
    cfg = config(**case.cfg)
    d = decide(case.forecast, case.observed, ControllerState(replicas=case.current, **case.state), cfg, T0)
    assert callable(vars(d)["message"]) and callable(vars(d)["window_end"])  # nothing formatted yet
    assert isinstance(d.message, str) and d.message in [s.message for s in d.steps]
    assert d.window_end == T0 + cfg.window_td and isinstance(d.window_end, pd.Timestamp)
    assert all(isinstance(s.message, str) and s.message for s in d.steps)
    # replace() and equality see the built values; a copy with eager values is equal
    eager = dataclasses.replace(d, message=d.message, window_end=d.window_end)
    assert eager == d and hash(eager) == hash(d) and repr(eager) == repr(d)
    assert dataclasses.replace(d, replicas=d.replicas + 1).message == d.message


def test_decision_init_takes_every_field() -> None:
    """Decision, Step and Level write their fields in a hand-written __init__: it must name every field."""
    for cls in (Decision, Step, Level):
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        assert params == [f.name for f in dataclasses.fields(cls)], cls


def test_a_backward_clock_jump_does_not_freeze_a_scale_up() -> None:
    """Recommendations dated an hour ahead (the clock went back) held every scale-up at their value."""
    fc = artifact([3000.0] * 12)
    state = ControllerState(replicas=10, recommendations=((at(3600), 10),))
    d = decide(fc, obs(300), state, config(), at(0))
    assert d.replicas > 10, d.explain()
    # a scale event dated ahead counts as made now: it limits scale-ups for one policy period, not an hour
    state = ControllerState(replicas=10, recommendations=((at(3600), 10),), scale_events=((at(3600), 6),))
    later = decide(fc, obs(300), state, config(), at(0)).state
    assert decide(fc, obs(300), later, config(), at(30)).replicas > 10
