"""Wiring of ``recharge-autoscaler run``: builds the live loop's adapters from the config file and runs it.

This is the one place where the controller's clients are created (Kubernetes API client, Prometheus
session, warm-up HTTP session) and handed to :class:`controller.loop.ControlLoop`. ``--once`` runs a single
tick and exits (0, or 3 when the tick could not act); otherwise an APScheduler interval job ticks every
``controller.interval`` (never two ticks at once) and ``/healthz``, ``/readyz`` and ``/metrics`` are served
until SIGTERM/SIGINT, after which the leader lease is released so another replica takes over at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from controller.adapters.health import ControllerMetrics, HealthServer, HealthState
from controller.config import ControllerConfig
from controller.configfile import load_controller_config
from controller.loop import (
    ConfigMapStateStore,
    ControlLoop,
    FileLoad,
    LoopDeps,
    MemoryStateStore,
    PrometheusLoad,
    StateStore,
)
from controller.ports import EventSink, LoadSource
from forecaster.adapters.kube import pod_namespace
from forecaster.configbase import Duration, check, load_yaml, parse
from forecaster.errors import ConfigError
from forecaster.ports import ForecastStore

if TYPE_CHECKING:
    from forecaster.adapters.prometheus_config import PrometheusConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """The ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run the live controller: scale the target ahead of forecast load (or one tick with --once)",
        description="Run the predictive autoscaling controller against the configured Kubernetes target.",
    )
    add_arguments(parser)
    parser.set_defaults(func=main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="YAML config file with the controller section (and store/source sections)",
    )
    parser.add_argument("--once", action="store_true", help="run one control tick and exit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="decide and report, but never change the target, issue warm-ups or persist state",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        default=None,
        help="kubeconfig file (default: in-cluster service account, else $KUBECONFIG / ~/.kube/config)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current context)")


def _resolve(base: Path, path: str) -> str:
    p = Path(os.path.expanduser(path))
    return os.path.normpath(p if p.is_absolute() else base / p)


def build_store(raw: dict[str, Any], base: Path, api_client: Any, default_ns: str) -> ForecastStore:
    """The forecast store the job writes to (top-level ``store`` section of the same file).

    ``default_ns`` is the namespace of a ConfigMap store whose ``namespace`` is unset: the pod's namespace,
    or "default" outside a cluster (:func:`pod_namespace`), as for the job.
    """
    from forecaster.job.config import StoreConfig

    check(
        "store" in raw, "store", "section is required by `run` (where the forecast job writes the forecast)"
    )
    store = parse(StoreConfig, raw["store"], "store")
    if store.file is not None:
        store = store.evolve(file=store.file.evolve(path=_resolve(base, store.file.path)))
    from forecaster.adapters.store import open_store

    return open_store(store, api_client=api_client, default_namespace=default_ns)


def build_load(cfg: ControllerConfig, raw: dict[str, Any], base: Path) -> LoadSource:
    """The live load: a Prometheus instant query on ``source.prometheus``, or the last value of a file."""
    load = cfg.require_load()
    if load.kind == "file":
        assert load.path is not None
        return FileLoad(
            _resolve(base, load.path), time_column=load.time_column, value_column=load.value_column
        )
    from forecaster.adapters.prometheus import PrometheusSource
    from forecaster.adapters.prometheus_config import PrometheusConfig, with_env_overrides

    prom = (raw.get("source") or {}).get("prometheus")
    check(
        prom is not None,
        "source.prometheus",
        "is required when controller.load.kind is prometheus (the connection the live query uses)",
    )
    pcfg = with_env_overrides(parse(PrometheusConfig, prom, "source.prometheus"), os.environ)
    assert load.query is not None
    return PrometheusLoad(PrometheusSource(live_load_connection(pcfg, float(cfg.interval))), load.query)


def live_load_connection(pcfg: PrometheusConfig, interval: float) -> PrometheusConfig:
    """``source.prometheus`` bounded for the live load: every attempt of both queries ends inside one tick.

    The forecast job's history queries may wait and retry (30 s timeout, 3 retries by default); the live
    load may not: a hung Prometheus would stretch every tick to minutes and delay scale-ups. A tick makes
    up to two instant queries (the value and its ``timestamp()``, see :class:`PrometheusLoad`). Each attempt
    gets at most a fifth of the interval in all (connect and the whole reply), with at most one retry after
    at most a twentieth of the interval (and at most 1 s), so the worst case is 0.9 x interval and an
    unreachable Prometheus yields "load missing" (no scale-down) within the tick.
    """
    budget = interval / 5
    connect = min(float(pcfg.connect_timeout), budget / 2)
    read = min(float(pcfg.timeout), budget - connect)
    backoff = min(float(pcfg.backoff), 1.0, interval / 20)
    return pcfg.evolve(
        timeout=Duration(read),
        connect_timeout=Duration(connect),
        retries=min(pcfg.retries, 1),
        backoff=Duration(backoff),
        max_backoff=Duration(backoff),
    )


def build_loop(args: argparse.Namespace, cfg: ControllerConfig, api_client: Any) -> ControlLoop:
    """All adapters for ``cfg`` around ``api_client`` (a kubernetes ``ApiClient``; tests pass their own)."""
    from controller.adapters.kube import KubeEventSink, KubeScaleTarget, LogEventSink
    from controller.adapters.lease import LeaseLock

    cfg.check_runnable()
    target_cfg = cfg.require_target()
    ns = target_cfg.namespace
    raw = load_yaml(args.config)
    base = Path(args.config).resolve().parent
    dry_run = bool(args.dry_run or cfg.dry_run)
    events: EventSink
    state_store: StateStore
    if dry_run:
        events, state_store = LogEventSink(), MemoryStateStore()
    else:
        if target_cfg.mode == "hpa":
            involved = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": target_cfg.hpa,
            }
        else:
            involved = {"apiVersion": "apps/v1", "kind": "Deployment", "name": target_cfg.name}
        events = KubeEventSink(api_client, namespace=ns, involved=involved)
        state_store = ConfigMapStateStore(
            api_client, namespace=ns, name=f"{cfg.leader_election.lease_name}-state"
        )
    le = cfg.leader_election
    lock = None
    if le.enabled and not dry_run:  # a dry run never acts, so it need not (and must not) take the lease
        lock = LeaseLock(
            api_client,
            namespace=le.lease_namespace or ns,
            name=le.lease_name,
            lease_duration=float(le.lease_duration),
            renew_deadline=float(le.renew_deadline),
        )
    warmup = None
    if cfg.warmup.enabled and not dry_run:
        from controller.adapters.warmup_client import HttpWarmupClient

        warmup = HttpWarmupClient.from_config(cfg.warmup)
    deps = LoopDeps(
        store=build_store(raw, base, api_client, pod_namespace()),
        load=build_load(cfg, raw, base),
        target=KubeScaleTarget.from_config(api_client, cfg),
        events=events,
        state_store=state_store,
        warmup=warmup,
        lock=lock,
        metrics=ControllerMetrics(),
        health=HealthState(stale_after=5 * float(cfg.interval) + 60),
    )
    return ControlLoop(cfg, deps, dry_run=dry_run)


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def run_forever(
    loop: ControlLoop, *, stop: threading.Event, health_port: int, metrics_port: int, host: str = "0.0.0.0"
) -> None:
    """Tick every ``interval`` until ``stop`` is set, serving probes and metrics; then release the lease.

    A port that cannot be bound is a :class:`ConfigError` naming the port and its setting.
    """
    from controller.adapters.scheduler import run_until

    server = HealthServer(
        loop.deps.health, loop.deps.metrics, host=host, health_port=health_port, metrics_port=metrics_port
    ).start()
    lock = loop.deps.lock
    log.info(
        "controller running: tick every %gs, probes on :%d, metrics on :%d",
        float(loop.config.interval),
        *server.ports,
    )
    try:
        run_until(
            stop, name="control-loop", tick=lambda: loop.tick(_now()), interval=float(loop.config.interval),
            renew=(lambda: lock.acquire_or_renew(_now())) if lock is not None else None,
            retry_period=float(loop.config.leader_election.retry_period),
        )
    finally:
        if loop.deps.lock is not None:
            loop.deps.lock.release()
        server.stop()
        log.info("controller stopped")


def main(args: argparse.Namespace) -> int:
    from forecaster.adapters.kube import load_api_client

    cfg = load_controller_config(args.config)
    try:
        cfg.check_runnable()  # config mistakes first, before any credentials are needed
    except ConfigError as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    api_client = load_api_client(args.kubeconfig, args.context)
    try:
        loop = build_loop(args, cfg, api_client)
    except ConfigError as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    if args.once:
        result = loop.tick(_now())
        if loop.deps.lock is not None:
            loop.deps.lock.release()
        if result.decision is not None:
            print(result.decision.explain())
        print(f"outcome: {result.outcome}" + (f" ({'; '.join(result.faults)})" if result.faults else ""))
        return 3 if result.outcome == "failed" else 0
    from controller.adapters.scheduler import stop_on_signals

    stop = stop_on_signals("tick")
    run_forever(
        loop, stop=stop, health_port=cfg.health_port, metrics_port=cfg.metrics_port, host=cfg.bind_address
    )
    sys.stdout.flush()
    return 0
