"""The live loop with fakes: each fault path degrades toward safety; one tick does what it promises.

The end-to-end tests (run with the stand-in API server, a forecast file and the ``run`` wiring) live in
tests/controller/test_runcli.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import pytest

from controller import loop as loop_mod
from controller.config import ControllerConfig, LoadConfig, TargetConfig, WarmupConfig
from controller.decision import Decision
from controller.health import ControllerMetrics, HealthState
from controller.kube import KubeForbidden, KubeUnavailable, LogEventSink
from controller.loop import ControlLoop, LoopDeps, MemoryStateStore
from controller.ports import ObservedLoad, TargetStatus
from controller.state import ControllerState
from controller.warmup import WarmupAction
from forecaster.artifact import ForecastArtifact, Interval
from forecaster.errors import SourceError, StoreError

NOW = pd.Timestamp("2026-11-26T10:00:00+00:00")


def forecast(peak: float, *, created: pd.Timestamp | None = None) -> ForecastArtifact:
    created = NOW - pd.Timedelta("10min") if created is None else created
    step = pd.Timedelta("1h")
    ivs = tuple(Interval(NOW - step + i * step, peak * 0.6, peak * 0.5, peak * 0.8, peak) for i in range(8))
    return ForecastArtifact(
        created_at=created,
        model="seasonal_median",
        timezone="UTC",
        interval_seconds=3600,
        band_level=0.9,
        history_start=NOW - pd.Timedelta("14D"),
        history_end=NOW - step,
        history_points=336,
        source="test",
        horizon_seconds=8 * 3600,
        intervals=ivs,
    )


def config(**kw: Any) -> ControllerConfig:
    base: dict[str, Any] = dict(
        capacity_per_replica=100.0,
        headroom=0.1,
        min_replicas=2,
        max_replicas=20,
        target=TargetConfig(name="recharge", namespace="payments", mode="hpa"),
        load=LoadConfig(kind="file", path="load.csv"),
    )
    base.update(kw)
    return ControllerConfig(**base)


class FakeStore:
    def __init__(self, value: ForecastArtifact | Exception | None) -> None:
        self.value = value

    def describe(self) -> str:
        return "fake"

    def write(self, artifact: ForecastArtifact) -> None:
        raise NotImplementedError

    def read(self) -> ForecastArtifact | None:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class FakeLoad:
    def __init__(self, value: float | Exception) -> None:
        self.value = value

    def describe(self) -> str:
        return "fake"

    def current(self, now: pd.Timestamp) -> ObservedLoad:
        if isinstance(self.value, Exception):
            raise self.value
        return ObservedLoad(self.value, now)


class FakeTarget:
    def __init__(self, replicas: int = 3, floor: int | None = 3, paused: bool = False) -> None:
        self.st = TargetStatus(replicas, replicas, floor, paused)
        self.applied: list[tuple[int, str]] = []
        self.status_error: Exception | None = None
        self.apply_error: Exception | None = None

    def describe(self) -> str:
        return "fake"

    def status(self) -> TargetStatus:
        if self.status_error is not None:
            raise self.status_error
        return self.st

    def apply(self, replicas: int, annotation: str) -> None:
        if self.apply_error is not None:
            raise self.apply_error
        self.applied.append((replicas, annotation))
        self.st = (
            dataclasses.replace(self.st, floor=replicas)
            if self.st.floor is not None
            else dataclasses.replace(self.st, replicas=replicas)
        )


class FakeWarmup:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.calls: list[tuple[str, int, str]] = []

    def warm(self, key: str, replicas: int, reason: str) -> bool:
        self.calls.append((key, replicas, reason))
        return self.ok


class FakeLock:
    def __init__(self, leader: bool = True) -> None:
        self.leader = leader
        self.last_error: Exception | None = None
        self.released = False

    def acquire_or_renew(self, now: pd.Timestamp) -> bool:
        return self.leader

    def release(self) -> None:
        self.released = True


def make(
    store: Any = None,
    load: Any = 300.0,
    target: FakeTarget | None = None,
    *,
    cfg: ControllerConfig | None = None,
    lock: FakeLock | None = None,
    warmup: FakeWarmup | None = None,
    dry_run: bool = False,
    state_store: MemoryStateStore | None = None,
) -> tuple[ControlLoop, FakeTarget, LogEventSink]:
    target = target or FakeTarget()
    events = LogEventSink()
    deps = LoopDeps(
        store=FakeStore(forecast(950) if store is None else store),
        load=FakeLoad(load),
        target=target,
        events=events,
        state_store=state_store or MemoryStateStore(),
        warmup=warmup,
        lock=lock,
        metrics=ControllerMetrics(),
        health=HealthState(),
    )
    return ControlLoop(cfg or config(), deps, dry_run=dry_run), target, events


def metric(lp: ControlLoop, name: str, **labels: str) -> float | None:
    return lp.deps.metrics.registry.get_sample_value(name, labels or None)


def test_forecast_raises_floor_annotates_and_reports() -> None:
    lp, target, events = make()
    result = lp.tick(NOW)
    assert result.outcome == "acted" and result.applied
    assert result.decision is not None and result.decision.replicas > 3
    replicas, note = target.applied[-1]
    assert replicas == result.decision.replicas and '"reason":' in note
    assert events.emitted[0][0] == "ScaledUp" and "HPA minReplicas 3 -> " in events.emitted[0][1]
    assert metric(lp, "recharge_autoscaler_desired_replicas") == replicas
    assert metric(lp, "recharge_autoscaler_current_replicas") == 3
    assert metric(lp, "recharge_autoscaler_forecast_age_seconds") == 600
    assert lp.deps.health.ready() == (True, "acted")
    assert lp.deps.state_store.load() == result.decision.state  # type: ignore[attr-defined]


def test_unchanged_decision_does_not_rewrite_target() -> None:
    lp, target, _ = make()
    lp.tick(NOW)
    first = len(target.applied)
    for k in range(1, 4):  # HPA defaults allow a further step-up per 15 s; run until steady
        lp.tick(NOW + pd.Timedelta(seconds=30 * k))
    steady = len(target.applied)
    result = lp.tick(NOW + pd.Timedelta(seconds=150))
    assert result.outcome == "unchanged" and not result.applied
    assert len(target.applied) == steady >= first


@pytest.mark.parametrize(
    ("store", "load", "fault"),
    [
        (StoreError("configmap payments/f: forbidden"), 200.0, "store"),
        (forecast(950, created=NOW - pd.Timedelta("2D")), 200.0, None),
        (forecast(50), SourceError("prometheus down"), "metrics"),
        (StoreError("unreadable"), SourceError("prometheus down"), "store"),
    ],
    ids=["store-unreadable", "stale-forecast", "metrics-down", "both-down"],
)
def test_blind_paths_never_scale_down(store: Any, load: Any, fault: str | None) -> None:
    """Current 10 replicas, little load or a low forecast: a blind controller must keep the 10."""
    lp, target, events = make(store, load, FakeTarget(replicas=10, floor=10))
    result = lp.tick(NOW)
    assert result.decision is not None and result.decision.replicas >= 10
    assert all(r >= 10 for r, _ in target.applied)
    assert any(w for _, _, w in events.emitted)  # the safety rule is reported as a Warning Event
    if fault:
        assert metric(lp, "recharge_autoscaler_errors_total", kind=fault) == 1
        ok, why = lp.deps.health.ready()
        assert ok and why.startswith("degraded:")


@pytest.mark.parametrize(
    ("where", "exc", "kind"),
    [
        (
            "status",
            KubeUnavailable("get deployments payments/recharge failed after 4 attempts (HTTP 503)"),
            "unavailable",
        ),
        (
            "apply",
            KubeForbidden("forbidden: the service account needs 'patch' on 'horizontalpodautoscalers'"),
            "forbidden",
        ),
    ],
    ids=["status-5xx", "apply-forbidden"],
)
def test_api_errors_change_nothing_and_fail_readiness_until_recovered(
    where: str, exc: Exception, kind: str
) -> None:
    store = MemoryStateStore()
    lp, target, _ = make(state_store=store)
    setattr(target, f"{where}_error", exc)
    result = lp.tick(NOW)
    assert result.outcome == "failed" and target.applied == []
    assert store.load() is None  # nothing acted, nothing remembered
    ok, why = lp.deps.health.ready()
    assert not ok and str(exc) in why
    assert metric(lp, "recharge_autoscaler_errors_total", kind=kind) == 1
    setattr(target, f"{where}_error", None)
    result = lp.tick(NOW + pd.Timedelta(seconds=30))
    assert result.outcome == "acted" and target.applied
    assert lp.deps.health.ready()[0]


def test_paused_target_is_left_alone() -> None:
    lp, target, events = make(target=FakeTarget(paused=True))
    assert lp.tick(NOW).outcome == "paused"
    assert lp.tick(NOW + pd.Timedelta(seconds=30)).outcome == "paused"
    assert target.applied == []
    assert [r for r, _, _ in events.emitted] == ["Paused"]  # once, not every tick


def test_dry_run_decides_but_never_acts() -> None:
    warm = FakeWarmup()
    lp, target, _ = make(dry_run=True, warmup=warm)
    result = lp.tick(NOW)
    assert result.outcome == "dry_run" and result.decision is not None and result.decision.replicas > 3
    assert target.applied == [] and warm.calls == []
    assert lp.deps.state_store.load() is None  # type: ignore[attr-defined]


def test_follower_does_not_touch_the_target() -> None:
    target = FakeTarget()
    target.status_error = AssertionError("a follower must not read the target")
    lp, _, _ = make(target=target, lock=FakeLock(leader=False))
    assert lp.tick(NOW).outcome == "follower"
    assert metric(lp, "recharge_autoscaler_leader") == 0
    assert lp.deps.health.ready() == (True, "follower")


def test_lease_errors_fail_readiness() -> None:
    lock = FakeLock(leader=False)
    lock.last_error = KubeForbidden("forbidden: the service account needs 'get' on 'leases'")
    lp, _, _ = make(lock=lock)
    assert lp.tick(NOW).outcome == "failed"
    assert "needs 'get' on 'leases'" in lp.deps.health.ready()[1]


def _with_warmup(monkeypatch: pytest.MonkeyPatch, seen: list[ControllerState]) -> None:
    real = loop_mod.decide

    def fake_decide(fc: Any, obs: Any, state: ControllerState, cfg: Any, now: pd.Timestamp) -> Decision:
        seen.append(state)
        d = real(fc, obs, state, cfg, now)
        if state.issued("warmup-abc"):
            return d
        action = WarmupAction(
            "warmup-abc", now, now + pd.Timedelta("1h"), d.replicas, "RampAhead", "ramp at 11:00"
        )
        new_state = dataclasses.replace(
            d.state, issued_warmups=(*d.state.issued_warmups, ("warmup-abc", now + pd.Timedelta("2h")))
        )
        return dataclasses.replace(d, warmups=(action,), state=new_state)

    monkeypatch.setattr(loop_mod, "decide", fake_decide)


@pytest.mark.parametrize("ok", [True, False], ids=["delivered", "failed"])
def test_warmups_issued_once_and_survive_restart(monkeypatch: pytest.MonkeyPatch, ok: bool) -> None:
    seen: list[ControllerState] = []
    _with_warmup(monkeypatch, seen)
    store = MemoryStateStore()
    cfg = config(warmup=WarmupConfig(enabled=True, url="http://127.0.0.1:9/warm"))
    warm = FakeWarmup(ok=ok)
    lp, _, _ = make(cfg=cfg, warmup=warm, state_store=store)
    result = lp.tick(NOW)
    assert result.warmups[0] == ("warmup-abc", ok)
    assert metric(lp, "recharge_autoscaler_warmups_total", result="ok" if ok else "failed") == 1
    lp.tick(NOW + pd.Timedelta(seconds=30))
    # a restarted controller loads the persisted state and does not repeat any call
    lp2, _, _ = make(cfg=cfg, warmup=warm, state_store=store)
    lp2.tick(NOW + pd.Timedelta(seconds=60))
    keys = [k for k, _, _ in warm.calls]
    assert keys.count("warmup-abc") == 1
    assert len(keys) == len(set(keys))
    assert seen[-1].issued("warmup-abc")


def test_state_store_failure_is_counted_not_fatal() -> None:
    class BrokenStore(MemoryStateStore):
        def save(self, state: ControllerState) -> None:
            raise StoreError("configmap payments/recharge-autoscaler-state: forbidden")

    lp, target, _ = make(state_store=BrokenStore())
    assert lp.tick(NOW).outcome == "acted" and target.applied
    assert metric(lp, "recharge_autoscaler_errors_total", kind="state") == 1


def test_a_bug_in_a_tick_is_contained() -> None:
    lp, _, _ = make()
    lp.deps.target = None  # type: ignore[assignment]
    result = lp.tick(NOW)
    assert result.outcome == "failed"
    assert metric(lp, "recharge_autoscaler_errors_total", kind="internal") == 1
    assert not lp.deps.health.ready()[0]


def test_clamped_floor_is_reported_once() -> None:
    class ClampingTarget(FakeTarget):
        last_applied: int | None = None

        def apply(self, replicas: int, annotation: str) -> None:
            super().apply(min(replicas, 5), annotation)
            self.last_applied = min(replicas, 5)

    lp, _, events = make(target=ClampingTarget())
    lp.tick(NOW)
    lp.tick(NOW + pd.Timedelta(seconds=30))
    clamps = [m for r, m, w in events.emitted if r == "FloorClamped" and w]
    assert len(clamps) == 1 and "accepts at most 5" in clamps[0]
