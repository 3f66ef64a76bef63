"""What-if capacity planning: apply growth, event windows and cluster changes to a forecast and compare plans.

Capacity planners ask "what if traffic grows 20%", "what if the December promotion triples traffic for six
hours", "what if start-up doubles": this module answers with the peak demand, replicas needed per hour, the
hours the max-replicas cap or a downstream quota (e.g. the payment gateway's TPS limit) would be exceeded, the
scale-up / warm-up schedule and the cost, each next to the unchanged baseline.

The planning core (:func:`apply_scenario`, :func:`capacity_plan`) is pure; :func:`run` wires the CLI.
Zone rule for ``--event``: times must carry a UTC offset (``2026-12-01T00:00+07:00`` or ``...Z``) unless
``--timezone`` is given, in which case zone-less times are wall-clock times in that zone. A zone-less time
without ``--timezone`` is an error, because it would silently shift the window by the zone offset.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecaster.durations import format_duration, parse_duration
from forecaster.errors import UserError

DEFAULT_STARTUP = pd.Timedelta(seconds=90)
DEFAULT_WARMUP = pd.Timedelta(seconds=30)
VALUE_COLUMNS = ("yhat", "yhat_lower", "yhat_upper", "peak_upper")


@dataclass(frozen=True)
class EventWindow:
    start: pd.Timestamp
    end: pd.Timestamp
    factor: float
    text: str = ""


@dataclass(frozen=True)
class Cluster:
    """What capacity a plan can use and what it costs."""

    capacity_per_replica: float
    headroom: float = 0.1
    min_replicas: int = 1
    max_replicas: int = 100
    startup: pd.Timedelta = DEFAULT_STARTUP
    warmup_time: pd.Timedelta = DEFAULT_WARMUP
    price_per_replica_hour: float = 0.0

    def __post_init__(self) -> None:
        if not (self.capacity_per_replica > 0 and math.isfinite(self.capacity_per_replica)):
            raise UserError(
                f"--capacity-per-replica must be > 0 requests per second, got {self.capacity_per_replica}"
            )

    @property
    def lead(self) -> pd.Timedelta:
        return self.startup + self.warmup_time


@dataclass(frozen=True)
class Scenario:
    name: str
    growth: float = 0.0  # fraction: 0.2 = +20%
    events: tuple[EventWindow, ...] = ()
    cluster: Cluster | None = None  # None: the baseline cluster


@dataclass
class Plan:
    scenario: str
    frame: pd.DataFrame  # per interval: ds, demand columns, need, replicas, capped, over_quota
    hourly: pd.DataFrame  # per hour: ds, peak_rate, replicas
    risks: list[dict[str, Any]]
    schedule: list[dict[str, Any]]  # scale-ups: request_at, ready_by, replicas, warm-up
    summary: dict[str, Any] = field(default_factory=dict)


def parse_growth(text: str) -> float:
    """``'20%'``, ``'+20%'``, ``'-5%'`` -> fraction. Growth below -100% is an error."""
    m = re.fullmatch(r"\s*([+-]?\d+(?:\.\d+)?)\s*%\s*", text)
    if not m:
        raise UserError(f"--growth: {text!r} must be a percentage like 20% or -10%")
    g = float(m.group(1)) / 100
    if g < -1:
        raise UserError(f"--growth: {text!r} is below -100%; traffic cannot fall below zero")
    return g


def parse_time(text: str, *, what: str, timezone: str | None) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise UserError(f"{what} {text!r} is not an ISO date-time like 2026-12-01T00:00+07:00") from None
    if ts is pd.NaT or pd.isna(ts):
        raise UserError(f"{what} {text!r} is not an ISO date-time like 2026-12-01T00:00+07:00")
    if ts.tzinfo is None:
        if timezone is None:
            raise UserError(
                f"{what} {text!r} has no UTC offset; write it with one (e.g. {ts.isoformat()}+00:00) or pass "
                "--timezone to read zone-less times as wall-clock times in that zone"
            )
        try:
            ts = ts.tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)
        except Exception:
            raise UserError(f"{what} {text!r}: cannot be placed in zone {timezone}") from None
    return ts


def parse_event(text: str, *, timezone: str | None) -> EventWindow:
    """``START/DURATION xFACTOR`` (factor ``x3``, ``x1.5`` or ``+50%``), e.g. ``2026-12-01T00:00Z/6h x3``."""
    where = f"--event {text!r}:"
    parts = text.strip().split()
    if len(parts) != 2 or "/" not in parts[0]:
        raise UserError(f"{where} expected 'START/DURATION xFACTOR', e.g. '2026-12-01T00:00+00:00/6h x3'")
    start_s, dur_s = parts[0].rsplit("/", 1)
    start = parse_time(start_s, what=f"{where} start", timezone=timezone)
    try:
        dur = parse_duration(dur_s, what="duration")
    except UserError:
        raise UserError(f"{where} duration {dur_s!r} must be like 6h, 90m or 2d") from None
    f = parts[1]
    m_x = re.fullmatch(r"[x*](\d+(?:\.\d+)?)", f)
    m_p = re.fullmatch(r"([+-]\d+(?:\.\d+)?)%", f)
    if m_x:
        factor = float(m_x.group(1))
    elif m_p:
        factor = 1 + float(m_p.group(1)) / 100
    else:
        raise UserError(f"{where} factor {f!r} must be like x3, x1.5 or +50%")
    if factor < 0:
        raise UserError(f"{where} factor {f!r} would make traffic negative")
    return EventWindow(start, start + dur, factor, text)


def apply_scenario(forecast: pd.DataFrame, interval: pd.Timedelta, scenario: Scenario) -> pd.DataFrame:
    """The forecast scaled by growth and by every event window overlapping each interval (pure)."""
    out = forecast.copy()
    factor = np.full(len(out), 1.0 + scenario.growth)
    ds = pd.DatetimeIndex(out["ds"])
    for ev in scenario.events:
        overlap = (ds < ev.end) & (ds + interval > ev.start)
        factor = np.where(overlap, factor * ev.factor, factor)
    for col in VALUE_COLUMNS:
        if col in out:
            out[col] = out[col].to_numpy(dtype=float) * factor
    out["factor"] = factor
    return out


def _windows(mask: np.ndarray, ds: pd.DatetimeIndex, interval: pd.Timedelta) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        if not m and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


def capacity_plan(
    forecast: pd.DataFrame,
    interval: pd.Timedelta,
    cluster: Cluster,
    *,
    scenario: str = "baseline",
    quota_tps: float | None = None,
) -> Plan:
    """Replicas for each forecast interval so that the peak upper band (plus headroom) is covered (pure)."""
    f = forecast.reset_index(drop=True)
    ds = pd.DatetimeIndex(f["ds"])
    peak = (
        f["peak_upper"].to_numpy(dtype=float) if "peak_upper" in f else f["yhat_upper"].to_numpy(dtype=float)
    )
    need = np.ceil(peak * (1 + cluster.headroom) / cluster.capacity_per_replica - 1e-9).astype(np.int64)
    replicas = np.clip(need, cluster.min_replicas, cluster.max_replicas)
    capped = need > cluster.max_replicas
    over_quota = peak > quota_tps if quota_tps is not None else np.zeros(len(f), bool)
    frame = pd.DataFrame(
        {
            "ds": ds,
            "yhat": f["yhat"].to_numpy(dtype=float),
            "peak_upper": peak,
            "need": need,
            "replicas": replicas,
            "capped": capped,
            "over_quota": over_quota,
        }
    )
    hours = ds.floor("h")
    hourly = (
        frame.groupby(hours)
        .agg(
            peak_rate=("peak_upper", "max"),
            mean_rate=("yhat", "mean"),
            replicas=("replicas", "max"),
            need=("need", "max"),
        )
        .reset_index()
    )
    hourly = hourly.rename(columns={"index": "ds"})
    hourly.columns = ["ds", *hourly.columns[1:]]
    risks = []
    for kind, mask in (("max_replicas", capped), ("quota", over_quota)):
        for a, b in _windows(mask, ds, interval):
            risks.append(
                {
                    "kind": kind,
                    "start": ds[a].isoformat(),
                    "end": (ds[b - 1] + interval).isoformat(),
                    "peak_rate": round(float(peak[a:b].max()), 3),
                    "replicas_needed": int(need[a:b].max()),
                    "limit": cluster.max_replicas if kind == "max_replicas" else quota_tps,
                }
            )
    schedule = []
    prev = int(replicas[0])
    for i in range(1, len(replicas)):
        if replicas[i] > prev:
            schedule.append(
                {
                    "request_at": (ds[i] - cluster.lead).isoformat(),
                    "warm_at": (ds[i] - cluster.warmup_time).isoformat(),
                    "ready_by": ds[i].isoformat(),
                    "from": prev,
                    "to": int(replicas[i]),
                }
            )
        prev = int(replicas[i])
    hours_f = interval.total_seconds() / 3600
    replica_hours = float(replicas.sum() * hours_f)
    i_peak = int(np.argmax(peak))
    summary = {
        "scenario": scenario,
        "peak_demand": float(f["yhat"].max()),
        "peak_upper": float(peak.max()),
        "peak_at": ds[i_peak].isoformat(),
        "max_replicas_needed": int(need.max()),
        "max_replicas_planned": int(replicas.max()),
        "intervals_at_max": int(capped.sum()),
        "hours_at_max": float(capped.sum() * hours_f),
        "hours_over_quota": float(over_quota.sum() * hours_f),
        "replica_hours": replica_hours,
        "cost": replica_hours * cluster.price_per_replica_hour,
        "scale_ups": len(schedule),
        "risk_windows": len(risks),
        "capacity_per_replica": cluster.capacity_per_replica,
        "startup": format_duration(cluster.startup),
        "lead": format_duration(cluster.lead),
    }
    return Plan(scenario, frame, hourly, risks, schedule, summary)


def register(subparsers: Any) -> None:
    from controller.simcli import add_cluster_arguments

    p = subparsers.add_parser(
        "whatif",
        help="capacity plan under growth, event and cluster scenarios, against the baseline",
        description="Forecast the history, apply scenarios and compare the capacity plan with the baseline. "
        "With --config, --capacity-per-replica/--startup/--warmup-time/--max-replicas change the "
        "scenario only (the baseline keeps the config's values).",
    )
    p.add_argument("--history", required=True, metavar="FILE", help="CSV/Parquet of request rate per second")
    p.add_argument("--time-column", default=None)
    p.add_argument("--value-column", default=None)
    p.add_argument(
        "--timezone",
        default=None,
        help="IANA zone for zone-less timestamps in the history and in --event (default: UTC for the "
        "history; zone-less --event times are then an error)",
    )
    p.add_argument("--counts", action="store_true", help="history values are counts per interval, not req/s")
    add_cluster_arguments(p)
    p.add_argument("--growth", default="0%", help="traffic growth applied to the whole forecast, e.g. 20%%")
    p.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="'START/DURATION xFACTOR'",
        help="multiplicative event window, e.g. '2026-12-01T00:00+07:00/6h x3' (repeatable)",
    )
    p.add_argument(
        "--quota-tps",
        type=float,
        default=None,
        help="downstream quota in requests per second; windows above it are reported as risks",
    )
    p.add_argument("--horizon", default="7d", help="forecast horizon (default 7d)")
    p.add_argument("--model", default="auto", help="forecasting model alias (default: auto)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from controller.simcli import controller_config_from_args, load_rate

    growth = parse_growth(args.growth)
    events = tuple(parse_event(e, timezone=args.timezone) for e in args.event)
    if args.quota_tps is not None and not args.quota_tps > 0:
        raise UserError(f"--quota-tps must be > 0 requests per second, got {args.quota_tps:g}")
    base_cfg, scen_cfg = _configs(args, controller_config_from_args)
    horizon = parse_duration(args.horizon, what="--horizon")
    tz = args.timezone or "UTC"
    ns = argparse.Namespace(**{**vars(args), "timezone": tz})
    rate = load_rate(args.history, ns)
    forecast, interval = forecast_rate(rate, horizon, model=args.model, timezone=tz, where=args.history)
    price = args.price_per_replica_hour
    base = capacity_plan(forecast, interval, cluster_of(base_cfg, price), quota_tps=args.quota_tps)
    scen_frame = apply_scenario(forecast, interval, Scenario("scenario", growth, events))
    scen = capacity_plan(
        scen_frame, interval, cluster_of(scen_cfg, price), scenario="scenario", quota_tps=args.quota_tps
    )
    if args.json:
        json.dump(
            {
                "baseline": _plan_doc(base),
                "scenario": _plan_doc(scen),
                "growth": growth,
                "events": [e.text for e in events],
            },
            sys.stdout,
            indent=1,
        )
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_comparison(base, scen))
    return 0


def _configs(args: argparse.Namespace, build: Any) -> tuple[Any, Any]:
    """(baseline, scenario) controller configs: with --config, cluster flags change only the scenario."""
    scen = build(args)
    if not args.config:
        return scen, scen
    empty = argparse.Namespace(
        **{
            **vars(args),
            "capacity_per_replica": None,
            "startup": None,
            "warmup_time": None,
            "min_replicas": None,
            "max_replicas": None,
        }
    )
    return build(empty), scen


def cluster_of(cfg: Any, price: float) -> Cluster:
    return Cluster(
        capacity_per_replica=float(cfg.capacity_per_replica),
        headroom=float(cfg.headroom),
        min_replicas=int(cfg.min_replicas),
        max_replicas=int(cfg.ceiling),
        startup=pd.Timedelta(seconds=float(cfg.startup)),
        warmup_time=pd.Timedelta(seconds=float(cfg.warmup_time)),
        price_per_replica_hour=price,
    )


def forecast_rate(
    rate: pd.Series, horizon: pd.Timedelta, *, model: str, timezone: str, where: str
) -> tuple[pd.DataFrame, pd.Timedelta]:
    """Forecast frame (ds, yhat, yhat_lower, yhat_upper, peak_upper) after the history, and its interval."""
    from forecaster.cleaning import clean
    from forecaster.pipeline import run_forecast

    series = clean(rate.rename("y").rename_axis("ds"), where=where)
    result = run_forecast(series, horizon, model=model)
    return result.frame.reset_index(drop=True), result.freq


def _plan_doc(plan: Plan) -> dict[str, Any]:
    hourly = plan.hourly.assign(ds=plan.hourly["ds"].map(lambda t: t.isoformat()))
    return {
        "summary": plan.summary,
        "risks": plan.risks,
        "schedule": plan.schedule,
        "hourly": hourly.to_dict(orient="records"),
    }


def format_comparison(base: Plan, scen: Plan) -> str:
    rows = (
        ("peak demand (req/s, forecast)", "peak_demand", "{:,.1f}"),
        ("peak upper band (req/s)", "peak_upper", "{:,.1f}"),
        ("peak at", "peak_at", "{}"),
        ("replicas needed at peak", "max_replicas_needed", "{}"),
        ("hours capped at max replicas", "hours_at_max", "{:.1f}"),
        ("hours over quota", "hours_over_quota", "{:.1f}"),
        ("replica-hours", "replica_hours", "{:,.1f}"),
        ("cost", "cost", "{:,.2f}"),
        ("scale-ups", "scale_ups", "{}"),
        ("lead time", "lead", "{}"),
    )
    w = max(len(r[0]) for r in rows)
    out = [f"{'':{w}}  {'baseline':>26}  {'scenario':>26}"]
    for label, key, fmt in rows:
        out.append(f"{label:{w}}  {fmt.format(base.summary[key]):>26}  {fmt.format(scen.summary[key]):>26}")
    for plan in (base, scen):
        if plan.risks:
            out.append(f"\nRisk windows ({plan.scenario}):")
            for r in plan.risks:
                what = (
                    f"needs {r['replicas_needed']} > max {r['limit']}"
                    if r["kind"] == "max_replicas"
                    else f"peak {r['peak_rate']:,.1f} req/s > quota {r['limit']:g}"
                )
                out.append(f"  {r['start']} .. {r['end']}  {what}")
    out.append("\nScenario scale-up schedule (request at -> ready by: replicas):")
    for s in scen.schedule[:48]:
        out.append(f"  {s['request_at']} -> {s['ready_by']}: {s['from']} -> {s['to']}")
    if len(scen.schedule) > 48:
        out.append(f"  ... {len(scen.schedule) - 48} more (use --json for all)")
    out.append("\nScenario replicas per hour:")
    for _, h in scen.hourly.iterrows():
        out.append(f"  {h['ds'].isoformat()}  {int(h['replicas']):>4}  (peak {h['peak_rate']:,.1f} req/s)")
    return "\n".join(out) + "\n"
