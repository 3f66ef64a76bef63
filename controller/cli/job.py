"""``recharge-autoscaler forecast-job --config FILE [--once] [--fleet]``: wires config, source, store, clock.

This is the one place where the job's adapters are built: a Prometheus or file history source, a file or
ConfigMap store (the Kubernetes client is loaded only when a ConfigMap store is configured: in-cluster
service account first, kubeconfig otherwise), the event calendar and the metrics endpoint. With ``--once``
it runs a single cycle and prints a readable summary; without, it runs on the configured cron schedule
until SIGTERM/SIGINT. ``--fleet`` forecasts every PredictiveScaler instead (:mod:`controller.cli.fleet_job`).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import textwrap
from typing import Any

import pandas as pd

from controller.configfile import load_config
from forecaster.adapters.files import FileSource
from forecaster.durations import format_duration
from forecaster.errors import ConfigError, StoreError
from forecaster.job.config import JobConfig, LoggingConfig
from forecaster.job.metrics import JobMetrics
from forecaster.job.runner import JobRun, ScheduledJob, run_once
from forecaster.ports import ForecastStore, HistorySource

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "forecast-job",
        help="read history, forecast and store the result; once or on a cron schedule",
        description="Read the configured history (Prometheus or a file), forecast the next horizon with the "
        "best model by backtest, and store the forecast for the controller. A failed run never "
        "replaces the last good forecast. With --fleet: every PredictiveScaler's history query, one run, "
        "one forecast ConfigMap per scaler.",
    )
    p.add_argument(
        "--config", required=True, metavar="FILE", help="YAML config file (see docs/configuration.md)"
    )
    p.add_argument(
        "--once", action="store_true", help="run one forecast, print a summary and exit (non-zero on failure)"
    )
    from controller.cli.fleet_job import add_fleet_arguments

    add_fleet_arguments(p)
    p.set_defaults(func=main)


def build_source(cfg: JobConfig) -> HistorySource:
    if cfg.source.kind == "prometheus":
        from forecaster.adapters.prometheus import PrometheusSource

        assert cfg.source.prometheus is not None
        return PrometheusSource(cfg.source.prometheus)
    assert cfg.source.file is not None
    return FileSource.from_config(cfg.source.file)


def build_store(cfg: JobConfig) -> ForecastStore:
    from forecaster.adapters.store import open_store

    return open_store(cfg.store)


def _setup_logging(args: argparse.Namespace, cfg: LoggingConfig) -> None:
    from forecaster.logs import setup_logging

    level = args.log_level
    if level == "WARNING":  # the flag's default: let the config (or the mode) decide
        level = cfg.level or ("WARNING" if args.once else "INFO")
    if level != args.log_level or (cfg.json_lines and not args.log_json):
        setup_logging(level, json_lines=args.log_json or cfg.json_lines)


def _job_config(path: str) -> JobConfig:
    """The job's sections, after validating the whole file (the controller section too: one file)."""
    try:
        return load_config(path).job()
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(f"{path}: ") else f"{path}: {message}") from None


def _fleet(args: argparse.Namespace) -> int:
    from controller.cli.fleet_job import fleet_main

    file = load_config(args.config)
    _setup_logging(args, file.logging)
    try:
        file.fleet_prometheus()
    except ConfigError as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    return fleet_main(args, file)


def main(args: argparse.Namespace) -> int:
    from controller.cli.fleet_job import check_fleet_flags

    check_fleet_flags(args)
    if args.fleet:
        return _fleet(args)
    cfg = _job_config(args.config)
    _setup_logging(args, cfg.logging)
    source = build_source(cfg)
    store = build_store(cfg)
    if args.once:
        from controller.cli.progress import Progress

        with Progress("forecast-job") as progress:
            progress.stage("reading, backtesting and forecasting")
            run = run_once(cfg, source, store, now=pd.Timestamp.now(tz="UTC"), progress=progress)
        print(format_summary(run, cfg))
        return 0
    metrics = JobMetrics()
    if cfg.metrics.enabled:
        try:
            server, _ = metrics.serve(cfg.metrics.port, cfg.metrics.address)
        except OSError as exc:
            raise ConfigError(
                f"metrics.port: cannot listen on {cfg.metrics.address}:{cfg.metrics.port} ({exc.strerror})"
            ) from None
        log.info("metrics on http://%s:%d/metrics", cfg.metrics.address, server.server_port)
    from controller.cli.progress import Progress

    job = ScheduledJob(
        lambda: run_once(
            cfg, source, store, now=pd.Timestamp.now(tz="UTC"),
            progress=Progress("forecast-job", log=log).stage("backtesting and forecasting"),
        ),
        cfg.schedule,
        metrics=metrics,
    )
    return job.run_forever()


# -- the --once summary -------------------------------------------------------------------------------------


def format_summary(run: JobRun, cfg: JobConfig) -> str:
    """What one run did, readable by someone who has never seen the product."""
    art = run.artifact
    tz = cfg.forecast.timezone
    frame = art.frame()
    step = pd.Timedelta(seconds=art.interval_seconds)
    res = getattr(run.series, "freq", None)
    horizon = pd.Timedelta(seconds=art.horizon_seconds)
    lines = [
        f"Forecast stored: next {format_duration(horizon)} in {len(frame)} intervals of "
        f"{format_duration(step)}",
        "",
    ]

    def row(label: str, text: str) -> None:
        lines.extend(
            textwrap.wrap(text, width=110, initial_indent=f"  {label:<10} ", subsequent_indent=" " * 15)
        )

    row("source", _where(run.source, size=False))
    y = getattr(run.series, "y", None)
    first, last = (
        (y.index[0], y.index[-1] + res)
        if y is not None and res is not None
        else (art.history_start, art.history_end)
    )
    row(
        "history",
        f"{_t(first, tz)} .. {_t(last, tz)} ({format_duration(last - first)}), {run.points:,} points"
        + (f" at {format_duration(res)}" if res is not None else "")
        + (f", {run.missing:,} missing" if run.missing else ", none missing"),
    )
    if run.notes:
        for n, note in enumerate(run.notes):
            row("quality" if n == 0 else "", f"{note.severity}: {note.message}")
    else:
        row("quality", "no issues found")
    bt = art.backtest or {}
    model = f"{art.model}"
    if bt:
        model += (
            f" (backtest over {_int(bt.get('folds'))} folds: WAPE {_pct(bt.get('wape'))}, "
            f"band coverage {_pct(bt.get('coverage'))} for a {_pct(art.band_level, 0)} band)"
        )
    else:
        model += " (no backtest: history too short)"
    row("model", model)
    others = _other_models(run.result, art.model)
    if others:
        row("", "also tried: " + others)
    if not frame.empty:
        unit, what = _unit(cfg, res)
        peak = frame.loc[frame["yhat"].idxmax()]
        burst = frame.loc[frame["peak_upper"].idxmax()]
        row(
            "peak",
            f"{_n(peak['yhat'])} {unit} at {_t(peak['ds'], tz)} (band {_n(peak['yhat_lower'])} .. "
            f"{_n(peak['yhat_upper'])}); plan capacity for up to {_n(burst['peak_upper'])} {unit} "
            f"at {_t(burst['ds'], tz)}",
        )
        low = frame.loc[frame["yhat"].idxmin()]
        row("low", f"{_n(low['yhat'])} {unit} at {_t(low['ds'], tz)}")
        row("unit", what)
        row("horizon", f"{_t(frame['ds'].iloc[0], tz)} .. {_t(frame['ds'].iloc[-1] + step, tz)}")
    if art.events:
        for n, ev in enumerate(art.events[:6]):
            uplift = "" if ev.uplift is None or math.isnan(ev.uplift) else f", uplift x{ev.uplift:g}"
            row(
                "events" if n == 0 else "",
                f"{ev.name} ({ev.kind}) {_t(ev.start, tz)} .. {_t(ev.end, tz)}{uplift}",
            )
        if len(art.events) > 6:
            row("", f"... and {len(art.events) - 6} more")
    else:
        row("events", "none in the horizon")
    row("written", _where(run.store))
    row("took", f"{run.seconds:.1f}s")
    return "\n".join(lines)


def _unit(cfg: JobConfig, res: pd.Timedelta | None) -> tuple[str, str]:
    """The unit of the forecast values (the history's) as a short label and as a sentence."""
    if cfg.source.kind == "prometheus":
        return "req/s", "req/s, the rate the Prometheus query returns (what the controller reads)"
    per = f"per {format_duration(res)}" if res is not None else "per row"
    return per, (
        f"{per}: the history file's values, one per {format_duration(res) if res is not None else 'row'} row "
        "(a count per row, or a rate if the file holds rates); the controller reads forecast values as req/s"
    )


def _other_models(result: Any, chosen: str) -> str:
    scores = getattr(result, "scores", None)
    if not isinstance(scores, pd.DataFrame) or scores.empty or "wape" not in scores.columns:
        return ""
    frame = scores.set_index("model") if "model" in scores.columns else scores
    parts = [
        f"{name} {_pct(r['wape'])}" for name, r in frame.sort_values("wape").iterrows() if str(name) != chosen
    ]
    return ", ".join(parts[:5])


def _where(store: str, *, size: bool = True) -> str:
    kind, _, rest = store.partition(" ")
    if kind == "file":
        try:
            rel = os.path.relpath(rest)
            nbytes = os.path.getsize(rest)
        except (OSError, ValueError):
            return store
        shown = rel if not rel.startswith("..") else rest
        return f"{shown} ({nbytes / 1024:.1f} KiB)" if size else f"file {shown}"
    return store


def _t(ts: Any, tz: str) -> str:
    t = pd.Timestamp(ts).tz_convert(tz)
    return t.strftime("%a %Y-%m-%d %H:%M") + ("" if tz == "UTC" else f" {t.strftime('%Z')}")


def _n(v: Any) -> str:
    x = float(v)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def _int(v: Any) -> str:
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return "?"


def _pct(v: Any, digits: int = 1) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else f"{x:.{digits}%}"


__all__ = ["StoreError", "build_source", "build_store", "format_summary", "main", "register"]
