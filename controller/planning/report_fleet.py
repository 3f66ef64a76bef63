"""The fleet capacity report (``report --fleet``): every scaler's replica plan on one page, and the fleet's.

A platform team asks of a fleet what an SRE asks of one service, summed and side by side: how many replicas
will the fleet run at its peak and when, how many replica-hours and what cost over the horizon, which
services hit their max replicas and when, and when each service's coming peaks are. Each service's plan is
the controller's own decision core replayed through that service's forecast, with that service's scaler
spec (:func:`controller.planning.whatif.capacity_plan`, the plan ``plan`` and ``report`` make), so the page
shows what the fleet controller will do.

The fleet total is exact for step functions: each service's planned replicas hold from one interval start
to the next, so the total at any instant is the sum, over the services whose horizon covers it, of their
current interval's replicas (services may have different intervals). The cards are the rows of
``totals.csv`` and every table is its CSV, headers included, as on the single-service page
(:mod:`controller.planning.report_html`). Pure: forecasts and configs in, frames and files out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from controller.config import ControllerConfig
from controller.planning import report_tables as tables
from controller.planning.report import write_csv
from controller.planning.report_html import Card, Section, render
from controller.planning.whatif import Plan, capacity_plan
from forecaster.artifact import ForecastArtifact
from forecaster.durations import format_duration

STACKED = 8  # services drawn on their own in the chart; the rest are summed as "others"
WHEN = "%a %Y-%m-%d %H:%M"


@dataclass(frozen=True)
class FleetService:
    """One scaler of the fleet: its identity, the config its spec stands for, and its forecast."""

    namespace: str
    name: str
    config: ControllerConfig
    artifact: ForecastArtifact
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class FleetOptions:
    timezone: str
    source: str
    price: float | None = None  # per replica-hour; None: costs read n/a
    currency: str = ""
    skipped: tuple[tuple[str, str], ...] = ()  # (service, why) left out of the page

    @property
    def cost(self) -> str:
        return f"cost ({self.currency})" if self.currency else "cost"


def _local(ts: pd.Timestamp | str, tz: str, fmt: str = WHEN) -> str:
    return pd.Timestamp(ts).tz_convert(tz).strftime(fmt)


def fleet_timeline(services: list[FleetService], plans: dict[str, Plan]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(replicas planned per service on the union of all interval starts, the fleet's totals there)."""
    cols, need, capped, inside = {}, [], [], []
    frames = {s.key: plans[s.key].frame for s in services}
    grid = pd.DatetimeIndex(sorted(set().union(*(set(pd.DatetimeIndex(f["ds"])) for f in frames.values()))))
    for s in services:
        f = frames[s.key]
        ds = pd.DatetimeIndex(f["ds"])
        end = ds[-1] + pd.Timedelta(seconds=s.artifact.interval_seconds)
        covered = (grid >= ds[0]) & (grid < end)
        pos = np.clip(ds.searchsorted(grid, side="right") - 1, 0, len(ds) - 1)
        cols[s.key] = np.where(covered, f["replicas"].to_numpy()[pos], 0)
        need.append(np.where(covered, f["need"].to_numpy()[pos], 0))
        capped.append(covered & f["capped"].to_numpy(dtype=bool)[pos])
        inside.append(covered)
    wide = pd.DataFrame(cols, index=grid)
    total = pd.DataFrame({
        "ds": grid,
        "replicas planned": wide.sum(axis=1).to_numpy(dtype=int),
        "replicas needed": np.sum(need, axis=0).astype(int),
        "services at max": np.sum(capped, axis=0).astype(int),
        "services in horizon": np.sum(inside, axis=0).astype(int),
    })
    return wide, total


def services_table(services: list[FleetService], plans: dict[str, Plan], o: FleetOptions) -> pd.DataFrame:
    """One row per service, the most replica-hours first."""
    total_rh = sum(float(p.summary["replica_hours"]) for p in plans.values()) or 1.0
    rows = []
    for s in services:
        p, a = plans[s.key], s.artifact
        sm = p.summary
        first_max = next((x["start"] for x in p.risks if x["kind"] == "max_replicas"), None)
        wape = (a.backtest or {}).get("wape")
        rows.append({
            "service": s.key,
            "capacity per replica (req/s)": tables.r(s.config.capacity_per_replica, 3),
            "min replicas": int(s.config.min_replicas),
            "max replicas": int(s.config.max_replicas),
            "model": a.model,
            "backtest WAPE (%)": tables.r(100 * float(wape)) if wape is not None else np.nan,
            "peak forecast (req/s)": tables.r(sm["peak_demand"]),
            "peak upper (req/s)": tables.r(sm["peak_upper"]),
            "peak at": _local(sm["peak_at"], o.timezone),
            "replicas needed at peak": int(sm["max_replicas_needed"]),
            "most replicas planned": int(sm["max_replicas_planned"]),
            "hours at max": tables.r(sm["hours_at_max"]),
            "first at max": _local(first_max, o.timezone) if first_max else "-",
            "replica-hours": tables.r(sm["replica_hours"]),
            o.cost: tables.money(sm["cost"]),
            "share of fleet replica-hours (%)": tables.r(100 * float(sm["replica_hours"]) / total_rh),
        })
    out = pd.DataFrame(rows)
    return out.sort_values(["replica-hours", "service"], ascending=[False, True], kind="stable").reset_index(
        drop=True)


def at_max_table(services: list[FleetService], plans: dict[str, Plan], tz: str) -> pd.DataFrame:
    """Every window in which a service is held at its max replicas below its need, earliest first."""
    rows = []
    for s in services:
        for x in plans[s.key].risks:
            if x["kind"] != "max_replicas":
                continue
            start, end = pd.Timestamp(x["start"]), pd.Timestamp(x["end"])
            rows.append({
                "_at": start, "service": s.key, "from": _local(start, tz), "to": _local(end, tz),
                "hours": tables.r((end - start).total_seconds() / 3600),
                "peak (req/s)": tables.r(x["peak_rate"]), "replicas needed": int(x["replicas_needed"]),
                "max replicas": int(x["limit"]),
            })
    cols = ["service", "from", "to", "hours", "peak (req/s)", "replicas needed", "max replicas"]
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows).sort_values(["_at", "service"], kind="stable")[cols].reset_index(drop=True)


def peaks_table(services: list[FleetService], plans: dict[str, Plan], tz: str) -> pd.DataFrame:
    """Each service's peak of each local day: when, how high (peak upper band), the replicas it needs."""
    rows = []
    for s in services:
        f = plans[s.key].frame
        local = pd.DatetimeIndex(f["ds"]).tz_convert(tz)
        for day, g in f.groupby(np.asarray(local.date), sort=True):
            i = g.index[int(np.argmax(g["peak_upper"].to_numpy()))]
            need = int(g["need"].max())
            rows.append({
                "service": s.key, "day": f"{pd.Timestamp(day):%a %Y-%m-%d}",
                "peak at": pd.Timestamp(local[i]).strftime("%H:%M"),
                "peak upper (req/s)": tables.r(float(f["peak_upper"].iloc[i])), "replicas needed": need,
                "max replicas": int(s.config.max_replicas),
                "at max": "yes" if bool(g["capped"].any()) else "no",
            })
    return pd.DataFrame(rows)


def calendar_table(peaks: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Services x days: ``'HH:MM n'`` (the day's peak time and the replicas it needs), ``' max'`` when the
    service is held at its max replicas that day."""
    cell = peaks["peak at"] + " " + peaks["replicas needed"].astype(str) + np.where(
        peaks["at max"] == "yes", " max", "")
    days = list(dict.fromkeys(sorted(peaks["day"], key=lambda d: d[4:])))
    grid = pd.DataFrame({"service": peaks["service"], "day": peaks["day"], "cell": cell}).pivot(
        index="service", columns="day", values="cell")
    grid = grid.reindex(index=order, columns=days).fillna("-")
    grid.columns = [f"{d[:3]} {d[9:]}" for d in days]  # 'Mon 12-07' (the year is in peaks.csv)
    return grid.rename_axis("service").reset_index()


def days_table(services: list[FleetService], plans: dict[str, Plan], total: pd.DataFrame,
               o: FleetOptions) -> pd.DataFrame:
    """Per local day: the fleet's simultaneous peak and when, the sum of the services' own peaks,
    replica-hours, cost, and who is held at max."""
    tz = o.timezone
    t_local = pd.DatetimeIndex(total["ds"]).tz_convert(tz)
    rh: dict[str, float] = {}
    own_peak: dict[str, int] = {}
    at_max: dict[str, list[str]] = {}
    for s in services:
        f = plans[s.key].frame
        day = pd.Series(pd.DatetimeIndex(f["ds"]).tz_convert(tz).date, index=f.index).astype(str)
        for d, g in f.groupby(day, sort=True):
            rh[d] = rh.get(d, 0.0) + float(g["replica_hours"].sum())
            own_peak[d] = own_peak.get(d, 0) + int(g["replicas"].max())
            if bool(g["capped"].any()):
                at_max.setdefault(d, []).append(s.key)
    rows = []
    for d, g in total.groupby(pd.Series(t_local.date, index=total.index).astype(str), sort=True):
        i = g.index[int(np.argmax(g["replicas planned"].to_numpy()))]
        who = at_max.get(d, [])
        rows.append({
            "day": f"{pd.Timestamp(d):%a} {d}",
            "fleet peak replicas": int(total["replicas planned"].iloc[i]),
            "at": pd.Timestamp(t_local[i]).strftime("%H:%M"),
            "sum of the services' peaks": own_peak.get(d, 0),
            "replica-hours": tables.r(rh.get(d, 0.0)),
            o.cost: tables.money(None if o.price is None else rh.get(d, 0.0) * o.price),
            "services at max": len(who),
            "which": ", ".join(who) or "-",
        })
    return pd.DataFrame(rows)


def totals_table(services: list[FleetService], plans: dict[str, Plan], total: pd.DataFrame,
                 at_max: pd.DataFrame, horizon: str, o: FleetOptions) -> pd.DataFrame:
    """The figures of the page's cards, one per row."""
    i = int(np.argmax(total["replicas planned"].to_numpy()))
    rh = sum(float(p.summary["replica_hours"]) for p in plans.values())
    hit = {str(x) for x in at_max["service"]}
    rows = [
        ("services", str(len(services))),
        ("fleet peak replicas (all services at once)", str(int(total["replicas planned"].iloc[i]))),
        ("fleet peak at", _local(total["ds"].iloc[i], o.timezone)),
        ("sum of each service's peak replicas", str(sum(int(p.summary["max_replicas_planned"])
                                                         for p in plans.values()))),
        (f"replica-hours over {horizon}", str(tables.r(rh))),
        (f"{o.cost} over {horizon}", str(tables.money(None if o.price is None else rh * o.price))),
        ("services held at max replicas", f"{len(hit)} of {len(services)}"),
        ("first time a service is held at max", at_max["from"].iloc[0] if len(at_max) else "-"),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def plans_long(services: list[FleetService], plans: dict[str, Plan]) -> pd.DataFrame:
    """Every interval of every service's plan (as plan.csv of the single-service report)."""
    value_cols = ("yhat", "yhat_lower", "yhat_upper", "peak_upper")
    frames = []
    for s in services:
        f = plans[s.key].frame
        f = f.assign(**{c: f[c].round(3) for c in value_cols}, replica_hours=f["replica_hours"].round(4))
        frames.append(f.assign(service=s.key))
    out = pd.concat(frames, ignore_index=True)
    return out[["service", *[c for c in out.columns if c != "service"]]]


def build_fleet_report(
    out: Path, services: list[FleetService], options: FleetOptions,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Write the CSVs and index.html into ``out``; return the frames written (by CSV name)."""
    from controller.planning import report_charts as charts

    if not services:
        raise ValueError("build_fleet_report(): no services")
    o, tz = options, options.timezone
    plans: dict[str, Plan] = {}
    for n, s in enumerate(services, start=1):
        plans[s.key] = capacity_plan(s.artifact, s.config, price_per_replica_hour=o.price)
        if progress is not None:
            progress(n, len(services))
    wide, total = fleet_timeline(services, plans)
    span = total["ds"].iloc[-1] - total["ds"].iloc[0] + pd.Timedelta(
        seconds=min(s.artifact.interval_seconds for s in services))
    horizon = format_duration(span)
    svc = services_table(services, plans, o)
    csv: dict[str, pd.DataFrame] = {}
    csv["services.csv"] = svc
    csv["at_max.csv"] = at_max_table(services, plans, tz)
    csv["peaks.csv"] = peaks_table(services, plans, tz)
    csv["calendar.csv"] = calendar_table(csv["peaks.csv"], list(svc["service"]))
    csv["days.csv"] = days_table(services, plans, total, o)
    csv["totals.csv"] = totals_table(services, plans, total, csv["at_max.csv"], horizon, o)
    csv["total.csv"] = total
    csv["plans.csv"] = plans_long(services, plans)
    for name, frame in csv.items():
        write_csv(frame, out / name)

    cards = [Card(str(item), str(value), "bad" if item.startswith("services held") and
                  not str(value).startswith("0 ") else "")
             for item, value in csv["totals.csv"].itertuples(index=False)]
    top = list(svc["service"][:STACKED])
    sections = [
        Section(
            "The fleet",
            "Replicas ready and warm across every service, from each service's own decide() replay (as "
            "`recharge-autoscaler plan`) on its forecast and its scaler spec. The fleet's peak is the most "
            "replicas running at one moment, which is at most the sum of each service's own peak.",
            charts=[("Replicas planned, by service, and the fleet's need", charts.fleet_chart(
                wide, top, total, tz))],
            tables=[("Day by day (local time)", csv["days.csv"], "days.csv")],
            links=[("the fleet at every interval start", "total.csv"),
                   ("every interval of every service's plan", "plans.csv")],
        ),
        Section("Services", "Most replica-hours first. Peak upper is the upper band of the peak rate inside "
                "an interval, which capacity covers.",
                tables=[("Per service", svc, "services.csv")]),
        Section(
            "Who hits max when",
            "Windows in which a service needs more replicas than its maxReplicas allows: raise the max (and "
            "the HPA's), or plan for the shortfall.",
            tables=[("Held at max replicas", csv["at_max.csv"], "at_max.csv")] if len(csv["at_max.csv"])
            else [],
            bullets=[] if len(csv["at_max.csv"]) else [f"No service reaches its max in the next {horizon}."],
        ),
        Section(
            "Calendar of the coming peaks",
            f"Each service's peak of each day ({tz}): its time and the replicas it needs; 'max' when the "
            "service is held at its max replicas that day. The peak rates are in peaks.csv.",
            tables=[("Peaks by day", csv["calendar.csv"], "calendar.csv")],
            links=[("each peak with its rate", "peaks.csv")],
        ),
    ]
    if o.skipped:
        sections.append(Section("Not included", "Scalers the report could not plan:", bullets=[
            f"{who}: {why}" for who, why in o.skipped], bullet_class="risk"))
    subtitle = (
        f"{len(services)} services from {o.source}; forecasts from "
        f"{_local(total['ds'].iloc[0], tz)} for {horizon} ({tz})"
    )
    (out / "index.html").write_text(render("Fleet capacity report", subtitle, cards, sections), "utf-8")
    return csv
