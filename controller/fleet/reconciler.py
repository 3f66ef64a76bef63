"""The fleet controller: every PredictiveScaler in the watched namespaces, reconciled on one tick.

One process, one Lease, any number of scalers. Informers keep the scalers, their target Deployments and
HPAs, and the forecast ConfigMaps in memory, so a tick reads nothing from the API server: the only calls are
the writes a decision makes, the status of a scaler whose status changed, and Events. Each scaler has its
own :class:`~controller.loop.ControlLoop` (the same loop ``run`` drives for a single workload, with its
reads served from the caches, see :mod:`controller.adapters.cached`), its own memory and its own back-off,
so a broken scaler (bad spec, missing target, RBAC gap, failing writes) gets its own condition and never
stops the others. A spec edit (a new ``metadata.generation``) rebuilds that scaler's loop on the next
tick; a deleted scaler is forgotten, metrics included.

No finalizer: the controller owns nothing that must be cleaned up when a scaler goes away (the HPA floor
or replicas it last set stay, as they would if the controller stopped), so deleting a scaler never waits
on a running controller.

A scaler's memory (recommendation history, issued warm-ups) lives in the process. After a restart or a
failover the loop holds each target's current count for a full scale-down stabilisation window before it
may scale down (the safe direction); warm-ups are idempotent (their key), so a repeated one is harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from controller.adapters.cached import CachedForecastStore, CachedScaleTarget, scale_target_view
from controller.adapters.health import ControllerMetrics, HealthState
from controller.adapters.informer import CONFIGMAPS, DEPLOYMENTS, Informer, Kind, strip_bookkeeping
from controller.adapters.kube import KubeEventSink
from controller.adapters.statestore import MemoryStateStore
from controller.adapters.status import StatusWriter
from controller.config import ControllerConfig
from controller.fleet.spec import API_VERSION, GROUP, KIND, PLURAL, VERSION, controller_config, parse_spec
from controller.fleet.spec import forecast_config_map as forecast_name
from controller.fleet.status import build_status
from controller.loop import ControlLoop, LoopDeps, TickResult
from controller.ports import LeaderLock, LoadSource, WarmupClient
from forecaster.errors import ConfigError

log = logging.getLogger(__name__)

SCALERS = Kind(GROUP, VERSION, PLURAL)
HPAS = Kind("autoscaling", "v2", "horizontalpodautoscalers")
FORECAST_SELECTOR = "app.kubernetes.io/managed-by=recharge-autoscaler"
MAX_BACKOFF = 300.0


@dataclass
class FleetDeps:
    """What the fleet talks to. ``load_for`` builds a scaler's live-load source from its config."""

    api_client: Any
    load_for: Callable[[ControllerConfig], LoadSource]
    namespaces: list[str] | None = None  # None: every namespace
    warmup_for: Callable[[ControllerConfig], WarmupClient | None] = lambda cfg: None
    lock: LeaderLock | None = None
    metrics: ControllerMetrics = field(
        default_factory=lambda: ControllerMetrics(scope=("namespace", "scaler"))
    )
    health: HealthState = field(default_factory=HealthState)
    interval: float = 30.0


@dataclass
class FleetTick:
    """What one fleet tick did."""

    leader: bool
    scalers: int = 0
    acted: int = 0
    failed: int = 0
    invalid: int = 0
    skipped: int = 0
    status_writes: int = 0
    seconds: float = 0.0


@dataclass
class _Scaler:
    """One scaler's runtime: its parsed spec, its loop, what was last written to its status, its back-off."""

    uid: str
    generation: int
    spec: Any = None
    config: ControllerConfig | None = None
    error: str | None = None
    loop: ControlLoop | None = None
    store: CachedForecastStore | None = None
    written: dict[str, Any] | None = None
    failures: int = 0
    retry_at: pd.Timestamp | None = None


class FleetController:
    """Reconciles every scaler the scaler informer sees; call :meth:`tick` every ``interval``."""

    def __init__(self, deps: FleetDeps) -> None:
        self.deps = deps
        ns = deps.namespaces
        # The caches keep only what the loops read (managedFields, last-applied copies and pod templates are
        # most of the memory otherwise: docs/benchmarks.md, "Fleet controller").
        slim = strip_bookkeeping
        self.scalers = Informer(deps.api_client, SCALERS, namespaces=ns, transform=slim)
        self.deployments = Informer(deps.api_client, DEPLOYMENTS, namespaces=ns, transform=scale_target_view)
        self.hpas = Informer(deps.api_client, HPAS, namespaces=ns, transform=slim)
        self.configmaps = Informer(
            deps.api_client, CONFIGMAPS, namespaces=ns, label_selector=FORECAST_SELECTOR, transform=slim
        )
        self._informers = (self.scalers, self.deployments, self.hpas, self.configmaps)
        self._runtimes: dict[tuple[str, str], _Scaler] = {}
        self.status_writer = StatusWriter(deps.api_client, SCALERS)

    def start(self, *, wait: float = 60.0) -> FleetController:
        for inf in self._informers:
            inf.start()
        for inf in self._informers:
            if not inf.wait_synced(wait):
                log.warning("informer %s not synced after %.0fs: %s", inf.kind.plural, wait, inf.last_error)
        return self

    def stop(self) -> None:
        for inf in self._informers:
            inf.stop()

    @property
    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self._informers)

    def tick(self, now: pd.Timestamp) -> FleetTick:
        """One round over every scaler. Never raises for one scaler's faults."""
        t0 = time.perf_counter()
        d = self.deps
        leader = True
        if d.lock is not None:
            leader = d.lock.acquire_or_renew(now)
        d.metrics.leader.set(1 if leader else 0)
        out = FleetTick(leader=leader)
        if not leader:
            self._runtimes.clear()  # another replica acts: start from the cluster again when leading
            d.health.heartbeat()
            d.health.set_ready(True, "follower")
            return out
        if not self.synced:
            d.health.heartbeat()
            d.health.set_ready(False, "caches not synced yet")
            return out
        seen: set[tuple[str, str]] = set()
        for obj in self.scalers.items():
            meta = obj.get("metadata") or {}
            key = (str(meta.get("namespace")), str(meta.get("name")))
            seen.add(key)
            out.scalers += 1
            try:
                self._reconcile(key, obj, now, out)
            except Exception:  # one scaler's bug must not stop the fleet
                log.exception("scaler %s/%s: reconcile failed", *key)
                out.failed += 1
        for key in [k for k in self._runtimes if k not in seen]:
            del self._runtimes[key]
            d.metrics.forget(namespace=key[0], scaler=key[1])
        out.seconds = time.perf_counter() - t0
        d.health.heartbeat()
        d.health.set_ready(True, f"{out.scalers} scalers, {out.failed} failed, {out.invalid} invalid")
        return out

    # -- one scaler -----------------------------------------------------------------------------------------
    def _runtime(self, key: tuple[str, str], obj: dict[str, Any]) -> _Scaler:
        meta = obj.get("metadata") or {}
        uid, gen = str(meta.get("uid") or ""), int(meta.get("generation") or 0)
        rt = self._runtimes.get(key)
        if rt is not None and rt.uid == uid and rt.generation == gen:
            return rt
        new = _Scaler(uid=uid, generation=gen, written=rt.written if rt and rt.uid == uid else None)
        try:
            new.spec = parse_spec(obj.get("spec"))
            new.config = controller_config(new.spec, namespace=key[0])
        except ConfigError as exc:
            new.error = str(exc)
        else:
            new.loop, new.store = self._build_loop(key, uid, new.spec, new.config)
            if rt is not None and rt.loop is not None and rt.uid == uid and new.loop is not None:
                new.loop.state = rt.loop.state  # a spec edit keeps the memory (stabilisation, warm-ups)
        self._runtimes[key] = new
        return new

    def _build_loop(
        self, key: tuple[str, str], uid: str, spec: Any, cfg: ControllerConfig
    ) -> tuple[ControlLoop | None, CachedForecastStore]:
        ns, name = key
        d = self.deps
        store = CachedForecastStore(self.configmaps, namespace=ns, name=forecast_name(spec, name))
        if spec.mode == "forecastOnly":
            return None, store
        target_cfg = cfg.require_target()
        target = CachedScaleTarget(
            d.api_client, deployments=self.deployments, hpas=self.hpas if target_cfg.mode == "hpa" else None,
            namespace=ns, name=target_cfg.name, mode=target_cfg.mode, hpa_name=target_cfg.hpa_name,
            pause_annotation=cfg.pause_annotation, decision_annotation=cfg.decision_annotation,
        )
        involved = {"apiVersion": API_VERSION, "kind": KIND, "name": name, "uid": uid}
        deps = LoopDeps(
            store=store,
            load=d.load_for(cfg),
            target=target,
            events=KubeEventSink(d.api_client, namespace=ns, involved=involved),
            state_store=MemoryStateStore(),
            warmup=None if spec.mode == "dryRun" else d.warmup_for(cfg),
            lock=None,
            metrics=d.metrics.view(namespace=ns, scaler=name),
            health=HealthState(),
        )
        return ControlLoop(cfg, deps, dry_run=spec.mode == "dryRun"), store

    def _reconcile(
        self, key: tuple[str, str], obj: dict[str, Any], now: pd.Timestamp, out: FleetTick
    ) -> None:
        rt = self._runtime(key, obj)
        previous = rt.written if rt.written is not None else (obj.get("status") or {})
        mode = getattr(rt.spec, "mode", "hpa")
        paused = bool(getattr(rt.spec, "paused", False))
        result: TickResult | None = None
        forecast = None
        if rt.error is not None:
            out.invalid += 1
        elif rt.retry_at is not None and now < rt.retry_at:
            out.skipped += 1
            return
        else:
            forecast = self._forecast(rt)
            if rt.loop is not None and not paused:
                result = rt.loop.tick(now)
                self._backoff(rt, result, now)
                if result.outcome == "failed":
                    out.failed += 1
                elif result.applied:
                    out.acted += 1
        decision = result.decision if result is not None else None
        status = build_status(
            generation=rt.generation, now=now, mode=mode, paused=paused, spec_error=rt.error,
            outcome=result.outcome if result is not None else None,
            faults=result.faults if result is not None else (),
            decision=decision, current=decision.current if decision is not None else None,
            forecast=forecast,
            forecast_max_age=float(rt.config.forecast_max_age) if rt.config is not None else None,
            previous=previous,
        )
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        self.deps.metrics.set_ready(ready["status"] == "True", ready["reason"], namespace=key[0],
                                    scaler=key[1])
        if status != previous and self.status_writer.write(key[0], key[1], status):
            rt.written = status
            out.status_writes += 1

    def _forecast(self, rt: _Scaler) -> Any:
        try:
            return rt.store.read() if rt.store is not None else None
        except Exception:  # the loop reports the store fault; the status shows no forecast
            return None

    def _backoff(self, rt: _Scaler, result: TickResult, now: pd.Timestamp) -> None:
        if result.outcome != "failed":
            rt.failures, rt.retry_at = 0, None
            return
        rt.failures += 1
        delay = min(self.deps.interval * 2 ** (rt.failures - 1), MAX_BACKOFF)
        rt.retry_at = now + pd.Timedelta(seconds=delay)
