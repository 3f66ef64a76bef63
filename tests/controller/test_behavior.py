"""HPA behavior semantics of the rate limits, stabilisation and tolerance, checked directly."""

from __future__ import annotations

import pandas as pd
import pytest

from controller.behavior import Trace, scale_limit, stabilize, tolerance
from controller.config import ScalingPolicy, ScalingRules
from tests.controller.builders import T0, at, config

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
