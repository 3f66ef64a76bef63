"""Ramp detection, warm-up planning and idempotency keys; warm-ups through decide() across a restart."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import TargetConfig, WarmupConfig
from controller.core.decision import decide
from controller.core.state import ControllerState
from controller.core.warmup import (
    EVENT,
    NEW_REPLICAS,
    RAMP,
    WarmupAction,
    detect_ramps,
    due_now,
    warmup_key,
)
from controller.ports import ObservedLoad
from forecaster.artifact import Event
from forecaster.configbase import Duration
from tests.support.builders import T0, artifact, at, config
from tests.support.reference import due_warmups, plan_warmups

HOUR = pd.Timedelta(hours=1)

RAMPS = [
    # (id, yhat per 5-min interval, threshold, expected (start offset s, crossing offset s) list)
    ("step-up", [100.0] * 6 + [200.0] * 6, 0.3, [(1800, 1800)]),
    ("gradual", [100, 105, 110, 120, 135, 150, 150, 150], 0.3, [(300, 1200)]),
    ("below-threshold", [100.0] * 6 + [125.0] * 6, 0.3, []),
    ("falling", [200.0] * 6 + [100.0] * 6, 0.3, []),
    ("two-ramps", [100.0] * 3 + [200.0] * 3 + [100.0] * 14 + [300.0] * 3, 0.3, [(900, 900), (6000, 6000)]),
    ("from-zero", [0.0] * 4 + [50.0] * 4, 0.3, [(1200, 1200)]),
]


@pytest.mark.parametrize(("values", "threshold", "want"), [r[1:] for r in RAMPS], ids=[r[0] for r in RAMPS])
def test_detect_ramps(values: list[float], threshold: float, want: list[tuple[int, int]]) -> None:
    art = artifact([v * 1.2 for v in values], yhat=values)
    ramps = detect_ramps(art.intervals, start=T0, end=T0 + 3 * HOUR, threshold=threshold, window=HOUR)
    assert [((r.start - T0).total_seconds(), (r.crossing - T0).total_seconds()) for r in ramps] == want


def test_detect_ramps_respects_lookahead() -> None:
    art = artifact([120.0] * 30 + [360.0] * 6, yhat=[100.0] * 30 + [300.0] * 6)
    assert detect_ramps(art.intervals, start=T0, end=T0 + 2 * HOUR, threshold=0.3, window=HOUR) == []
    assert len(detect_ramps(art.intervals, start=T0, end=T0 + 3 * HOUR, threshold=0.3, window=HOUR)) == 1


EVENTS = [
    ("big-uplift", Event("Payday", "payday", at(3000), at(6000), 1.8), [EVENT]),
    ("small-uplift", Event("Payday", "payday", at(3000), at(6000), 1.1), []),
    ("promotion-unknown-uplift", Event("Promo", "promotion", at(3000), at(6000), None), [EVENT]),
    ("holiday-unknown-uplift", Event("Holiday", "holiday", at(3000), at(6000), None), []),
    ("beyond-lookahead", Event("Promo", "promotion", at(9000), at(9900), 2.0), []),
    ("merged-into-forecast-ramp", Event("Promo", "promotion", at(1800), at(3000), 2.0), [RAMP]),
]


@pytest.mark.parametrize(("event", "reasons"), [e[1:] for e in EVENTS], ids=[e[0] for e in EVENTS])
def test_plan_warmups_from_events(event: Event, reasons: list[str]) -> None:
    flat = [100.0] * 6 + ([200.0] * 30 if reasons == [RAMP] else [100.0] * 30)
    art = artifact([v * 1.2 for v in flat], yhat=flat, events=[event])
    cfg = WarmupConfig(lead=Duration(300), lookahead=Duration(7200))
    planned = plan_warmups(art, target="t", now=T0, config=cfg, replicas=4)
    assert [a.reason for a in planned] == reasons
    for a in planned:
        assert a.at == (at(1800) if a.reason == RAMP else event.start) - pd.Timedelta(minutes=5)
        assert a.replicas == 4 and a.message


def test_warmup_key_is_deterministic_and_instant_based() -> None:
    k = warmup_key("deployment/p/recharge", "forecast", T0)
    assert k == warmup_key("deployment/p/recharge", "forecast", T0.tz_convert("Asia/Jakarta"))
    assert k != warmup_key("deployment/p/other", "forecast", T0)
    assert k != warmup_key("deployment/p/recharge", "forecast", at(300))
    assert k.startswith("warmup-") and len(k) == len("warmup-") + 16


DUE = [
    ("before", -1, False, False),
    ("at", 0, False, True),
    ("inside", 120, False, True),
    ("after-until", 600, False, False),
    ("already-issued", 60, True, False),
]


@pytest.mark.parametrize(("offset", "issued", "due"), [d[1:] for d in DUE], ids=[d[0] for d in DUE])
def test_due_warmups(offset: int, issued: bool, due: bool) -> None:
    action = WarmupAction("k1", at(0), at(600), 3, RAMP, "m")
    got = due_warmups([action], now=at(offset), issued=["k1"] if issued else [])
    assert got == ([action] if due else [])


def _run(state: ControllerState, start: int, stop: int, enabled: bool = True) -> tuple[list, ControllerState]:
    art = artifact([120.0] * 6 + [600.0] * 24, yhat=[100.0] * 6 + [500.0] * 24)
    cfg = config(warmup=WarmupConfig(enabled=enabled, url="http://svc/warm"), target=TargetConfig(name="r"))
    issued = []
    for k in range(start, stop):
        now = at(30 * k)
        d = decide(art, ObservedLoad(100.0, now), state, cfg, now)
        issued += [(now, w) for w in d.warmups]
        state = d.state
    return issued, state


def test_ramp_warmup_issued_once_before_the_ramp_and_new_replicas_warmed() -> None:
    issued, _ = _run(ControllerState(replicas=2), 0, 80)
    ramp = [(t, w) for t, w in issued if w.reason == RAMP]
    assert [t for t, _ in ramp] == [at(1800 - 300)]  # lead 5 min before the 10:30 rise, exactly once
    new = [(t, w) for t, w in issued if w.reason == NEW_REPLICAS]
    assert new, "the scale-up before the rise adds replicas that must be warmed"
    assert all(t >= at(1800 - 120) for t, _ in new)  # when the added replicas become ready
    assert len({w.key for _, w in issued}) == len(issued)


def test_restart_with_persisted_state_does_not_repeat_warmups() -> None:
    issued, state = _run(ControllerState(replicas=2), 0, 52)  # up to 10:25:30: the ramp warm-up went out
    assert any(w.reason == RAMP for _, w in issued)
    restored = ControllerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    again, _ = _run(restored, 52, 60)
    assert not [w for _, w in again if w.reason == RAMP]
    fresh, _ = _run(ControllerState(replicas=state.replicas), 52, 60)  # a restart that lost its state
    assert [w.reason for _, w in fresh if w.reason == RAMP] == [RAMP]


def test_disabled_warmup_issues_nothing() -> None:
    issued, state = _run(ControllerState(replicas=2), 0, 80, enabled=False)
    assert issued == [] and state.issued_warmups == ()


@settings(max_examples=60, deadline=None)
@given(
    yhat=st.lists(st.sampled_from([50.0, 100.0, 140.0, 200.0, 400.0]), min_size=6, max_size=40),
    offset=st.integers(min_value=-600, max_value=9000),
    issued_first=st.booleans(),
)
def test_due_now_agrees_with_the_plain_rule(yhat: list[float], offset: int, issued_first: bool) -> None:
    """The per-tick fast path returns what the plain rule (plan every ramp, keep the due ones) returns."""
    art = artifact([v * 1.2 for v in yhat], yhat=yhat)
    cfg = WarmupConfig(lead=Duration(300), lookahead=Duration(7200), new_replicas=False)
    now = at(offset)
    planned = plan_warmups(art, target="t", now=now, config=cfg, replicas=4)
    issued = [planned[0].key] if issued_first and planned else []
    want = due_warmups(planned, now=now, issued=issued)
    got = due_now(art, (), target="t", now=now, config=cfg, startup_ns=0, replicas=4, grace_ns=0,
                  issued=issued)
    assert [(a.key, a.at, a.until, a.reason) for a in got] == [(a.key, a.at, a.until, a.reason) for a in want]
