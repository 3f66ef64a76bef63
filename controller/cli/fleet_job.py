"""``recharge-autoscaler forecast-job --fleet``: forecast every PredictiveScaler, one artifact each.

The wiring of :func:`controller.fleet.forecast_job.forecast_fleet`: the Kubernetes client (``--kubeconfig``
/ ``--context``, else the pod's service account), the watched namespaces (``--namespace``, else the config
file's ``fleet.namespaces``, else all), the Prometheus connection (``source.prometheus``; each scaler's
``spec.history.query`` runs on it), the engine (``--workers N`` local processes, ``--dask-scheduler ADDR``,
in-process for a single series), and the clock. With ``--once`` it runs once, prints one line per scaler
and exits 0 when every scaler with a history query got its forecast, 3 when any failed (the others are
written); without, it runs on ``schedule.cron`` and serves the job's metrics, with the per-run counts.
"""

from __future__ import annotations

import argparse
import logging
import math
import textwrap
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from controller.configfile import ConfigFile
from forecaster.engine import Engine
from forecaster.errors import ConfigError, UserError
from forecaster.job.fleet import FleetRun

if TYPE_CHECKING:
    from forecaster.job.config import ScheduleConfig
    from forecaster.job.metrics import JobMetrics

log = logging.getLogger(__name__)


def add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fleet (every PredictiveScaler in the watched namespaces)")
    g.add_argument("--fleet", action="store_true",
                   help="forecast every PredictiveScaler's spec.history.query and write each scaler's own "
                   "forecast ConfigMap (needs source.prometheus; no store section)")
    g.add_argument("--namespace", action="append", default=[], metavar="NS",
                   help="with --fleet: read the scalers of this namespace (repeatable; overrides "
                   "fleet.namespaces; default all)")
    g.add_argument("--workers", metavar="N", type=int, default=None,
                   help="with --fleet: local worker processes (default: the cores this process may use; "
                   "1 = in-process)")
    g.add_argument("--dask-scheduler", metavar="ADDR", default=None,
                   help="with --fleet: run the series on this Dask scheduler, e.g. tcp://dask-scheduler:8786")
    g.add_argument("--kubeconfig", metavar="FILE", default=None,
                   help="with --fleet: kubeconfig file (default: in-cluster service account, else "
                   "$KUBECONFIG)")
    g.add_argument("--context", default=None, help="with --fleet: kubeconfig context (default: current)")


def check_fleet_flags(args: argparse.Namespace) -> None:
    """The fleet-only flags make no sense without --fleet: say so instead of ignoring them."""
    if args.fleet:
        if args.workers is not None and args.workers < 1:
            raise UserError(f"--workers: must be at least 1, got {args.workers}")
        return
    for flag, value in (("--namespace", args.namespace), ("--workers", args.workers),
                        ("--dask-scheduler", args.dask_scheduler), ("--kubeconfig", args.kubeconfig),
                        ("--context", args.context)):
        if value:
            raise UserError(f"{flag}: only with --fleet")


def engine_factory(workers: int | None, dask_scheduler: str | None) -> Any:
    """The engine for a run of ``n`` series: Dask when asked, else processes (one series: in-process)."""
    from forecaster.engine import make_engine

    def engine_for(n: int) -> Engine:
        if workers is None and not dask_scheduler and n < 2:
            return make_engine(1)
        return make_engine(workers, dask_scheduler)

    return engine_for


def fleet_main(args: argparse.Namespace, file: ConfigFile) -> int:
    from controller.cli.progress import Progress
    from controller.config import FleetConfig
    from controller.fleet.forecast_job import forecast_fleet
    from forecaster.adapters.kube import load_api_client

    prometheus = file.fleet_prometheus()
    if file.store is not None:
        log.info("store section ignored with --fleet: each scaler's forecast goes to its own ConfigMap")
    fleet = file.fleet or FleetConfig()
    namespaces = args.namespace or list(fleet.namespaces) or None
    api_client = load_api_client(args.kubeconfig, args.context)
    engine_for = engine_factory(args.workers, args.dask_scheduler)

    def cycle(progress: Progress) -> FleetRun:
        progress.stage("reading, backtesting and forecasting every scaler")
        return forecast_fleet(
            api_client, forecast=file.forecast, prometheus=prometheus, namespaces=namespaces,
            engine_for=engine_for, now=_now(),
            progress=lambda done, total: progress.step(done, total, f"{done}/{total} series"),
        )

    if args.once:
        with Progress("forecast-job --fleet") as progress:
            run = cycle(progress)
        from forecaster.job.fleet import log_fleet_run

        log_fleet_run(run)
        print(format_fleet_summary(run, namespaces))
        return 3 if run.failed else 0
    return _scheduled(file, lambda: cycle(Progress("forecast-job --fleet", log=log)))


def _now() -> pd.Timestamp:
    """The clock of each fleet run (its history windows end here; stored as each artifact's created_at)."""
    return pd.Timestamp.now(tz="UTC")


def _scheduled(file: ConfigFile, run_one: Callable[[], FleetRun]) -> int:
    from forecaster.job.metrics import JobMetrics

    metrics = JobMetrics()
    if file.metrics.enabled:
        try:
            server, _ = metrics.serve(file.metrics.port, file.metrics.address)
        except OSError as exc:
            raise ConfigError(
                f"metrics.port: cannot listen on {file.metrics.address}:{file.metrics.port} ({exc.strerror})"
            ) from None
        log.info("metrics on http://%s:%d/metrics", file.metrics.address, server.server_port)
    return scheduled_job(file.schedule, run_one, metrics).run_forever()


def scheduled_job(schedule: ScheduleConfig, run_one: Callable[[], FleetRun], metrics: JobMetrics) -> Any:
    """The fleet run on the cron schedule: per-run counts in the metrics; a run in which every scaler with
    a history query failed is a failed run (``runs_total{outcome="failure"}``), any other a success."""
    from forecaster.job.fleet import log_fleet_run, record_fleet_run
    from forecaster.job.runner import ForecastJobError, ScheduledJob

    def cycle() -> FleetRun:
        run = run_one()
        record_fleet_run(metrics, run)
        log_fleet_run(run)
        if run.failed and not run.succeeded:
            raise ForecastJobError(f"every scaler's forecast failed ({run.failed}); each kept its last one")
        return run

    def report(run: FleetRun, seconds: float, finished_at: float) -> None:
        metrics.record_run(seconds=seconds, finished_at=finished_at)

    return ScheduledJob(cycle, schedule, metrics=metrics, clock=time.time, report=report)


def format_fleet_summary(run: FleetRun, namespaces: list[str] | None) -> str:
    """Counts, engine and time, then one line per scaler: outcome, model, peak, and where (or why not)."""
    where = ", ".join(namespaces) if namespaces else "all namespaces"
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in run.stages.items())
    lines = [
        f"Fleet forecast ({where}): {len(run.targets)} scalers, {run.succeeded} succeeded, "
        f"{run.failed} failed, {run.skipped} skipped; engine {run.engine}, took {run.seconds:.1f}s "
        f"({stages})",
        "",
    ]
    width = max((len(t.id) for t in run.targets), default=10)
    for t in sorted(run.targets, key=lambda t: t.id):
        if t.status == "succeeded" and t.artifact is not None:
            art = t.artifact
            peak = max(i.peak_upper for i in art.intervals)
            wape = (art.backtest or {}).get("wape")
            bt = f", backtest WAPE {wape:.1%}" if wape is not None and math.isfinite(wape) else ""
            text = f"{art.model}{bt}, peak_upper {_n(peak)} req/s -> {t.store}"
        else:
            text = t.error or ""
        lines.extend(textwrap.wrap(
            text, width=110, initial_indent=f"  {t.id:<{width}}  {t.status:<9}  ",
            subsequent_indent=" " * (width + 15), break_on_hyphens=False, break_long_words=False,
        ) or [f"  {t.id:<{width}}  {t.status}"])
    return "\n".join(lines)


def _n(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


__all__ = ["add_fleet_arguments", "check_fleet_flags", "fleet_main", "format_fleet_summary"]
