"""The ``simulate`` subcommand: replay a traffic trace through the scaling policies and compare them.

Wires files and flags to the pure simulator (:mod:`controller.planning.simulate`,
:mod:`controller.planning.policies`,
:mod:`controller.planning.predictive`) and prints a side-by-side table (or JSON). The part of the trace before
``--start`` is history only: it feeds the first forecasts and the default cron schedule; metrics cover the
rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from controller.planning.policies import (
    POLICY_NAMES,
    CronPolicy,
    HpaSettings,
    OraclePolicy,
    ReactivePolicy,
    cron_from_history,
)
from controller.planning.simulate import Policy, SimParams, SimResult, compare, make_trace, simulate
from forecaster.durations import parse_duration
from forecaster.errors import UserError


def add_cluster_arguments(parser: argparse.ArgumentParser, *, capacity_required: bool = False) -> None:
    """Flags that describe the replicas: capacity, start-up, warm-up, limits and price."""
    parser.add_argument(
        "--capacity-per-replica",
        type=float,
        required=capacity_required,
        metavar="RPS",
        help="requests per second one warm replica serves (overrides the config file)",
    )
    parser.add_argument(
        "--startup",
        default=None,
        metavar="DURATION",
        help="pod start-up delay until ready, e.g. 90s (default: config or 90s)",
    )
    parser.add_argument(
        "--warmup-time",
        default=None,
        metavar="DURATION",
        help="cache warm-up after readiness, e.g. 30s (default: config or 30s)",
    )
    parser.add_argument(
        "--min-replicas", type=int, default=None, help="fewest replicas (default: config or 1)"
    )
    parser.add_argument(
        "--max-replicas", type=int, default=None, help="most replicas (default: config or 100)"
    )
    parser.add_argument(
        "--price-per-replica-hour",
        type=float,
        default=0.0,
        metavar="PRICE",
        help="cost of one replica for one hour, in your currency (default: 0)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML config whose controller section supplies capacity, limits and behaviour",
    )


def controller_config_from_args(args: argparse.Namespace) -> Any:
    """The ControllerConfig from --config and the cluster flags (flags win)."""
    import dataclasses

    from controller.config import ControllerConfig, Duration, load_controller_config

    if args.capacity_per_replica is not None and not args.capacity_per_replica > 0:
        raise UserError(
            f"--capacity-per-replica must be > 0 requests per second, got {args.capacity_per_replica:g}"
        )
    if args.config:
        cfg = load_controller_config(args.config)
    elif args.capacity_per_replica is None:
        raise UserError("--capacity-per-replica is required (or --config with controller.capacityPerReplica)")
    else:
        cfg = ControllerConfig(
            capacity_per_replica=args.capacity_per_replica,
            min_replicas=1,
            max_replicas=100,
            startup=Duration(90),
            warmup_time=Duration(30),
        )
    changes: dict[str, Any] = {}
    if args.capacity_per_replica is not None:
        changes["capacity_per_replica"] = float(args.capacity_per_replica)
    if args.startup is not None:
        changes["startup"] = Duration(
            parse_duration(args.startup, what="--startup", allow_zero=True).total_seconds()
        )
    if args.warmup_time is not None:
        changes["warmup_time"] = Duration(
            parse_duration(args.warmup_time, what="--warmup-time", allow_zero=True).total_seconds()
        )
    if args.min_replicas is not None:
        changes["min_replicas"] = args.min_replicas
    if args.max_replicas is not None:
        changes["max_replicas"] = args.max_replicas
    try:
        return dataclasses.replace(cfg, **changes)
    except UserError as exc:
        raise UserError(f"{exc} (from the command-line flags)") from None


def params_from_config(cfg: Any, price: float) -> SimParams:
    return SimParams(
        capacity_per_replica=float(cfg.capacity_per_replica),
        startup=pd.Timedelta(seconds=float(cfg.startup)),
        warmup_time=pd.Timedelta(seconds=float(cfg.warmup_time)),
        min_replicas=int(cfg.min_replicas),
        max_replicas=int(cfg.ceiling),
        price_per_replica_hour=price,
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="replay a traffic trace through predictive, reactive (HPA), cron and oracle scaling",
        description="Replay a request-rate trace through scaling policies and compare shortfalls and cost.",
    )
    p.add_argument("--trace", required=True, metavar="FILE", help="CSV/Parquet of request rate per second")
    p.add_argument(
        "--time-column", default=None, help="timestamp column (auto: ds, timestamp, time, date_time)"
    )
    p.add_argument("--value-column", default=None, help="value column (auto: y, value)")
    p.add_argument(
        "--timezone", default="UTC", help="IANA zone of zone-less timestamps and of the cron hours"
    )
    p.add_argument(
        "--counts",
        action="store_true",
        help="values are request counts per interval, not per-second rates (divided by interval seconds)",
    )
    p.add_argument("--policy", default="all", help=f"one of {', '.join(POLICY_NAMES)} or all (default: all)")
    add_cluster_arguments(p)
    p.add_argument(
        "--start",
        default=None,
        metavar="DURATION",
        help="history used before the simulated window, e.g. 7d (default: 7d, or half a short trace)",
    )
    p.add_argument(
        "--target-utilization",
        type=float,
        default=0.7,
        help="reactive (HPA) target utilisation of capacity, 0-1 (default: 0.7)",
    )
    p.add_argument(
        "--cron",
        default=None,
        metavar="N,N,...",
        help="cron policy: 24 comma-separated replica counts by local hour, or one fixed count "
        "(default: the peak need per hour over the history window)",
    )
    p.add_argument(
        "--refit",
        default="24h",
        metavar="DURATION",
        help="predictive: refit the forecast this often from data before the refit time (default 24h)",
    )
    p.add_argument(
        "--model",
        default="seasonal_median",
        help="predictive: forecasting model alias (default: seasonal_median, fast)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def parse_policies(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(POLICY_NAMES)
    bad = [n for n in names if n not in POLICY_NAMES]
    if bad or not names:
        raise UserError(
            f"--policy: unknown policy {', '.join(bad) or repr(text)}; use {', '.join(POLICY_NAMES)} or all"
        )
    return names


def parse_cron(text: str) -> CronPolicy:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--cron: {text!r} must be 24 comma-separated integers or one integer") from None
    if len(values) == 1:
        return CronPolicy(fixed=values[0])
    if len(values) != 24:
        raise UserError(f"--cron: needs 24 hourly replica counts (local hours 0..23), got {len(values)}")
    return CronPolicy(hourly=values)


def load_rate(path: str, args: argparse.Namespace) -> pd.Series:
    """The trace as a per-second rate series (counts divided by the interval when --counts)."""
    from forecaster.series.io import load_history

    raw = load_history(
        path, time_column=args.time_column, value_column=args.value_column, timezone=args.timezone
    )
    raw = raw.sort_index()
    raw = raw[~raw.index.duplicated(keep="last")]
    if len(raw) < 2:
        raise UserError(f"{path}: needs at least two rows to know the interval")
    if getattr(args, "counts", False):
        interval = pd.Timedelta(int(np.min(np.diff(raw.index.as_unit("ns").asi8))), unit="ns")
        raw = raw / interval.total_seconds()
    return raw.astype(float)


def split_start(rate: pd.Series, start: str | None) -> pd.Timestamp:
    span = rate.index[-1] - rate.index[0]
    if start is None:
        warm = min(pd.Timedelta(days=7), span / 2)
    else:
        warm = parse_duration(start, what="--start", allow_zero=True)
        if warm >= span:
            raise UserError(f"--start: {start} leaves nothing to simulate in a trace of {span}")
    first = rate.index[0] + warm
    return pd.Timestamp(rate.index[rate.index >= first][0])


def build_policies(
    names: list[str],
    args: argparse.Namespace,
    cfg: Any,
    params: SimParams,
    history: pd.Series,
    full: pd.Series,
) -> list[Policy]:
    out: list[Policy] = []
    for name in names:
        if name == "reactive":
            out.append(ReactivePolicy(HpaSettings(target_utilization=args.target_utilization)))
        elif name == "cron":
            if args.cron:
                out.append(parse_cron(args.cron))
            else:
                out.append(CronPolicy(hourly=cron_from_history(history, params, args.timezone)))
        elif name == "oracle":
            out.append(OraclePolicy())
        elif name == "predictive":
            from controller.planning.predictive import PredictivePolicy, pipeline_forecaster

            refit = parse_duration(args.refit, what="--refit")
            out.append(
                PredictivePolicy(
                    config=cfg,
                    history=full,
                    refit=refit,
                    forecaster=pipeline_forecaster(args.model, args.timezone),
                )
            )
    return out


def run(args: argparse.Namespace) -> int:
    names = parse_policies(args.policy)
    cfg = controller_config_from_args(args)
    params = params_from_config(cfg, args.price_per_replica_hour)
    rate = load_rate(args.trace, args)
    start = split_start(rate, args.start)
    history, window = rate[rate.index < start], rate[rate.index >= start]
    trace = make_trace(window, where=args.trace)
    results: list[SimResult] = []
    timings: dict[str, float] = {}
    for policy in build_policies(names, args, cfg, params, history, rate):
        t0 = time.perf_counter()
        results.append(simulate(trace, policy, params))
        timings[policy.name] = time.perf_counter() - t0
    table = compare(results)
    if args.json:
        doc = {
            "trace": args.trace,
            "start": trace.start.isoformat(),
            "end": trace.end.isoformat(),
            "step_seconds": trace.step_s,
            "interval_seconds": trace.interval.total_seconds(),
            "params": {
                "capacity_per_replica": params.capacity_per_replica,
                "startup_seconds": params.startup.total_seconds(),
                "warmup_seconds": params.warmup_time.total_seconds(),
                "min_replicas": params.min_replicas,
                "max_replicas": params.max_replicas,
                "price_per_replica_hour": params.price_per_replica_hour,
            },
            "policies": {
                r.policy: {
                    **{k: v for k, v in r.metrics.as_dict().items() if k != "policy"},
                    "vs_oracle_replica_hours": _num(table, r.policy, "vs_oracle_replica_hours"),
                    "seconds": round(timings[r.policy], 3),
                    "notes": r.notes,
                }
                for r in results
            },
        }
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(
            f"Trace {args.trace}: {trace.start} .. {trace.end} "
            f"({len(trace.rate)} steps of {trace.step_s:g}s)\n"
        )
        sys.stdout.write(format_table(table) + "\n")
        for r in results:
            for note in r.notes:
                sys.stdout.write(f"note ({r.policy}): {note}\n")
    return 0


def _num(table: pd.DataFrame, row: str, col: str) -> float | None:
    if col not in table.columns:
        return None
    v = table.loc[row, col]
    return None if pd.isna(v) else float(v)


ROWS = (
    ("short_time_share", "time short of capacity", "pct"),
    ("short_interval_share", "intervals short", "pct"),
    ("short_request_share", "requests short", "pct"),
    ("worst_shortfall_rps", "worst shortfall (req/s)", "num"),
    ("worst_shortfall_pct", "worst shortfall (% of demand)", "pct"),
    ("replica_hours", "replica-hours", "num"),
    ("vs_oracle_replica_hours", "replica-hours vs oracle", "x"),
    ("cost", "cost", "num"),
    ("peak_replicas", "peak replicas", "int"),
    ("scaling_actions", "scaling actions", "int"),
    ("warmups_issued", "warm-ups issued", "int"),
    ("ramp_warmups", "ramp warm-ups", "int"),
    ("warmups_before_ramp", "ramp warm-ups before their ramp", "int"),
)


def format_table(table: pd.DataFrame) -> str:
    """Metrics as rows, policies as columns, aligned for a terminal."""
    head = ["metric", *table.index]
    lines = [head]
    for key, label, kind in ROWS:
        if key not in table.columns:
            continue
        cells = [label]
        for pol in table.index:
            v = table.loc[pol, key]
            if pd.isna(v):
                cells.append("-")
            elif kind == "pct":
                cells.append(f"{100 * float(v):.2f}%")
            elif kind == "x":
                cells.append(f"{float(v):.2f}x")
            elif kind == "int":
                cells.append(f"{int(v)}")
            else:
                cells.append(f"{float(v):,.1f}")
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = []
    for n, row in enumerate(lines):
        out.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
