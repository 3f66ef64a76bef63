"""Tests of the reactive (HPA), cron and oracle policies against hand-computed Kubernetes HPA behaviour."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import BehaviorConfig, ScalingPolicy, ScalingRules
from controller.planning.policies import CronPolicy, HpaSettings, HpaState, cron_from_history, hpa_desired
from controller.planning.simulate import SimParams
from forecaster.errors import UserError
from tests.support import reference


@pytest.mark.parametrize(
    ("current", "rate", "capacity", "target", "expected"),
    [
        (4, 40.0, 10.0, 0.5, 8),  # util 1.0 / 0.5 = 2.0 -> ceil(4 * 2) = 8
        (10, 52.0, 10.0, 0.5, 10),  # ratio 1.04 within tolerance 0.1 -> unchanged
        (10, 56.0, 10.0, 0.5, 12),  # ratio 1.12 -> ceil(11.2) = 12
        (10, 44.0, 10.0, 0.5, 9),  # ratio 0.88 -> ceil(8.8) = 9
        (10, 46.0, 10.0, 0.5, 10),  # ratio 0.92 within tolerance
        (3, 0.0, 10.0, 0.7, 0),  # no load -> 0 (min replicas applied later)
        (5, 35.0, 10.0, 0.7, 5),  # exactly on target
    ],
    ids=["double", "within-tolerance-up", "up-12", "down-9", "within-tolerance-down", "idle", "on-target"],
)
def test_hpa_desired_formula(
    current: int, rate: float, capacity: float, target: float, expected: int
) -> None:
    assert hpa_desired(current, rate, capacity, HpaSettings(target_utilization=target)) == expected


def run_syncs(loads: list[float], start: int, hpa: HpaSettings, lo: int = 1, hi: int = 100) -> list[int]:
    state, current, out = HpaState(hpa), start, []
    for n, load in enumerate(loads):
        current = state.step(n * 15.0, current, load, 10.0, lo, hi)
        out.append(current)
    return out


def test_scale_up_rate_limit_default_policies() -> None:
    # Defaults: +100% or +4 pods per 15 s (Max). From 1: max(2, 5) = 5; from 5: max(10, 9) = 10; then 20.
    hpa = HpaSettings(target_utilization=1.0)
    assert run_syncs([1000.0] * 4, 1, hpa) == [5, 10, 20, 40]


def test_scale_down_waits_for_stabilisation_window() -> None:
    hpa = HpaSettings(target_utilization=1.0)
    loads = [100.0] + [20.0] * 22
    out = run_syncs(loads, 10, hpa)
    # The recommendation of 10 at t=0 stays the highest in the 300 s window until t=300 (sync 20).
    assert out[:20] == [10] * 20
    assert out[20] == 2


def test_scale_up_policy_counts_from_period_start() -> None:
    # One policy: +2 pods per 60 s. Syncs every 15 s may only add 2 pods per minute in total.
    behavior = BehaviorConfig(scale_up=ScalingRules(policies=(ScalingPolicy("Pods", 2, 60),)))
    hpa = HpaSettings(target_utilization=1.0, behavior=behavior)
    assert run_syncs([1000.0] * 6, 2, hpa) == [4, 4, 4, 4, 6, 6]


def test_min_max_clamp() -> None:
    hpa = HpaSettings(target_utilization=1.0)
    assert run_syncs([10_000.0] * 5, 2, hpa, hi=12)[-1] == 12
    assert run_syncs([0.0] * 25, 3, hpa, lo=2)[-1] == 2


def test_disabled_scale_down() -> None:
    behavior = BehaviorConfig(scale_down=ScalingRules(policies=(), select_policy="Disabled"))
    out = run_syncs([0.0] * 30, 6, HpaSettings(target_utilization=1.0, behavior=behavior))
    assert set(out) == {6}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either"),
        ({"hourly": [1] * 23}, "24 hourly"),
        ({"fixed": -1}, "0 or more"),
        ({"hourly": [1] * 24, "fixed": 2}, "either"),
    ],
    ids=["nothing", "23-hours", "negative", "both"],
)
def test_cron_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        CronPolicy(**kwargs)


def test_target_utilisation_validated() -> None:
    with pytest.raises(UserError, match="target utilisation"):
        HpaSettings(target_utilization=1.5)


def test_cron_from_history_covers_next_hour() -> None:
    idx = pd.date_range("2026-11-02T00:00Z", periods=48, freq="1h")
    rate = pd.Series([50.0 if t.hour == 9 else 10.0 for t in idx], index=idx)
    sched = cron_from_history(rate, SimParams(capacity_per_replica=10), "UTC")
    assert sched[9] == 5 and sched[8] == 5  # scale-up must start in the hour before the peak
    assert sched[10] == 1 and sched[3] == 1


_RULES = st.builds(
    ScalingRules,
    policies=st.lists(
        st.builds(
            ScalingPolicy,
            type=st.sampled_from(["Pods", "Percent"]),
            value=st.integers(1, 200),
            period_seconds=st.sampled_from([15, 30, 60, 120]),
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    select_policy=st.sampled_from(["Max", "Min", "Disabled"]),
    stabilization_window_seconds=st.sampled_from([0, 15, 60, 300]),
)


@settings(max_examples=150, deadline=None)
@given(
    up=_RULES,
    down=_RULES,
    loads=st.lists(st.floats(0.0, 2000.0), min_size=1, max_size=80),
    start=st.integers(0, 60),
    lo=st.integers(0, 5),
    target=st.sampled_from([0.5, 0.7, 1.0]),
)
def test_hpa_state_follows_the_rule_as_written(
    up: ScalingRules, down: ScalingRules, loads: list[float], start: int, lo: int, target: float
) -> None:
    """The incremental HpaState (running window extremes) recommends exactly what the plain rule does."""
    hpa = HpaSettings(target_utilization=target, behavior=BehaviorConfig(scale_up=up, scale_down=down))
    fast, plain = HpaState(hpa), reference.HpaState(hpa)
    a = b = start
    for n, load in enumerate(loads):
        a = fast.step(n * 15.0, a, load, 10.0, lo, 60)
        b = plain.step(n * 15.0, b, load, 10.0, lo, 60)
        assert a == b, f"sync {n}: incremental {a}, rule {b}"
