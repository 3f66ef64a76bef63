"""What-if capacity planning: apply growth, event windows and cluster changes to a forecast and compare plans.

Capacity planners ask "what if traffic grows 20%", "what if the December promotion triples traffic for six
hours", "what if start-up doubles": this module answers with the peak demand, replicas needed per hour, the
hours the max-replicas cap or a downstream quota (e.g. the payment gateway's TPS limit) would be exceeded, the
scale-up / warm-up schedule and the cost, each next to the unchanged baseline.

Every plan is the offline replay of the controller itself: :func:`capacity_plan` steps the same
:func:`controller.core.decision.decide` the live loop runs through the (scenario-adjusted) forecast with
:func:`controller.planning.plan.build_plan`, so lead time, stabilisation, rate limits, tolerance, min/max
and the
``exceed`` mode apply exactly as in production, and the baseline equals ``recharge-autoscaler plan`` for the
same history and config. A row is *at max replicas* when the replicas ready for it are at the cap and fewer
than it needs (decide's ``MaxCapacityExceeded``), *short* when fewer than it needs below the cap (a rate limit
or stabilisation held the scale-up back).

:func:`apply_scenario`, :func:`scenario_artifact` and :func:`capacity_plan` are pure; the ``whatif``
subcommand (:mod:`controller.cli.whatif`) wires them to flags.
Zone rule for ``--event``: times must carry a UTC offset (``2026-12-01T00:00+07:00`` or ``...Z``) unless
``--timezone`` is given, in which case zone-less times are wall-clock times in that zone. A zone-less time
without ``--timezone`` is an error, because it would silently shift the window by the zone offset.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from controller.config import ControllerConfig
from controller.planning.declared import describe_windows, window_rows
from controller.planning.plan import build_plan
from controller.planning.warmups import count_warmups
from forecaster.artifact import Event, ForecastArtifact, Interval
from forecaster.durations import format_duration, parse_duration
from forecaster.errors import UserError

VALUE_COLUMNS = ("yhat", "yhat_lower", "yhat_upper", "peak_upper")
RISK_COLUMNS = ["kind", "start", "end", "peak_rate", "replicas_needed", "replicas_ready", "limit", "reason"]
SCHEDULE_COLUMNS = ["request_at", "needed_at", "ahead", "from", "to"]
WARMUP_COLUMNS = ["issue_at", "key", "reason", "message"]


@dataclass(frozen=True)
class EventWindow:
    start: pd.Timestamp
    end: pd.Timestamp
    factor: float
    text: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    growth: float = 0.0  # fraction: 0.2 = +20%
    events: tuple[EventWindow, ...] = ()


@dataclass
class Plan:
    scenario: str
    frame: pd.DataFrame  # per interval: build_plan's columns + capped, short, over_quota, replica_hours
    hourly: pd.DataFrame  # per hour: ds, peak_rate, mean_rate, replicas, need
    risks: list[dict[str, Any]]
    schedule: list[dict[str, Any]]  # scale-ups: request_at, needed_at, ahead, from, to
    warmups: list[dict[str, Any]] = field(default_factory=list)  # issue_at, key, reason, message
    summary: dict[str, Any] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)  # declared window openings (declared.py)
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


def artifact_from_frame(
    frame: pd.DataFrame, interval: pd.Timedelta, *, base: ForecastArtifact | None = None
) -> ForecastArtifact:
    """A forecast artifact with the frame's intervals (``peak_upper`` defaults to ``yhat_upper``).

    With ``base``, everything else (creation time, zone, events, quality) is kept from it; without, the
    artifact is created at the first interval, as if the forecast had just been made.
    """
    f = frame.reset_index(drop=True)
    peak = f["peak_upper"] if "peak_upper" in f else f["yhat_upper"]
    ivs = tuple(
        Interval(pd.Timestamp(ds), float(m), float(lo), float(hi), float(p))
        for ds, m, lo, hi, p in zip(f["ds"], f["yhat"], f["yhat_lower"], f["yhat_upper"], peak, strict=True)
    )
    if not ivs:
        raise UserError("the forecast has no intervals to plan: use a longer --horizon")
    seconds = int(interval.total_seconds())
    if base is not None:
        return dataclasses.replace(base, intervals=ivs, interval_seconds=seconds,
                                   horizon_seconds=seconds * len(ivs))
    start = ivs[0].ds
    return ForecastArtifact(
        created_at=start, model="whatif", timezone=str(start.tz or "UTC"), interval_seconds=seconds,
        band_level=0.9, history_start=start, history_end=start, history_points=0, source="whatif",
        horizon_seconds=seconds * len(ivs), intervals=ivs,
    )


def scenario_artifact(forecast: ForecastArtifact, scenario: Scenario) -> ForecastArtifact:
    """The forecast scaled by the scenario; its event windows are declared as promotions (for warm-ups)."""
    interval = pd.Timedelta(seconds=forecast.interval_seconds)
    scaled = apply_scenario(forecast.frame(), interval, scenario)
    art = artifact_from_frame(scaled, interval, base=forecast)
    extra = tuple(
        Event(f"what-if {ev.text or ev.start.isoformat()}", "promotion", ev.start, ev.end, ev.factor)
        for ev in scenario.events
    )
    return dataclasses.replace(art, events=(*art.events, *extra))


def _windows(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``mask`` is true."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def capacity_plan(
    forecast: ForecastArtifact | pd.DataFrame,
    config: ControllerConfig,
    *,
    interval: pd.Timedelta | None = None,
    scenario: str = "baseline",
    quota_tps: float | None = None,
    price_per_replica_hour: float | None = None,
    initial_replicas: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Plan:
    """The controller's own plan for the forecast (see :func:`controller.planning.plan.build_plan`),
    summarised (pure).

    A frame needs ``interval`` and is planned as if forecast at its first interval. Without a price the
    cost is None; without a quota there are no quota rows or risks.
    """
    if isinstance(forecast, pd.DataFrame):
        if interval is None:
            raise ValueError("capacity_plan(): a forecast frame needs its interval")
        forecast = artifact_from_frame(forecast, interval)
    res = pd.Timedelta(seconds=forecast.interval_seconds)
    plan, decisions = build_plan(forecast, config, initial_replicas=initial_replicas, progress=progress)
    times = [d.at for d in decisions]
    requested = np.asarray([d.replicas for d in decisions], dtype=np.int64)
    ds = pd.DatetimeIndex(plan["ds"])
    ready = plan["replicas"].to_numpy(dtype=np.int64)
    need = plan["need"].to_numpy(dtype=np.int64)
    peak = plan["peak_upper"].to_numpy(dtype=float)
    hours_f = res.total_seconds() / 3600
    capped = (ready < need) & (ready >= config.max_replicas)
    short = (ready < need) & ~capped
    over_quota = peak > quota_tps if quota_tps is not None else np.zeros(len(plan), bool)
    # Replica-hours are billed from the request: the mean replicas requested while each row is current.
    billed = []
    for t in ds:
        a, b = bisect.bisect_left(times, t), bisect.bisect_left(times, t + res)
        billed.append(float(requested[a:b].mean()) if b > a else float(requested[max(a - 1, 0)]))
    frame = plan.assign(
        capped=capped, short=short, over_quota=over_quota, replica_hours=np.asarray(billed) * hours_f
    )
    hourly = (
        frame.groupby(ds.floor("h"))
        .agg(peak_rate=("peak_upper", "max"), mean_rate=("yhat", "mean"), replicas=("replicas", "max"),
             need=("need", "max"))
        .rename_axis("ds")
        .reset_index()
    )
    risks = []
    for kind, mask in (("max_replicas", capped), ("short", short), ("quota", over_quota)):
        for a, b in _windows(mask):
            risks.append({
                "kind": kind,
                "start": ds[a].isoformat(),
                "end": (ds[b - 1] + res).isoformat(),
                "peak_rate": round(float(peak[a:b].max()), 3),
                "replicas_needed": int(need[a:b].max()),
                "replicas_ready": int(ready[a:b].min()),
                "limit": config.max_replicas if kind != "quota" else quota_tps,
                "reason": ",".join(sorted(set(frame["reason"].iloc[a:b]))),
            })
    schedule = _scale_ups(ds, ready, times, requested, res)
    warmups = [
        {"issue_at": d.at.isoformat(), "key": w.key, "reason": w.reason, "message": w.message}
        for d in decisions for w in d.warmups
    ]
    tally = count_warmups(w["reason"] for w in warmups)
    replica_hours = float(frame["replica_hours"].sum())
    i_peak = int(np.argmax(peak))
    target, table = config.availability_target, forecast.error_quantiles
    summary = {
        "scenario": scenario,
        "peak_demand": float(plan["yhat"].max()),
        "peak_upper": float(peak.max()),
        "peak_at": ds[i_peak].isoformat(),
        "max_replicas_needed": int(need.max()),
        "max_replicas_planned": int(ready.max()),
        "intervals_at_max": int(capped.sum()),
        "hours_at_max": float(capped.sum() * hours_f),
        "hours_short": float(short.sum() * hours_f),
        "quota_tps": quota_tps,
        "hours_over_quota": float(over_quota.sum() * hours_f) if quota_tps is not None else None,
        "replica_hours": replica_hours,
        "price_per_replica_hour": price_per_replica_hour,
        "cost": None if price_per_replica_hour is None else replica_hours * price_per_replica_hour,
        "scale_ups": len(schedule),
        "warmups": tally.total,
        "warmups_by_reason": {"ramp": tally.ramp, "event": tally.event, "new_replicas": tally.new_replicas,
                              "window": tally.window},
        "risk_windows": len(risks),
        "capacity_per_replica": float(config.capacity_per_replica),
        "headroom": float(config.headroom),
        "min_replicas": int(config.min_replicas),
        "max_replicas": int(config.max_replicas),
        "startup": format_duration(pd.Timedelta(seconds=float(config.startup))),
        "lead": format_duration(config.lead),
        "availability_target": "off" if target is None else f"{target:.2%}",
        "backtest_achieved": "-" if target is None or table is None else f"{table.achieved(target):.2%}",
    }
    windows = window_rows(config, ds[0], ds[-1] + res, frame) if config.scaling_windows else []
    plan = Plan(scenario, frame, hourly, risks, schedule, warmups, summary, windows)
    plan.summary["windows"] = describe_windows(config, windows)
    return plan


def _scale_ups(
    ds: pd.DatetimeIndex,
    ready: np.ndarray,
    times: list[pd.Timestamp],
    requested: np.ndarray,
    res: pd.Timedelta,
) -> list[dict[str, Any]]:
    """Each rise of the ready replicas, with the request that readied it: the earliest tick from which the
    controller kept requesting at least the new count until the end of the row."""
    out = []
    for i in range(1, len(ready)):
        if ready[i] <= ready[i - 1]:
            continue
        k = bisect.bisect_left(times, ds[i] + res) - 1
        while k > 0 and requested[k - 1] >= ready[i]:
            k -= 1
        at = times[max(k, 0)]
        out.append({
            "request_at": at.isoformat(),
            "needed_at": ds[i].isoformat(),
            "ahead": format_duration(ds[i] - at),
            "from": int(ready[i - 1]),
            "to": int(ready[i]),
        })
    return out


def plan_doc(plan: Plan) -> dict[str, Any]:
    """The JSON document of one plan (``--json``)."""
    hourly = plan.hourly.assign(ds=plan.hourly["ds"].map(lambda t: t.isoformat()))
    f = plan.frame
    cols = (f["ds"], f["replicas"], f["need"], f["requested"], f["reason"])
    intervals = [
        {"ds": t.isoformat(), "replicas": int(r), "need": int(n), "requested": int(q), "reason": str(why)}
        for t, r, n, q, why in zip(*cols, strict=True)
    ]
    return {
        "summary": plan.summary,
        "risks": plan.risks,
        "schedule": plan.schedule,
        "warmups": plan.warmups,
        "hourly": hourly.to_dict(orient="records"),
        "intervals": intervals,
        "windows": [
            {**w, **{k: w[k].isoformat() for k in ("start", "end", "requested_from")}} for w in plan.windows
        ],
    }




def outside_horizon(events: tuple[EventWindow, ...], forecast: ForecastArtifact) -> list[EventWindow]:
    """The event windows that do not overlap the forecast's horizon (they would change nothing)."""
    start = forecast.intervals[0].ds
    end = forecast.intervals[-1].ds + pd.Timedelta(seconds=forecast.interval_seconds)
    return [ev for ev in events if ev.end <= start or ev.start >= end]
