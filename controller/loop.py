"""The live control loop: every tick, read forecast, load and target, decide, act, report.

:class:`ControlLoop` owns no clients: the ``run`` subcommand (:mod:`controller.cli.run`) builds the adapters
and passes them in as :class:`LoopDeps`, and tests pass fakes. One :meth:`ControlLoop.tick`:

1. leader election (followers only report readiness);
2. the stored forecast (unreadable -> the stale-forecast path of :func:`controller.core.decision.decide`);
3. the live load (unavailable -> decide() refuses to scale down while blind);
4. the target's status (API error -> no change this tick, ``/readyz`` 503, retried next tick);
5. :func:`controller.core.decision.decide`, then unless dry-run or paused: apply, Events, warm-ups;
6. persist the controller state (issued warm-up keys, recommendation history) so a restart neither repeats
   warm-ups nor forgets its stabilisation window. A warm-up call that failed is forgotten, so the next tick
   retries it while it is still due.

A dry run makes the decisions the live controller would make for the same inputs: it keeps its state in
memory across ticks and, since it never changes the target, takes its own last decision as the current
count (the live loop reads back what it wrote).

Every fault degrades toward "not fewer replicas than reality needs" and is counted by kind in ``/metrics``.

The state stores live in :mod:`controller.adapters.statestore` and the live load sources in
:mod:`controller.adapters.liveload`; both are re-exported here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import pandas as pd

from controller.adapters.health import ControllerMetrics, HealthState
from controller.adapters.liveload import FileLoad, PrometheusLoad
from controller.adapters.statestore import ConfigMapStateStore, MemoryStateStore, StateStore
from controller.config import ControllerConfig
from controller.core.decision import Decision, decide
from controller.core.state import ControllerState
from controller.ports import (
    EventSink,
    LeaderLock,
    LoadSource,
    ObservedLoad,
    ScaleTarget,
    TargetStatus,
    WarmupClient,
)
from forecaster.artifact import ForecastArtifact
from forecaster.errors import OperationalError
from forecaster.ports import ForecastStore

__all__ = [
    "ConfigMapStateStore", "ControlLoop", "FileLoad", "LoopDeps", "MemoryStateStore", "PrometheusLoad",
    "StateStore", "TickResult",
]

log = logging.getLogger(__name__)


@dataclass
class LoopDeps:
    """Everything the loop talks to; each is a narrow Protocol so tests can pass fakes."""

    store: ForecastStore
    load: LoadSource
    target: ScaleTarget
    events: EventSink
    state_store: StateStore
    warmup: WarmupClient | None = None
    lock: LeaderLock | None = None
    metrics: ControllerMetrics = field(default_factory=ControllerMetrics)
    health: HealthState = field(default_factory=HealthState)


@dataclass(frozen=True)
class TickResult:
    """What one tick did. ``outcome``: acted, unchanged, dry_run, paused, follower or failed."""

    outcome: str
    decision: Decision | None = None
    applied: bool = False
    faults: tuple[str, ...] = ()
    warmups: tuple[tuple[str, bool], ...] = ()


class ControlLoop:
    """One controller replica's loop. Call :meth:`tick` periodically (``run`` uses APScheduler)."""

    def __init__(self, config: ControllerConfig, deps: LoopDeps, *, dry_run: bool = False) -> None:
        self.config, self.deps = config, deps
        self.dry_run = dry_run or config.dry_run
        self.state: ControllerState | None = None  # loaded on (re)gaining leadership
        self._warned: frozenset[str] = frozenset()
        self._last_reason: str | None = None
        self._paused = False
        self._clamped: int | None = None
        self._just_loaded = False  # memory (re)loaded: hold the current count for a scale-down window
        mode = config.target.mode if config.target is not None else "scale"
        self.hpa_mode = mode == "hpa"
        target = config.target
        self.scaler = f"{target.namespace}/{target.name}" if target is not None else "target"
        deps.metrics.dry_run.set(1 if self.dry_run else 0)

    def _fault(self, faults: list[str], kind: str, exc: BaseException) -> None:
        self.deps.metrics.errors.labels(kind=kind).inc()
        faults.append(f"{kind}: {exc}")
        log.warning("%s fault: %s", kind, exc)

    def tick(self, now: pd.Timestamp) -> TickResult:
        """One control step at ``now`` (tz-aware). Never raises for faults of dependencies."""
        d, m = self.deps, self.deps.metrics
        faults: list[str] = []
        try:
            result = self._tick(pd.Timestamp(now), faults)
        except Exception as exc:  # a bug must not kill the loop; it shows up in /readyz and errors_total
            log.exception("control loop tick failed")
            self._fault(faults, "internal", exc)
            result = TickResult("failed", faults=tuple(faults))
        m.ticks.labels(outcome=result.outcome).inc()
        d.health.heartbeat()
        if result.outcome == "failed":
            d.health.set_ready(False, "; ".join(result.faults) or "tick failed", status="failed")
        else:
            degraded = [f for f in result.faults if not f.startswith("events:")]
            d.health.set_ready(
                True,
                ("degraded: " + "; ".join(degraded)) if degraded else result.outcome,
                status="degraded" if degraded else result.outcome,
            )
        m.last_tick.set(pd.Timestamp(now).timestamp())
        return result

    def _tick(self, now: pd.Timestamp, faults: list[str]) -> TickResult:
        d, m, cfg = self.deps, self.deps.metrics, self.config
        if d.lock is not None:
            leader = d.lock.acquire_or_renew(now)
            m.leader.set(1 if leader else 0)
            if not leader:
                self.state = None  # reload when leadership comes back: another replica may have acted
                err = getattr(d.lock, "last_error", None)
                if err is not None:
                    self._fault(faults, getattr(err, "kind", "lease"), err)
                    return TickResult("failed", faults=tuple(faults))
                return TickResult("follower")
        else:  # no Lease: the only replica acts, unless it runs dry (then it leads nothing)
            m.leader.set(0 if self.dry_run else 1)
        if self.state is None:
            self.state = self._load_state(faults)

        forecast = self._read_forecast(now, faults)
        observed = self._read_load(now, faults)
        try:
            status = d.target.status()
        except OperationalError as exc:
            self._fault(faults, getattr(exc, "kind", "api"), exc)
            return TickResult("failed", faults=tuple(faults))
        self._observe_status(status)

        current = status.floor if self.hpa_mode and status.floor is not None else status.replicas
        if self.dry_run and self.state.replicas is not None:
            # Nothing is ever written, so the target still shows the count from before the dry run. The live
            # controller would now be at its own last decision: decide from there, with the same memory.
            current = self.state.replicas
        if self._just_loaded:
            # Started, failed over or regained leadership: whatever was saved may be lost, old or missing
            # what another replica did, so the count seen now is held for a whole scale-down window.
            window = cfg.behavior.scale_down.stabilization_window_seconds
            self.state = self.state.held_after_restart(current, now, window)
            self._just_loaded = False
        state = self.state.with_replicas(current)
        decision = decide(forecast, observed, state, cfg, now)
        m.desired_replicas.set(decision.replicas)
        m.needed_replicas.set(math.nan if decision.observed_need is None else decision.observed_need)
        m.decisions.labels(reason=decision.reason).inc()
        self._log_decision(decision, forecast)

        if status.paused:  # the live loop would not act, so neither does a dry run: memory unchanged
            if not self._paused:
                d.events.emit(
                    "Paused",
                    f"{cfg.pause_annotation} is set; would request {decision.replicas} "
                    f"replicas ({decision.reason}) but leaves the target alone",
                )
            self._paused = True
            self.state = state  # nothing was applied: keep the old memory
            return TickResult("paused", decision, faults=tuple(faults))
        if self.dry_run:
            # Same memory as the live loop (stabilisation history, rate-limit events, warm-up keys), kept in
            # this process only: a dry run never writes the state ConfigMap.
            self._paused = False
            self.state = decision.state
            self._report_dry_run(decision)
            return TickResult("dry_run", decision, faults=tuple(faults))
        self._paused = False

        applied = False
        if decision.changed or decision.reason != self._last_reason:
            try:
                d.target.apply(decision.replicas, decision.annotation())
                applied = True
            except OperationalError as exc:
                self._fault(faults, getattr(exc, "kind", "api"), exc)
                return TickResult("failed", decision, faults=tuple(faults))
            self._last_reason = decision.reason
            self._check_clamp(decision)
        self._report(decision, faults)
        warmups = self._warm(decision)
        state = decision.state
        for key, ok in warmups:
            if not ok:  # not delivered: forget the key so the next tick retries while the warm-up is due
                state = state.forget_warmup(key)
        self.state = state
        try:
            d.state_store.save(state)
        except (OperationalError, OSError) as exc:
            self._fault(faults, "state", exc)
        outcome = "acted" if decision.changed else "unchanged"
        return TickResult(outcome, decision, applied, tuple(faults), warmups)

    def _log_decision(self, decision: Decision, forecast: ForecastArtifact | None) -> None:
        """One line per decision, its numbers also as fields (JSON logs: scaler, from, to, reason, ...);
        the step-by-step explanation at DEBUG."""
        fields = {
            "scaler": self.scaler,
            "from": decision.current,
            "to": decision.replicas,
            "reason": decision.reason,
            "mode": decision.mode,
            "forecast_peak": decision.forecast_peak,
            "observed_load": decision.observed_rate,
            "forecast_created": forecast.created_at.isoformat() if forecast is not None else None,
            "dry_run": self.dry_run,
        }
        log.info("%s: %s -> %s replicas: %s: %s", self.scaler, decision.current, decision.replicas,
                 decision.reason, decision.message, extra=fields)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", decision.explain())

    def _report_dry_run(self, decision: Decision) -> None:
        """What the live controller would have changed, as a log line (a dry run writes no Events)."""
        if decision.changed and decision.current is not None:
            what = "HPA minReplicas" if self.hpa_mode else "replicas"
            log.info(
                "dry run: would set %s %d -> %d: %s: %s",
                what,
                decision.current,
                decision.replicas,
                decision.reason,
                decision.message,
            )

    def _check_clamp(self, decision: Decision) -> None:
        """Report once per value when the target took a different count than decided, saying why."""
        written = getattr(self.deps.target, "last_applied", None)
        if written is None or written == decision.replicas:
            self._clamped = None
            return
        if self._clamped != written:
            if written > decision.replicas:
                # Only the HPA does this: its minReplicas cannot be below 1 (scale to zero needs scale mode).
                self.deps.events.emit(
                    "FloorClamped",
                    f"decided {decision.replicas} replicas but an HPA's minReplicas cannot be below 1, so "
                    f"the floor is {written}; the HPA keeps at least {written} replica(s). Use target.mode "
                    "scale to go below 1, or set controller.minReplicas to 1",
                )
            else:
                self.deps.events.emit(
                    "FloorClamped",
                    f"decided {decision.replicas} replicas but the target accepts at most {written}: raise "
                    "the HPA's maxReplicas (or lower controller.maxReplicas)",
                    warning=True,
                )
        self._clamped = written

    def _load_state(self, faults: list[str]) -> ControllerState:
        """The persisted memory, or an empty one when there is none or it cannot be read.

        Either way the first decision after it holds the current count for one full scale-down
        stabilisation window (:meth:`ControllerState.held_after_restart`): a missing, unreadable or old
        history must not allow a scale-down the real history would have held. Scale-ups are not delayed.
        """
        self._just_loaded = True
        try:
            return self.deps.state_store.load() or ControllerState()
        except (OperationalError, OSError) as exc:
            self._fault(faults, "state", exc)
            log.warning(
                "%s could not be read: starting with an empty controller state; no scale-down for one "
                "scale-down stabilisation window, and a warm-up already issued may be repeated",
                self.deps.state_store.describe(),
            )
            return ControllerState()

    def _read_forecast(self, now: pd.Timestamp, faults: list[str]) -> ForecastArtifact | None:
        try:
            forecast = self.deps.store.read()
        except (OperationalError, OSError) as exc:
            self._fault(faults, "store", exc)
            forecast = None
        age = forecast.age(now).total_seconds() if forecast is not None else math.nan
        self.deps.metrics.forecast_age.set(age)
        wape = (forecast.backtest or {}).get("wape") if forecast is not None else None
        self.deps.metrics.forecast_backtest_wape.set(math.nan if wape is None else float(wape))
        return forecast

    def _read_load(self, now: pd.Timestamp, faults: list[str]) -> ObservedLoad | None:
        try:
            observed = self.deps.load.current(now)
        except (OperationalError, OSError) as exc:
            self._fault(faults, "metrics", exc)
            return None
        self.deps.metrics.observed_load.set(observed.rate)
        return observed

    def _observe_status(self, status: TargetStatus) -> None:
        m = self.deps.metrics
        m.current_replicas.set(status.replicas)
        m.ready_replicas.set(status.ready_replicas)
        if status.floor is not None:
            m.hpa_floor.set(status.floor)

    def _report(self, decision: Decision, faults: list[str]) -> None:
        d = self.deps
        what = "HPA minReplicas" if self.hpa_mode else "replicas"
        if decision.changed and decision.current is not None:
            up = decision.replicas > decision.current
            d.metrics.scale_changes.labels(direction="up" if up else "down").inc()
            d.events.emit(
                "ScaledUp" if up else "ScaledDown",
                f"{what} {decision.current} -> {decision.replicas}: {decision.reason}: {decision.message}",
            )
        warned = frozenset(s.reason for s in decision.warnings)
        for step in decision.warnings:
            if step.reason not in self._warned:
                d.events.emit(step.reason, step.message, warning=True)
        self._warned = warned
        failures = getattr(d.events, "failures", 0)
        if failures:
            faults.append(f"events: {failures} Event(s) could not be recorded")

    def _warm(self, decision: Decision) -> tuple[tuple[str, bool], ...]:
        d = self.deps
        out = []
        for w in decision.warmups:
            if d.warmup is None:
                break
            ok = d.warmup.warm(w.key, w.replicas, w.reason)  # never raises; at most once per key
            d.metrics.warmups.labels(result="ok" if ok else "failed").inc()
            out.append((w.key, ok))
        return tuple(out)
