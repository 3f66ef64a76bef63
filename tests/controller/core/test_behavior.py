"""HPA behavior semantics of the rate limits, stabilisation and tolerance, checked directly."""

from __future__ import annotations

import pandas as pd
import pytest

from controller.config import BehaviorConfig, ScalingPolicy, ScalingRules
from controller.core.behavior import anticipate, scale_limit, tolerance
from controller.core.state import ControllerState
from controller.core.steps import Trace
from forecaster.artifact import ForecastArtifact
from tests.support.builders import T0, artifact, at, config
from tests.support.reference import stabilize

PCT100_15 = ScalingPolicy("Percent", 100, 15)
PODS4_15 = ScalingPolicy("Pods", 4, 15)
PODS2_60 = ScalingPolicy("Pods", 2, 60)
PCT10_60 = ScalingPolicy("Percent", 10, 60)

LIMITS = [
    # id, policies, select, current, events, up, expected limit
    ("up-max-of-percent-and-pods", (PCT100_15, PODS4_15), "Max", 3, (), True, 7),
    ("up-max-percent-wins", (PCT100_15, PODS4_15), "Max", 10, (), True, 20),
    ("up-min", (PCT100_15, PODS4_15), "Min", 10, (), True, 14),
    ("up-from-zero-percent", (PCT100_15,), "Max", 0, (), True, 1),
    ("up-counts-period-start", (PODS2_60,), "Max", 6, ((at(-30), 2),), True, 6),
    ("up-old-event-ignored", (PODS2_60,), "Max", 6, ((at(-90), 2),), True, 8),
    ("up-disabled", (PODS2_60,), "Disabled", 6, (), True, 6),
    ("down-percent-floor", (PCT10_60,), "Max", 15, (), False, 13),
    ("down-counts-period-start", (PODS2_60,), "Max", 8, ((at(-30), -2),), False, 8),
    ("down-max-allows-most-change", (PODS2_60, PCT10_60), "Max", 30, (), False, 27),
    ("down-min-allows-least-change", (PODS2_60, PCT10_60), "Min", 30, (), False, 28),
]


@pytest.mark.parametrize(("policies", "select", "current", "events", "up", "want"),
                         [c[1:] for c in LIMITS], ids=[c[0] for c in LIMITS])
def test_scale_limit(policies: tuple, select: str, current: int, events: tuple, up: bool, want: int) -> None:
    rules = ScalingRules(policies, select, 0)  # type: ignore[arg-type]
    assert scale_limit(rules, current, events, T0, up=up) == want


STABILIZE = [
    # id, desired, current, recommendations (offset s, value), expected, reason
    ("down-held-by-window-max", 3, 10, ((-100, 8), (-200, 6)), 8, "ScaleDownStabilized"),
    ("down-after-window", 3, 10, ((-400, 8),), 3, None),
    ("up-not-held-by-default", 12, 10, ((-10, 4),), 12, None),
]


@pytest.mark.parametrize(("desired", "current", "recs", "want", "reason"), [s[1:] for s in STABILIZE],
                         ids=[s[0] for s in STABILIZE])
def test_stabilize(desired: int, current: int, recs: tuple, want: int, reason: str | None) -> None:
    tr = Trace()
    history = tuple((T0 + pd.Timedelta(seconds=s), n) for s, n in recs)
    assert stabilize(desired, current, history, T0, config(), tr) == want
    assert [s.reason for s in tr.steps] == ([reason] if reason else [])


@pytest.mark.parametrize(
    ("value", "current", "want"),
    [(19, 20, 20), (18, 20, 20), (17, 20, 17), (21, 20, 21), (0, 0, 0)],
    ids=["small-down-kept", "edge-down-kept", "large-down", "small-up-goes-ahead", "zero"],
)
def test_tolerance_only_damps_scale_down(value: int, current: int, want: int) -> None:
    assert tolerance(value, current, config(tolerance=0.1), Trace()) == want


PODS2_60_UP = ScalingRules((PODS2_60,), "Max", 0)
PCT20_60_UP = ScalingRules((ScalingPolicy("Percent", 20, 60),), "Max", 0)
FAST_UP = ScalingRules((PODS4_15,), "Max", 0)


def _peak_at(
    minute: int, *, peak: float = 2000.0, base: float = 900.0, minutes: int = 40
) -> ForecastArtifact:
    """One-minute intervals from T0: ``base`` req/s, then ``peak`` from ``minute`` on (peak 2000 needs 20)."""
    return artifact([base if m < minute else peak for m in range(minutes)], step=60)


ANTICIPATE = [
    # id, scale-up rules, current, recent scale events (offset s, change), peak minute, want, peak in message
    # 2 pods per 60 s at a 30 s loop climbs every other tick: 10 -> 20 takes 9 ticks; the replicas for 10:05
    # must be asked for by tick 7.
    ("pods-period-longer-than-interval", PODS2_60_UP, 10, (), 5, 20, "10:05"),
    # The budget of this period is spent by the scale-up 30 s ago: the climb starts on the next tick only.
    ("budget-spent-by-recent-scale-up", PODS2_60_UP, 10, ((-30, 2),), 6, 20, "10:06"),
    # 20 % per 60 s: 10, 12, 12, 15, 15, 18, 18, 20 -> 7 ticks, 10:04 is ready from tick 5.
    ("percent-period-longer-than-interval", PCT20_60_UP, 10, (), 4, 20, "10:04"),
    # The same climb has time for a peak at 10:30: no anticipation yet.
    ("slow-policy-peak-far-enough", PODS2_60_UP, 10, (), 30, 10, None),
    # 4 pods per 15 s climbs every tick: 10 -> 20 in 3 ticks, in time for 10:05.
    ("fast-policy-in-time", FAST_UP, 10, (), 5, 10, None),
    # +4 per tick takes 3 ticks to 20; the last useful tick for 10:03 is tick 3: still in time next tick.
    ("fast-policy-peak-just-in-time", FAST_UP, 10, (), 3, 10, None),
    ("fast-policy-too-late", FAST_UP, 10, (), 2, 20, "10:02"),
]


@pytest.mark.parametrize(
    ("rules", "current", "events", "minute", "want", "peak"),
    [a[1:] for a in ANTICIPATE],
    ids=[a[0] for a in ANTICIPATE],
)
def test_anticipate_keeps_climbing_through_spent_periods(
    rules: ScalingRules, current: int, events: tuple, minute: int, want: int, peak: str | None
) -> None:
    cfg = config(behavior=BehaviorConfig(scale_up=rules))
    state = ControllerState(replicas=current, scale_events=tuple((at(s), d) for s, d in events))
    tr = Trace()
    got = anticipate(_peak_at(minute), cfg, state, T0, T0 + cfg.window_td, current, tr)
    assert got == want
    if peak is None:
        assert tr.steps == []
    else:
        assert [(s.reason, s.replicas) for s in tr.steps] == [("RampAnticipation", want)]
        assert f"the peak at {peak} needs {want} replicas" in tr.steps[0].message
