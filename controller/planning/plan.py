"""``recharge-autoscaler plan``: the offline replica and warm-up plan for the next horizon, from a history.

Capacity planners and reviewers ask "how many replicas will the controller run tomorrow, and when will it
warm the caches?". This command forecasts the horizon with :func:`forecaster.pipeline.run_forecast` and
replays the *same* :func:`controller.core.decision.decide` the live loop runs, on a simulated clock ticking
every
controller ``interval``: scale actions are issued ``lead`` (start-up + warm-up) before the row that needs
them, rate limits and stabilisation apply as they would live, and the load is assumed to arrive as
forecast (``yhat``).

Output contract (stable; used for evaluation), one row per forecast interval at the history's resolution:
``ds, replicas`` (replicas READY and warm for the whole of ``[ds, next ds)``), then ``yhat, yhat_lower,
yhat_upper, peak_upper`` (req/s), ``need`` (replicas that row needs: its peak band, or its mean plus
headroom if more), ``requested`` (replicas requested at ``ds``), ``reason`` (code of the decision that
readied the row), and
``warmup_at, warmup_key, warmup_reason`` (warm-ups issued within the row, ``;``-separated, empty if none).
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import math
import sys
import time
from typing import Any

import pandas as pd

from controller.config import ControllerConfig, WarmupConfig, load_controller_config
from controller.core.behavior import forecast_need
from controller.core.decision import Decision, decide
from controller.core.state import ControllerState
from controller.ports import ObservedLoad
from forecaster.artifact import ForecastArtifact
from forecaster.configbase import Duration
from forecaster.durations import format_duration, parse_duration
from forecaster.errors import UserError

PLAN_COLUMNS = [
    "ds", "replicas", "yhat", "yhat_lower", "yhat_upper", "peak_upper", "need", "requested", "reason",
    "warmup_at", "warmup_key", "warmup_reason",
]


def parse_fraction(text: str, *, what: str) -> float:
    """``'10%'`` or ``'0.1'`` -> 0.1; UserError naming ``what`` otherwise (negative values too)."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        raise UserError(f"{what}: expected a fraction like 0.1 or a percentage like 10%, got {text!r}") \
            from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{what}: must be zero or positive, got {text!r}")
    return value


def tick_for(config: ControllerConfig, resolution: pd.Timedelta) -> pd.Timedelta:
    """The simulated clock's step: the loop interval, shrunk so that it divides the plan's resolution."""
    res_s = int(resolution.total_seconds())
    step = max(1, int(float(config.interval)))
    return pd.Timedelta(seconds=math.gcd(step, res_s) if res_s > 0 else step)


def build_plan(
    forecast: ForecastArtifact, config: ControllerConfig, *, initial_replicas: int | None = None,
) -> tuple[pd.DataFrame, list[Decision]]:
    """Step :func:`decide` through the forecast's horizon; return the plan frame and every decision taken.

    The clock starts ``lead`` (rounded up to the tick) before the first interval, with ``initial_replicas``
    already running and ready (None: whatever the first decision asks for). The load at each tick is the
    forecast ``yhat`` of the interval containing it (the first interval's before the horizon starts).
    """
    ivs = forecast.intervals
    res = pd.Timedelta(seconds=forecast.interval_seconds)
    tick = tick_for(config, res)
    lead_ticks = math.ceil(config.lead / tick - 1e-9)
    start, end = ivs[0].ds, ivs[-1].ds + res
    t0 = start - lead_ticks * tick
    n_ticks = int((end - t0) / tick)
    horizon = end - min(forecast.created_at, t0)
    cfg = dataclasses.replace(
        config, forecast_max_age=Duration(max(float(config.forecast_max_age), horizon.total_seconds() + 1)),
    )
    state = ControllerState(replicas=initial_replicas)
    stamps = [i.ds for i in ivs]
    times: list[pd.Timestamp] = []
    requested: list[int] = []
    decisions: list[Decision] = []
    for k in range(n_ticks):
        now = t0 + k * tick
        idx = max(0, bisect.bisect_right(stamps, now) - 1)
        d = decide(forecast, ObservedLoad(ivs[idx].yhat, now), state, cfg, now)
        state = d.state
        times.append(now)
        requested.append(d.replicas)
        decisions.append(d)
    first = initial_replicas if initial_replicas is not None else requested[0]
    rows: list[dict[str, Any]] = []
    cap, head = config.capacity_per_replica, config.headroom
    lead = config.lead
    for iv in ivs:
        # Replicas ready through [ds, ds + res): survivors of every request since ds - lead (newest pods go
        # first on scale-down), i.e. the lowest count requested from the last request before ds - lead on.
        lo = bisect.bisect_right(times, iv.ds - lead) - 1
        hi = bisect.bisect_left(times, iv.ds + res)
        window = requested[max(lo, 0):hi]
        ready = min(window) if window else first
        if lo < 0:
            ready = min(ready, first)
        at_ds = bisect.bisect_right(times, iv.ds) - 1
        readying = bisect.bisect_right(times, iv.ds - lead) - 1
        w_lo = 0 if iv.ds == start else bisect.bisect_left(times, iv.ds)
        issued = [w for d in decisions[w_lo:hi] for w in d.warmups]
        rows.append({
            "ds": iv.ds,
            "replicas": ready,
            "yhat": iv.yhat,
            "yhat_lower": iv.yhat_lower,
            "yhat_upper": iv.yhat_upper,
            "peak_upper": iv.peak_upper,
            "need": forecast_need(iv.peak_upper, iv.yhat, cap, head),
            "requested": requested[at_ds] if at_ds >= 0 else first,
            "reason": decisions[max(readying, 0)].reason,
            "warmup_at": ";".join(w_at(decisions, w_lo, hi, w.key) for w in issued),
            "warmup_key": ";".join(w.key for w in issued),
            "warmup_reason": ";".join(w.reason for w in issued),
        })
    return pd.DataFrame(rows, columns=PLAN_COLUMNS), decisions


def w_at(decisions: list[Decision], lo: int, hi: int, key: str) -> str:
    """ISO time at which the warm-up ``key`` was issued (the tick of the decision that returned it)."""
    for d in decisions[lo:hi]:
        if any(w.key == key for w in d.warmups):
            return d.at.isoformat()
    return ""


def register(subparsers: Any) -> None:
    from controller.cli.args import add_calendar_arguments, add_history_arguments

    p = subparsers.add_parser(
        "plan",
        help="offline replica and warm-up plan for the next horizon from a history file",
        description="Forecast the horizon after a history of request rates (req/s) and write the replicas "
        "the controller would have ready in each interval, with the warm-ups it would issue.",
    )
    add_history_arguments(p)
    add_calendar_arguments(p)
    p.add_argument("--horizon", default="24h", metavar="DURATION", help="how far ahead to plan (default 24h)")
    p.add_argument("--capacity-per-replica", type=float, default=None, metavar="REQ_PER_S",
                   help="request rate one replica serves within its SLO, req/s (required unless --config)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="YAML config whose controller section supplies defaults for the flags below")
    p.add_argument("--startup", default=None, metavar="DURATION", help="pod start-up to ready (default 60s)")
    p.add_argument("--warmup-time", default=None, metavar="DURATION",
                   help="cache warm-up of a ready pod (default 30s)")
    p.add_argument("--min-replicas", type=int, default=None, metavar="N", help="fewest replicas (default 2)")
    p.add_argument("--max-replicas", type=int, default=None, metavar="N", help="most replicas (default 50)")
    p.add_argument("--headroom", default=None, metavar="FRACTION",
                   help="margin over the forecast mean, e.g. 10%% or 0.1 (default 10%%); "
                   "the need is the larger of the peak upper band and mean x (1 + headroom)")
    p.add_argument("--initial-replicas", type=int, default=None, metavar="N",
                   help="replicas running when the horizon starts (default: what the first decision needs)")
    p.add_argument("--model", default="auto", help="forecasting model alias, or auto (default: auto)")
    p.add_argument("--no-warmup", action="store_true", help="do not plan cache warm-ups")
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="CSV to write; - for stdout (default)")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print the summary on stderr")
    p.set_defaults(func=run_plan)


def config_from_args(args: argparse.Namespace) -> ControllerConfig:
    """A ControllerConfig from --config (optional) overridden by flags; flag errors name the flag."""
    base = load_controller_config(args.config) if args.config else None
    cap = args.capacity_per_replica
    if cap is None and base is None:
        raise UserError("--capacity-per-replica is required (requests per second one replica serves), "
                        "or give --config with controller.capacityPerReplica")
    if cap is not None and not (math.isfinite(cap) and cap > 0):
        raise UserError(f"--capacity-per-replica: must be a positive rate in req/s, got {cap:g}")
    changes: dict[str, Any] = {}
    if cap is not None:
        changes["capacity_per_replica"] = float(cap)
    for flag, name in (("startup", "startup"), ("warmup_time", "warmup_time")):
        value = getattr(args, flag)
        if value is not None:
            td = parse_duration(value, what=f"--{flag.replace('_', '-')}", allow_zero=True)
            changes[name] = Duration(td.total_seconds())
    if args.headroom is not None:
        changes["headroom"] = parse_fraction(args.headroom, what="--headroom")
    for flag in ("min_replicas", "max_replicas"):
        value = getattr(args, flag)
        if value is not None:
            least = 1 if flag == "max_replicas" else 0
            if value < least:
                raise UserError(f"--{flag.replace('_', '-')}: must be >= {least}, got {value}")
            changes[flag] = value
    lo = changes.get("min_replicas", base.min_replicas if base else 2)
    hi = changes.get("max_replicas", base.max_replicas if base else 50)
    if hi < lo:
        raise UserError(f"--max-replicas ({hi}) must be >= --min-replicas ({lo})")
    if args.initial_replicas is not None and args.initial_replicas < 0:
        raise UserError(f"--initial-replicas: must be >= 0, got {args.initial_replicas}")
    warm = base.warmup if base else WarmupConfig()
    changes["warmup"] = dataclasses.replace(warm, enabled=not args.no_warmup)
    if base is None:
        return ControllerConfig(**changes)
    return dataclasses.replace(base, **changes)


def forecast_after(
    series: Any, horizon: pd.Timedelta, *, model: str, calendar: Any, source: str
) -> tuple[Any, ForecastArtifact]:
    """The forecast right after ``series`` and its artifact, created at the history's end.

    ``plan``, ``whatif`` and ``report`` all plan from this, so the same history gives the same plan in each.
    """
    from forecaster.pipeline import run_forecast, to_artifact

    if horizon < series.freq:
        raise UserError(
            f"--horizon: {format_duration(horizon)} is shorter than the history's resolution "
            f"({format_duration(series.freq)})"
        )
    result = run_forecast(series, horizon, model=model, calendar=calendar)
    created = pd.Timestamp(series.y.index[-1])
    return result, to_artifact(result, created_at=created, source=source, series=series)


def run_plan(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # flag mistakes first: cheap and before any file is read
    horizon = parse_duration(args.horizon, what="--horizon")

    from controller.cli.args import calendar_from_args, load_clean_history
    from forecaster.series.io import write_frame

    t0 = time.perf_counter()
    series = load_clean_history(args)
    result, artifact = forecast_after(
        series, horizon, model=args.model, calendar=calendar_from_args(args), source=f"file:{args.history}"
    )
    frame, _ = build_plan(artifact, config, initial_replicas=args.initial_replicas)
    write_frame(frame, args.output)
    if not args.quiet:
        from controller.cli.forecast import print_summary

        print_summary(result, time.perf_counter() - t0, sys.stderr)
        hours = frame["replicas"].sum() * artifact.interval_seconds / 3600
        warmups = int((frame["warmup_key"].fillna("").astype(str) != "").sum())
        print(
            f"plan: {len(frame)} rows, replicas {frame['replicas'].min()}..{frame['replicas'].max()}, "
            f"{hours:,.1f} replica-hours, {warmups} warm-up(s)",
            file=sys.stderr,
        )
    return 0
