"""After a restart, a failover or a lost state ConfigMap the controller never scales down within one full
scale-down stabilisation window (issue 10, item 1).

The Kubernetes HPA does the same when it first sees a target: it seeds its recommendation history with the
current replicas at that moment. Driven through the real :class:`controller.loop.ControlLoop` with the fakes
of tests/controller/test_loop.py.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from controller.config import BehaviorConfig, ScalingPolicy, ScalingRules, TargetConfig
from controller.core.state import ControllerState
from controller.loop import MemoryStateStore
from tests.controller.test_loop import NOW, FakeLock, FakeTarget, UnreadableStateStore, config, forecast, make

TICK = pd.Timedelta(seconds=30)


def _behavior(up_window: int, down_window: int) -> BehaviorConfig:
    return BehaviorConfig(
        scale_up=ScalingRules(
            policies=(ScalingPolicy("Pods", 4, 15),), stabilization_window_seconds=up_window
        ),
        scale_down=ScalingRules(
            policies=(ScalingPolicy("Percent", 100, 15),), stabilization_window_seconds=down_window
        ),
    )


def _old_state() -> ControllerState:
    """A state saved an hour ago: its recommendations are all outside the window."""
    at = NOW - pd.Timedelta("1h")
    return ControllerState(replicas=30, recommendations=((at, 30),), scale_events=((at, 4),))


STATES: dict[str, Any] = {
    "no-state": lambda: MemoryStateStore(),  # a new lease name: nothing saved under it
    "unreadable-state": lambda: UnreadableStateStore(),
    "old-state": lambda: MemoryStateStore(_old_state()),
}
BEHAVIORS: dict[str, tuple[BehaviorConfig | None, int]] = {
    "no-behavior": (None, 300),  # the HPA defaults: scale-down window 300 s
    "behavior-up-60": (_behavior(60, 300), 300),  # a scale-up window shorter than the scale-down window
    "behavior-up-eq-down": (_behavior(120, 120), 120),  # equal windows
}


@pytest.mark.parametrize("mode", ["hpa", "scale"])
@pytest.mark.parametrize("behavior", list(BEHAVIORS), ids=list(BEHAVIORS))
@pytest.mark.parametrize("state", list(STATES), ids=list(STATES))
def test_no_scale_down_for_a_full_window_after_start(mode: str, behavior: str, state: str) -> None:
    """30 replicas, a forecast for 9: the 30 are kept for the whole window, then the scale-down goes ahead."""
    beh, window = BEHAVIORS[behavior]
    kw: dict[str, Any] = {"behavior": beh} if beh is not None else {}
    cfg = config(target=TargetConfig(name="recharge", namespace="payments", mode=mode), max_replicas=50, **kw)
    target = FakeTarget(replicas=30, floor=30 if mode == "hpa" else None)
    lp, target, _ = make(
        forecast(900), load=300.0, target=target, cfg=cfg, state_store=STATES[state](), lock=FakeLock()
    )
    seen = []
    for k in range(window // 30 + 3):
        result = lp.tick(NOW + k * TICK)
        assert result.decision is not None
        seen.append((k * 30, result.decision.replicas))
    inside = [n for t, n in seen if t < window]
    assert inside == [30] * len(inside), seen
    assert all(n >= 30 for n, _ in target.applied[:-3])
    assert seen[-1][1] < 30, seen  # the window has passed: it does scale down


@pytest.mark.parametrize("mode", ["hpa", "scale"])
def test_regaining_leadership_holds_for_a_full_window(mode: str) -> None:
    """A replica that lost the lease and gets it back has not seen what the other leader did: hold again."""
    cfg = config(target=TargetConfig(name="recharge", namespace="payments", mode=mode), max_replicas=50)
    lock = FakeLock()
    target = FakeTarget(replicas=30, floor=30 if mode == "hpa" else None)
    store = MemoryStateStore()
    lp, target, _ = make(forecast(2800), load=300.0, target=target, cfg=cfg, state_store=store, lock=lock)
    lp.tick(NOW)  # leader at 30, demand needs 28..30: no change worth making
    lock.leader = False
    assert lp.tick(NOW + 20 * TICK).outcome == "follower"
    lock.leader = True
    lp.deps.store.value = forecast(900)  # type: ignore[attr-defined]
    back = NOW + 40 * TICK
    counts = [lp.tick(back + k * TICK).decision.replicas for k in range(10)]  # type: ignore[union-attr]
    assert counts == [30] * 10


def test_the_hold_never_delays_a_scale_up() -> None:
    """A scale-up window shorter than the hold must not turn the hold into a brake on scale-ups."""
    cfg = config(behavior=_behavior(60, 300), max_replicas=50)
    lp, _, _ = make(forecast(3000), load=300.0, target=FakeTarget(replicas=10, floor=10), cfg=cfg)
    result = lp.tick(NOW)
    assert result.decision is not None and result.decision.replicas > 10, result.decision.explain()
