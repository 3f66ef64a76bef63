"""``recharge-autoscaler fleet``: run the fleet controller, or print the PredictiveScaler CRD.

The wiring of :class:`controller.fleet.reconciler.FleetController`: the Kubernetes client, the Lease, the
Prometheus connection every scaler's live-load query uses (``source.prometheus`` of the config file), the
probes and metrics server, and the periodic tick. ``--once`` syncs the caches, runs one round and prints
one line per scaler (exit 3 when a scaler failed). ``--print-crd`` writes the CRD as YAML (what the Helm
chart ships in ``crds/``). ``--migrate-config FILE`` prints the PredictiveScaler for the ``controller``
section of a single-workload config file: the one-command migration to the fleet.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import pandas as pd

from controller.adapters.health import ControllerMetrics, HealthServer, HealthState
from controller.adapters.liveload import PrometheusLoad
from controller.config import ControllerConfig, FleetConfig
from controller.configfile import load_config
from controller.ports import LoadSource
from forecaster.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fleet",
        help="run the fleet controller: scale every PredictiveScaler in the watched namespaces",
        description="Reconcile every PredictiveScaler custom resource in the namespaces of the config's "
        "fleet section (all when empty): one Lease, informer caches, one control loop per scaler.",
    )
    p.add_argument("--config", metavar="FILE",
                   help="YAML config with the fleet section and source.prometheus")
    p.add_argument("--namespace", action="append", default=[], metavar="NS",
                   help="watch this namespace (repeatable; overrides fleet.namespaces)")
    p.add_argument("--once", action="store_true", help="sync, run one round, print each scaler, exit")
    p.add_argument("--kubeconfig", metavar="FILE", default=None,
                   help="kubeconfig file (default: in-cluster service account, else $KUBECONFIG)")
    p.add_argument("--context", default=None, help="kubeconfig context (default: current context)")
    p.add_argument("--print-crd", action="store_true", help="print the PredictiveScaler CRD as YAML and exit")
    p.add_argument("--migrate-config", metavar="FILE", default=None,
                   help="print the PredictiveScaler that scales what the controller section of this "
                   "single-workload config file scales (kubectl apply -f - takes it), and exit")
    p.set_defaults(func=main)


def print_crd() -> int:
    import yaml

    from controller.fleet.spec import crd

    sys.stdout.write(yaml.safe_dump(crd(), sort_keys=False, width=110))
    return 0


def migrate_config(path: str) -> int:
    """Print the PredictiveScaler for the ``controller`` section of the config file at ``path``.

    The scaler carries every per-workload field (:func:`controller.fleet.spec.scaler_manifest`), plus the
    file's history query, calendar and forecast ConfigMap name; what is one per fleet (interval, Lease,
    ports, annotations) is listed on stderr when it differs from the default, for the fleet's own config.
    """
    import yaml

    from controller.fleet.spec import PROCESS_FIELDS, scaler_manifest

    file = load_config(path, os.environ)
    cfg = file.require_controller()
    cfg.require_target()
    prom = file.source.prometheus if file.source is not None else None
    store = file.store.configmap if file.store is not None else None
    manifest = scaler_manifest(
        cfg, history_query=prom.query or None if prom is not None else None,
        calendar=file.forecast.calendar, forecast_map=store.name if store is not None else None,
    )
    defaults = ControllerConfig(capacity_per_replica=cfg.capacity_per_replica)
    kept = sorted(
        ControllerConfig.model_fields[f].alias or f for f in PROCESS_FIELDS
        if f in ControllerConfig.model_fields and f != "target" and f != "dry_run"
        and getattr(cfg, f) != getattr(defaults, f)
    )
    if kept:
        sys.stderr.write(f"note: controller.{', controller.'.join(kept)}: one per fleet, not per scaler; "
                         "set them in the fleet's config (fleet section)\n")
    target_ns = cfg.require_target().namespace
    if store is not None and store.namespace and target_ns and store.namespace != target_ns:
        sys.stderr.write(f"note: the forecast ConfigMap is in {store.namespace}; the fleet reads a scaler's "
                         f"forecast from the scaler's own namespace ({target_ns})\n")
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False, width=110))
    return 0


def _load_factory(raw_prometheus: Any, interval: float) -> Any:
    """A function from a scaler's config to its live-load source (one shared Prometheus connection)."""
    if raw_prometheus is None:
        def missing(cfg: ControllerConfig) -> LoadSource:
            raise ConfigError("source.prometheus: required by the fleet (every scaler's live-load query)")
        return missing
    from controller.cli.run import live_load_connection
    from forecaster.adapters.prometheus import PrometheusSource

    source = PrometheusSource(live_load_connection(raw_prometheus, interval))

    def build(cfg: ControllerConfig) -> LoadSource:
        load = cfg.require_load()
        if load.kind != "prometheus" or not load.query:
            raise ConfigError("spec.load: the fleet reads live load from Prometheus: set spec.load.query")
        return PrometheusLoad(source, load.query)

    return build


def _warmup_client(cfg: ControllerConfig) -> Any:
    """A scaler's warm-up client when its spec enables warm-ups with a URL (as ``run`` builds one)."""
    if not (cfg.warmup.enabled and cfg.warmup.url):
        return None
    from controller.adapters.warmup_client import HttpWarmupClient

    return HttpWarmupClient.from_config(cfg.warmup)


def main(args: argparse.Namespace) -> int:
    if args.print_crd:
        return print_crd()
    if args.migrate_config:
        return migrate_config(args.migrate_config)
    if not args.config:
        raise ConfigError("--config: required (the file with the fleet section and source.prometheus)")
    file = load_config(args.config, os.environ)
    fleet: FleetConfig = file.fleet or FleetConfig()
    namespaces = args.namespace or list(fleet.namespaces) or None
    from controller.fleet.reconciler import FleetController, FleetDeps
    from forecaster.adapters.kube import load_api_client, pod_namespace

    prom = file.source.prometheus if file.source is not None else None
    api_client = load_api_client(args.kubeconfig, args.context)
    le = fleet.leader_election
    lock = None
    if le.enabled:
        from controller.adapters.lease import LeaseLock

        lock = LeaseLock(api_client, namespace=le.lease_namespace or pod_namespace(), name=le.lease_name,
                         lease_duration=float(le.lease_duration), renew_deadline=float(le.renew_deadline))
    deps = FleetDeps(
        api_client=api_client, namespaces=namespaces, load_for=_load_factory(prom, float(fleet.interval)),
        lock=lock, health=HealthState(stale_after=5 * float(fleet.interval) + 60),
        interval=float(fleet.interval), warmup_for=_warmup_client,
    )
    controller = FleetController(deps).start()
    try:
        if args.once:
            return _once(controller)
        _forever(controller, fleet)
        return 0
    finally:
        controller.stop()
        if lock is not None:
            lock.release()


def _once(controller: Any) -> int:
    tick = controller.tick(pd.Timestamp.now(tz="UTC"))
    print(f"leader: {tick.leader}; scalers: {tick.scalers}, acted: {tick.acted}, failed: {tick.failed}, "
          f"invalid: {tick.invalid}, status writes: {tick.status_writes}, {tick.seconds * 1000:.0f} ms")
    return 3 if tick.failed else 0


def _forever(controller: Any, fleet: FleetConfig) -> None:
    from controller.adapters.scheduler import run_until, stop_on_signals

    deps = controller.deps
    metrics: ControllerMetrics = deps.metrics
    server = HealthServer(
        deps.health, metrics, host=fleet.bind_address, health_port=fleet.health_port,
        metrics_port=fleet.metrics_port, settings=("fleet.healthPort", "fleet.metricsPort"),
    ).start()
    lock = deps.lock
    stop = stop_on_signals("round")
    log.info("fleet controller running: a round every %gs", float(fleet.interval))
    try:
        run_until(
            stop, name="fleet", tick=lambda: controller.tick(pd.Timestamp.now(tz="UTC")),
            interval=float(fleet.interval),
            renew=(lambda: lock.acquire_or_renew(pd.Timestamp.now(tz="UTC"))) if lock is not None else None,
            retry_period=float(fleet.leader_election.retry_period),
        )
    finally:
        server.stop()

