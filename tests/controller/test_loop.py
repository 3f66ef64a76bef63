"""The live loop with fakes: each fault path degrades toward safety; one tick does what it promises.

The end-to-end tests (the real kube-apiserver, a forecast file and the ``run`` wiring) live in
tests/controller/cli/test_run.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pandas as pd
import pytest

from controller import loop as loop_mod
from controller.adapters.health import ControllerMetrics, HealthState
from controller.adapters.kube import LogEventSink
from controller.config import ControllerConfig, LoadConfig, TargetConfig, WarmupConfig
from controller.core.decision import Decision
from controller.core.state import ControllerState
from controller.core.warmup import WarmupAction
from controller.loop import ControlLoop, LoopDeps, MemoryStateStore
from controller.ports import ObservedLoad, TargetStatus
from forecaster.adapters.kube import KubeForbidden, KubeUnavailable
from forecaster.artifact import ForecastArtifact, Interval
from forecaster.configbase import Duration
from forecaster.errors import SourceError, StoreError
from tests.support.promserver import PromServer, prometheus_server  # noqa: F401

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
    assert lp.deps.state_store.load() == result.decision.state


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


@pytest.mark.parametrize("dry_run", [False, True], ids=["live", "dry-run"])
def test_paused_target_is_left_alone(dry_run: bool) -> None:
    lp, target, events = make(target=FakeTarget(paused=True), dry_run=dry_run)
    assert lp.tick(NOW).outcome == "paused"
    assert lp.tick(NOW + pd.Timedelta(seconds=30)).outcome == "paused"
    assert lp.state is not None and lp.state.recommendations == ()  # like the live loop: memory unchanged
    assert target.applied == []
    assert [r for r, _, _ in events.emitted] == ["Paused"]  # once, not every tick


def test_dry_run_decides_but_never_acts() -> None:
    warm = FakeWarmup()
    lp, target, _ = make(dry_run=True, warmup=warm)
    result = lp.tick(NOW)
    assert result.outcome == "dry_run" and result.decision is not None and result.decision.replicas > 3
    assert target.applied == [] and warm.calls == []
    assert lp.deps.state_store.load() is None


def test_dry_run_is_not_the_leader() -> None:
    """A dry run takes no Lease, so it must not read as leader in /metrics; its own gauge says it is dry."""
    lp, _, _ = make(dry_run=True)
    assert lp.tick(NOW).outcome == "dry_run"
    assert metric(lp, "recharge_autoscaler_leader") == 0
    assert metric(lp, "recharge_autoscaler_dry_run") == 1
    live, _, _ = make()  # no Lease configured and not dry: the only replica, so it leads
    live.tick(NOW)
    assert metric(live, "recharge_autoscaler_leader") == 1
    assert metric(live, "recharge_autoscaler_dry_run") == 0


def test_decision_is_logged_as_fields(caplog: pytest.LogCaptureFixture) -> None:
    """Log pipelines query the decision's numbers as fields, not by parsing a multi-line message."""
    import json
    import logging

    from forecaster.logs import JsonFormatter

    lp, _, _ = make()
    with caplog.at_level(logging.INFO, logger="controller.loop"):
        result = lp.tick(NOW)
    assert result.decision is not None
    assert result.decision.forecast_peak is not None and result.decision.observed_rate is not None
    (record,) = [r for r in caplog.records if getattr(r, "scaler", None)]
    doc = json.loads(JsonFormatter().format(record))
    assert (doc["scaler"], doc["from"], doc["to"], doc["reason"]) == (
        "payments/recharge", 3, result.decision.replicas, result.decision.reason,
    )
    assert doc["forecast_peak"] == pytest.approx(result.decision.forecast_peak)
    assert doc["observed_load"] == pytest.approx(result.decision.observed_rate)
    assert "\n" not in doc["msg"] and doc["msg"].startswith("payments/recharge: 3 -> ")


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


def test_warmups_issued_once_and_survive_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ControllerState] = []
    _with_warmup(monkeypatch, seen)
    store = MemoryStateStore()
    cfg = config(warmup=WarmupConfig(enabled=True, url="http://127.0.0.1:9/warm"))
    warm = FakeWarmup(ok=True)
    lp, _, _ = make(cfg=cfg, warmup=warm, state_store=store)
    result = lp.tick(NOW)
    assert result.warmups[0] == ("warmup-abc", True)
    assert metric(lp, "recharge_autoscaler_warmups_total", result="ok") == 1
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


def test_failed_warmup_is_retried_next_tick_until_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm-up that was not delivered is forgotten, so the next tick (still before the ramp) retries it."""
    seen: list[ControllerState] = []
    _with_warmup(monkeypatch, seen)
    store = MemoryStateStore()
    cfg = config(warmup=WarmupConfig(enabled=True, url="http://127.0.0.1:9/warm"))
    warm = FakeWarmup(ok=False)
    lp, _, _ = make(cfg=cfg, warmup=warm, state_store=store)

    def abc(k: int) -> list[tuple[str, bool]]:
        return [w for w in lp.tick(NOW + pd.Timedelta(seconds=30 * k)).warmups if w[0] == "warmup-abc"]

    assert abc(0) == [("warmup-abc", False)]
    assert store.state is not None and not store.state.issued("warmup-abc")  # persisted as not issued
    assert abc(1) == [("warmup-abc", False)]
    warm.ok = True
    assert abc(2) == [("warmup-abc", True)]
    assert abc(3) == []  # delivered: never again
    assert [k for k, _, _ in warm.calls].count("warmup-abc") == 3
    assert metric(lp, "recharge_autoscaler_warmups_total", result="failed") == 2
    assert store.state is not None and store.state.issued("warmup-abc")


class SeqStore(FakeStore):
    """A store whose forecast changes from tick to tick (peaks[i] at the i-th read)."""

    def __init__(self, peaks: list[float]) -> None:
        super().__init__(None)
        self.peaks, self.reads = peaks, 0

    def read(self) -> ForecastArtifact | None:
        peak = self.peaks[min(self.reads, len(self.peaks) - 1)]
        self.reads += 1
        return forecast(peak)


class SeqLoad(FakeLoad):
    def __init__(self, rates: list[float]) -> None:
        super().__init__(0.0)
        self.rates, self.reads = rates, 0

    def current(self, now: pd.Timestamp) -> ObservedLoad:
        rate = self.rates[min(self.reads, len(self.rates) - 1)]
        self.reads += 1
        return ObservedLoad(rate, now)


@pytest.mark.parametrize(
    ("mode", "peaks", "rates"),
    [
        ("hpa", [950.0] * 6, [300.0] * 6),  # rate-limited climb over several ticks
        ("hpa", [950.0, 950.0, 950.0, 200.0, 200.0, 200.0, 200.0, 200.0], [300.0] * 8),  # stabilised fall
        ("scale", [300.0, 1500.0, 1500.0, 400.0, 400.0, 400.0], [100.0, 900.0, 900.0, 100.0, 100.0, 100.0]),
    ],
    ids=["climb", "scale-down-stabilised", "scale-mode-up-and-down"],
)
def test_dry_run_trajectory_equals_live(
    mode: Literal["hpa", "scale"], peaks: list[float], rates: list[float]
) -> None:
    """Same inputs, same replica sequence: a dry run is a faithful preview of the live controller."""
    cfg = config(target=TargetConfig(name="recharge", namespace="payments", mode=mode))

    def run(dry_run: bool) -> list[tuple[int, str]]:
        target = FakeTarget(replicas=3, floor=3 if mode == "hpa" else None)
        lp, _, _ = make(target=target, cfg=cfg, dry_run=dry_run)
        lp.deps.store, lp.deps.load = SeqStore(peaks), SeqLoad(rates)
        out = []
        for k in range(len(peaks)):
            result = lp.tick(NOW + pd.Timedelta(seconds=30 * k))
            assert result.decision is not None
            out.append((result.decision.replicas, result.decision.reason))
        assert (target.applied == []) == dry_run
        return out

    live, dry = run(False), run(True)
    assert len({r for r, _ in live}) > 1  # the scenario really moves
    assert dry == live


def test_dry_run_writes_no_events_and_keeps_state_in_memory_only() -> None:
    lp, target, events = make(dry_run=True)
    for k in range(3):
        lp.tick(NOW + pd.Timedelta(seconds=30 * k))
    assert target.applied == [] and events.emitted == []
    assert lp.deps.state_store.load() is None
    assert lp.state is not None and len(lp.state.recommendations) == 3


def test_scale_up_stabilised_through_the_loop() -> None:
    """A non-zero scale-up window holds a forecast-driven rise at the lowest recent recommendation."""
    from controller.config import BehaviorConfig, ScalingPolicy, ScalingRules

    up = ScalingRules(policies=(ScalingPolicy("Percent", 100, 15),), stabilization_window_seconds=120)
    cfg = config(behavior=BehaviorConfig(scale_up=up))
    lp, target, _ = make(load=50.0, cfg=cfg)
    lp.deps.store = SeqStore([300.0, 950.0, 950.0, 950.0, 950.0, 950.0])
    reasons = []
    for k in range(6):
        result = lp.tick(NOW + pd.Timedelta(seconds=30 * k))
        assert result.decision is not None
        reasons.append((result.decision.replicas, result.decision.reason))
    first = reasons[0][0]
    assert reasons[1] == (first, "ScaleUpStabilized")  # the window still holds the lower recommendation
    assert all(r == first for r, _ in reasons[:4])  # 0 s, 30 s, 60 s, 90 s: inside the 120 s window
    assert reasons[-1][0] > first  # the window passed: the rise goes ahead
    assert target.applied[-1][0] == reasons[-1][0]


class UnreadableStateStore(MemoryStateStore):
    def load(self) -> ControllerState | None:
        raise StoreError("configmap payments/recharge-autoscaler-state: HTTP 403 forbidden")


@pytest.mark.parametrize(
    ("peak", "rate", "floor", "expect_down"),
    [(200.0, 100.0, 10, False), (950.0, 300.0, 3, None)],
    ids=["low-demand-holds-current", "high-demand-still-scales-up"],
)
def test_unreadable_state_at_start_never_causes_a_scale_down(
    peak: float, rate: float, floor: int, expect_down: bool | None
) -> None:
    store = UnreadableStateStore()
    lp, target, _ = make(
        forecast(peak), load=rate, target=FakeTarget(replicas=floor, floor=floor), state_store=store
    )
    result = lp.tick(NOW)
    assert result.decision is not None
    assert metric(lp, "recharge_autoscaler_errors_total", kind="state") == 1
    ok, why = lp.deps.health.ready()
    assert ok and why.startswith("degraded: state:") and "403" in why  # says so
    if expect_down is None:  # a lost history never delays a scale-up
        assert result.decision.replicas > floor and target.applied
        return
    assert result.decision.replicas == floor and result.decision.reason == "ScaleDownStabilized"
    assert store.state is not None  # saved: the next start has a history again
    # the held count lasts one scale-down stabilisation window (300 s), then the scale-down goes ahead
    replicas = [lp.tick(NOW + pd.Timedelta(seconds=30 * k)).decision.replicas for k in range(1, 12)]  # type: ignore[union-attr]
    assert replicas[:9] == [floor] * 9
    assert replicas[-1] < floor


class FakePrometheus:
    """Answers like Prometheus: the query's value, and for ``timestamp(query)`` the sample time.

    ``pairs`` makes ``instant`` return ``(value, evaluation time)`` as the HTTP API's ``[ts, value]`` does;
    ``stamp=None`` rejects the ``timestamp()`` query (as for a scalar query).
    """

    def __init__(self, value: float, stamp: float | None, *, pairs: bool = False) -> None:
        self.value, self.stamp, self.pairs = value, stamp, pairs
        self.asked: list[tuple[str, pd.Timestamp]] = []

    def instant(self, query: str, at: pd.Timestamp) -> Any:
        self.asked.append((query, at))
        if query.startswith("timestamp("):
            if self.stamp is None:
                raise SourceError("bad_data: expected type instant vector in call to function timestamp")
            result = self.stamp
        else:
            result = self.value
        return (result, at.timestamp()) if self.pairs else result


@pytest.mark.parametrize(
    ("age", "stale"),
    [(pd.Timedelta("20s"), False), (pd.Timedelta("10min"), True)],
    ids=["fresh-sample", "stale-sample"],
)
def test_prometheus_load_uses_the_sample_timestamp(age: pd.Timedelta, stale: bool) -> None:
    """loadMaxAge must apply to Prometheus: the sample's own time, not the query (evaluation) time."""
    prom = FakePrometheus(250.0, (NOW - age).timestamp())
    observed = loop_mod.PrometheusLoad(prom, "job:recharge_requests:rate1m").current(NOW)
    assert observed.sampled_at == NOW - age and observed.sampled_at.tzinfo is not None
    assert observed.rate == 250.0
    assert prom.asked == [
        ("job:recharge_requests:rate1m", NOW),
        ("timestamp(job:recharge_requests:rate1m)", NOW),
    ]
    lp, _, _ = make(target=FakeTarget(replicas=10, floor=10), store=forecast(200))
    lp.deps.load = loop_mod.PrometheusLoad(prom, "job:recharge_requests:rate1m")
    result = lp.tick(NOW)
    assert result.decision is not None
    steps = {s.reason for s in result.decision.steps}
    assert ("ObservedLoadStale" in steps) == stale
    if stale:
        assert result.decision.replicas == 10  # a stale sample is blind: no scale-down


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (FakePrometheus(120.0, NOW.timestamp() - 90), NOW - pd.Timedelta("90s")),
        (FakePrometheus(120.0, NOW.timestamp() - 90, pairs=True), NOW - pd.Timedelta("90s")),
        (FakePrometheus(120.0, None), NOW),
        (FakePrometheus(120.0, None, pairs=True), NOW),
    ],
    ids=["float-api", "pair-api", "no-timestamp-falls-back", "pair-api-no-timestamp"],
)
def test_prometheus_load_accepts_both_instant_apis(source: FakePrometheus, expected: pd.Timestamp) -> None:
    observed = loop_mod.PrometheusLoad(source, "q").current(NOW)
    assert observed.rate == 120.0 and observed.sampled_at == expected


@pytest.mark.slow
@pytest.mark.prometheus
@pytest.mark.parametrize(
    ("template", "sample_time"),
    [("{m}", True), ("sum({m})", False), ("scalar({m})", False)],
    ids=["selector-has-its-sample-time", "aggregation-has-evaluation-time", "scalar-falls-back"],
)
def test_prometheus_load_age_with_a_real_prometheus(
    prom: PromServer, template: str, sample_time: bool
) -> None:
    """Against a real Prometheus: ``[ts, value]`` is the evaluation time; ``timestamp()`` the sample's."""
    from forecaster.adapters.prometheus import PrometheusConfig, PrometheusSource

    sample_at = prom.trace.index[5]
    asked_at = sample_at + pd.Timedelta("50s")  # inside the server's 1-minute lookback delta
    source = PrometheusSource(PrometheusConfig(url=prom.url))
    observed = loop_mod.PrometheusLoad(source, template.format(m=prom.metric)).current(asked_at)
    assert observed.rate == pytest.approx(prom.trace.iloc[5])
    assert observed.sampled_at == (sample_at if sample_time else asked_at)
    if sample_time:  # with loadMaxAge 40 s the 50 s old sample is stale: no scale-down on it
        cfg = config(load_max_age=Duration(40))
        from controller.core.decision import decide

        decision = decide(None, observed, ControllerState(replicas=10), cfg, asked_at)
        assert "ObservedLoadStale" in {s.reason for s in decision.steps} and decision.replicas >= 10


def test_prometheus_load_value_failure_is_not_retried_as_timestamp() -> None:
    class Down(FakePrometheus):
        def instant(self, query: str, at: pd.Timestamp) -> Any:
            self.asked.append((query, at))
            raise SourceError("prometheus: timed out")

    down = Down(0.0, None)
    with pytest.raises(SourceError):
        loop_mod.PrometheusLoad(down, "q").current(NOW)
    assert len(down.asked) == 1  # a down Prometheus costs one query's attempts, not two


@pytest.mark.parametrize(
    ("cap", "decided", "warning", "words"),
    [
        (5, None, True, ["accepts at most 5", "maxReplicas"]),
        (None, 0, False, ["cannot be below 1", "floor is 1"]),
    ],
    ids=["capped-by-hpa-max", "raised-to-hpa-minimum-1"],
)
def test_floor_clamped_message_says_what_happened(
    cap: int | None, decided: int | None, warning: bool, words: list[str]
) -> None:
    class ClampingTarget(FakeTarget):
        """Clamps like an HPA floor: at least 1, at most ``cap``."""

        last_applied: int | None = None

        def apply(self, replicas: int, annotation: str) -> None:
            written = max(1, replicas if cap is None else min(replicas, cap))
            super().apply(written, annotation)
            self.last_applied = written

    cfg = config(min_replicas=0) if decided == 0 else config()
    store = forecast(0.0) if decided == 0 else forecast(950)
    lp, _, events = make(
        store, load=0.0 if decided == 0 else 300.0, target=ClampingTarget(replicas=1, floor=1), cfg=cfg
    )
    for k in range(12):  # let a scale-down reach 0 after the stabilisation window
        lp.tick(NOW + pd.Timedelta(seconds=30 * k))
    clamps = [(m, w) for r, m, w in events.emitted if r == "FloorClamped"]
    assert len(clamps) == 1, events.emitted
    message, was_warning = clamps[0]
    assert was_warning == warning
    for word in words:
        assert word in message
    if decided == 0:
        assert "maxReplicas" not in message


@pytest.mark.parametrize(
    ("fault", "code"),
    [("store", 200), ("metrics", 200), ("state", 200), ("unavailable", 503), ("forbidden", 503)],
    ids=["store-degraded", "metrics-degraded", "state-degraded", "api-unavailable", "api-forbidden"],
)
def test_readyz_matches_the_module_docstring(fault: str, code: int) -> None:
    """Store, metrics and state faults leave the controller acting (200 degraded); API faults are 503."""
    import requests

    import controller.adapters.health as health_mod
    from controller.adapters.health import HealthServer

    state, metrics = HealthState(), ControllerMetrics()
    store: object = forecast(950)
    load: object = 300.0
    target = FakeTarget()

    class BrokenSave(MemoryStateStore):
        def save(self, s: object) -> None:
            raise StoreError("configmap payments/recharge-autoscaler-state: HTTP 409 conflict")

    state_store = BrokenSave() if fault == "state" else MemoryStateStore()
    if fault == "store":
        store = StoreError("configmap payments/f: HTTP 500")
    elif fault == "metrics":
        load = SourceError("prometheus: timed out")
    elif fault != "state":
        target.status_error = (KubeUnavailable if fault == "unavailable" else KubeForbidden)(f"{fault}!")
    deps = LoopDeps(
        store=FakeStore(store),  # type: ignore[arg-type]
        load=FakeLoad(load),  # type: ignore[arg-type]
        target=target,
        events=LogEventSink(),
        state_store=state_store,
        metrics=metrics,
        health=state,
    )
    ControlLoop(config(), deps).tick(NOW)
    server = HealthServer(state, metrics, host="127.0.0.1", health_port=0, metrics_port=0).start()
    try:
        resp = requests.get(f"http://127.0.0.1:{server.ports[0]}/readyz?verbose", timeout=5)
    finally:
        server.stop()
    assert resp.status_code == code
    assert resp.text.startswith("degraded: " if code == 200 else "")
    doc = " ".join((health_mod.__doc__ or "").split())
    assert (
        "degraded: <kind>: <fault>" in doc and "503 with the reason when the last tick could not act" in doc
    )


@pytest.mark.parametrize("kind", ["prometheus", "file"])
def test_negative_live_load_is_a_metrics_fault_not_a_real_rate(kind: str, tmp_path: Any) -> None:
    """Issue 10, item 5: a sample of -50 req/s was taken as 0 req/s and let the controller scale down."""
    from controller.loop import FileLoad, PrometheusLoad

    if kind == "prometheus":
        source: Any = PrometheusLoad(FakePrometheus(-50.0, NOW.timestamp()), "q")
    else:
        path = tmp_path / "load.csv"
        rows = [f"{(NOW - pd.Timedelta(minutes=m)).isoformat()},{v}" for m, v in ((2, 10), (1, -50))]
        path.write_text("ds,y\n" + "\n".join(rows) + "\n")
        source = FileLoad(str(path))
    with pytest.raises(SourceError, match=r"-50.*negative"):
        source.current(NOW)
    lp, target, _ = make(forecast(200), target=FakeTarget(replicas=10, floor=10))
    lp.deps.load = source
    result = lp.tick(NOW)
    assert result.decision is not None and result.decision.replicas == 10
    assert all(r >= 10 for r, _ in target.applied)
    assert metric(lp, "recharge_autoscaler_errors_total", kind="metrics") == 1
