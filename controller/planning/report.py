"""The capacity report (``report``): a self-contained HTML page plus the CSVs behind every number.

An SRE opening ``index.html`` should see the next week's capacity at a glance: the peak, the replicas it
needs, whether max replicas or a quota is hit, when scale-ups must be requested, what it costs, how good
the forecast has been, and how the predictive controller compares with a plain HPA and the physical limit
on recent history. The page has no scripts and loads nothing from the network; charts are PNGs embedded
as data URIs. Each table on the page is rendered from the same rounded frame written to its CSV.

The replica plan, its scale-up schedule, warm-ups, risks and cost come from the controller's own decision
core replayed through the forecast (:func:`controller.planning.whatif.capacity_plan` over
:func:`controller.planning.plan.build_plan`), so the page shows what the controller will do, not an estimate
of it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from controller.config import ControllerConfig
from controller.planning.report_html import Card, Section, render
from controller.planning.whatif import (
    RISK_COLUMNS,
    SCHEDULE_COLUMNS,
    WARMUP_COLUMNS,
    Plan,
    artifact_from_frame,
    capacity_plan,
)
from forecaster.artifact import ForecastArtifact
from forecaster.durations import format_duration


def simulate_recent(
    rate: pd.Series,
    cfg: ControllerConfig,
    params: Any,
    span: pd.Timedelta,
    *,
    calendar: Any,
    model: str,
    timezone: str,
    where: str,
) -> pd.DataFrame | None:
    """Replay the last ``span`` of history through predictive, reactive and oracle: metrics + timelines.

    ``params`` are the :class:`~controller.planning.simulate.SimParams` of the cluster; the predictive
    policy refits ``model`` daily. None when the history is too short to leave a day before the window.
    """
    from controller.planning.policies import OraclePolicy, ReactivePolicy
    from controller.planning.predictive import PredictivePolicy, pipeline_forecaster
    from controller.planning.simulate import Policy, compare, make_trace, simulate

    start = rate.index[-1] - span
    if start <= rate.index[0] + pd.Timedelta(days=1):
        return None
    window = rate[rate.index > start]
    trace = make_trace(window, where=where)
    fc = pipeline_forecaster(model, timezone, calendar=calendar)
    policies: list[Policy] = [
        PredictivePolicy(config=cfg, history=rate, forecaster=fc),
        ReactivePolicy(),
        OraclePolicy(),
    ]
    results = [simulate(trace, p, params) for p in policies]
    table = compare(results)
    table.attrs["timelines"] = {r.policy: r.frame() for r in results}
    table.attrs["notes"] = [f"{r.policy}: {n}" for r in results for n in r.notes]
    return table


def _r(x: float, nd: int = 1) -> float:
    return float(round(float(x), nd))


def build_report(
    out: Path,
    *,
    rate: pd.Series,
    result: Any,
    cfg: ControllerConfig,
    price: float,
    quota: float | None,
    timezone: str,
    source: str,
    sim: pd.DataFrame | None,
    artifact: ForecastArtifact | None = None,
) -> dict[str, pd.DataFrame]:
    """Write CSVs and index.html into ``out``; returns the frames written (by CSV name).

    The replica plan is the controller's own (:func:`controller.planning.whatif.capacity_plan`, i.e. the
    decide()
    replay of ``plan``) on ``artifact`` (default: the result's frame, as if forecast at its first interval).
    """
    from controller.planning import report_charts as charts

    fc = result.frame.reset_index(drop=True)
    freq: pd.Timedelta = result.freq
    art = artifact if artifact is not None else artifact_from_frame(fc, freq)
    plan = capacity_plan(art, cfg, quota_tps=quota, price_per_replica_hour=price)
    tz = timezone
    csv: dict[str, pd.DataFrame] = {}

    recent = rate[rate.index > rate.index[-1] - pd.Timedelta(days=14)]
    csv["history.csv"] = pd.DataFrame({"ds": rate.index, "rate": rate.to_numpy()})
    fc_out = fc[["ds", "yhat", "yhat_lower", "yhat_upper", "peak_upper"]].copy()
    for c in ("yhat", "yhat_lower", "yhat_upper", "peak_upper"):
        fc_out[c] = fc_out[c].round(3)
    csv["forecast.csv"] = fc_out
    events = result.events if isinstance(result.events, pd.DataFrame) else pd.DataFrame()
    csv["events.csv"] = events.reset_index(drop=True)
    rounded = {c: plan.frame[c].round(3) for c in ("yhat", "yhat_lower", "yhat_upper", "peak_upper")}
    csv["plan.csv"] = plan.frame.assign(**rounded, replica_hours=plan.frame["replica_hours"].round(4))
    schedule = pd.DataFrame(plan.schedule, columns=SCHEDULE_COLUMNS)
    csv["scaleups.csv"] = schedule
    warmups = pd.DataFrame(plan.warmups, columns=WARMUP_COLUMNS)
    csv["warmups.csv"] = warmups
    peak_days = _peak_days(plan, freq, tz, price)
    csv["peak_days.csv"] = peak_days
    cost = _cost_outlook(plan, freq, price)
    csv["cost.csv"] = cost
    quality = _quality(result)
    csv["quality.csv"] = quality
    sim_table = _sim_table(sim) if sim is not None else None
    if sim_table is not None:
        csv["simulation.csv"] = sim_table
    risks = pd.DataFrame(plan.risks, columns=RISK_COLUMNS)
    csv["risks.csv"] = risks
    for name, frame in csv.items():
        _write_csv(frame, out / name)

    s = plan.summary
    first_up = schedule.iloc[0] if len(schedule) else None
    cards = [
        Card("peak forecast (req/s)", f"{_r(s['peak_demand'])}"),
        Card("peak upper band (req/s)", f"{_r(s['peak_upper'])}"),
        Card("peak at", pd.Timestamp(s["peak_at"]).tz_convert(tz).strftime("%a %d %b %H:%M")),
        Card(
            "replicas needed at peak",
            str(s["max_replicas_needed"]),
            "bad" if s["max_replicas_needed"] > cfg.ceiling else "",
        ),
        Card("hours capped at max replicas", f"{_r(s['hours_at_max'])}", "bad" if s["hours_at_max"] else ""),
        Card(f"cost over {format_duration(freq * len(fc))}", f"{_r(s['cost'], 2)}"),
    ]
    if quota is not None:
        cards.append(
            Card(
                f"hours over quota {quota:g} req/s",
                f"{_r(s['hours_over_quota'])}",
                "bad" if s["hours_over_quota"] else "",
            )
        )
    sections = [
        Section(
            "Forecast",
            f"Model {result.model}; band {result.band_level:.0%}; interval {format_duration(freq)}; "
            "the dashed line is the upper band of the peak rate inside each interval, which capacity covers.",
            images=[
                ("history and forecast", charts.forecast_chart(recent, fc, events, result.band_level, tz))
            ],
            tables=[("Declared and calendar events", csv["events.csv"], "events.csv")] if len(events) else [],
        ),
        Section(
            "Replica plan",
            f"Replicas ready and warm in each interval, from the controller's own decide() replayed "
            f"through the forecast (as `recharge-autoscaler plan`): each interval needs its peak upper "
            f"band, or its mean + {cfg.headroom:.0%} headroom if more, at {cfg.capacity_per_replica:g} "
            f"req/s per replica, between {cfg.min_replicas} and {cfg.max_replicas}; scale-ups are requested "
            f"{format_duration(cfg.lead)} ahead (start-up "
            f"{format_duration(pd.Timedelta(seconds=float(cfg.startup)))} + warm-up "
            f"{format_duration(pd.Timedelta(seconds=float(cfg.warmup_time)))}), with the configured "
            "stabilisation and rate limits.",
            images=[("replica plan", charts.plan_chart(plan.frame, schedule, cfg.max_replicas, tz))],
            tables=[
                ("Peak days", peak_days, "peak_days.csv"),
                ("Cache warm-ups the controller issues: ramps, events, new replicas (first 24)",
                 warmups.head(24), "warmups.csv"),
                ("Scale-ups (first 24)", schedule.head(24), "scaleups.csv"),
            ],
            bullets=[
                f"First scale-up: request at {first_up['request_at']} for {first_up['to']} replicas "
                f"ready by {first_up['ready_by']}"
            ]
            if first_up is not None
            else [],
        ),
        Section(
            "Risks",
            "Windows where the replicas ready fall short of the need at max replicas (max_replicas) or "
            "below it (short: a rate limit held the scale-up back), or the forecast exceeds the quota.",
            tables=[("Risk windows", risks, "risks.csv")] if len(risks) else [],
            bullets=[] if len(risks) else ["No risk windows in the horizon."],
        ),
        Section("Cost outlook", tables=[("Cost", cost, "cost.csv")]),
        Section(
            "Forecast quality",
            "Rolling-origin backtest of the chosen model (WAPE: sum|error| / sum actual; "
            "coverage: share of actuals inside the band).",
            tables=[("Backtest", quality, "quality.csv")],
        ),
    ]
    if sim_table is not None and sim is not None:
        tl = sim.attrs.get("timelines", {})
        sections.append(
            Section(
                "Simulated comparison on recent history",
                "The same decide() the controller runs, replayed with daily-refitted forecasts made "
                "only from earlier "
                "data, against a Kubernetes HPA and the oracle (perfect foresight, the physical limit).",
                images=[("simulation", charts.simulation_chart(tl, cfg.capacity_per_replica, tz))]
                if tl
                else [],
                tables=[("Policies", sim_table, "simulation.csv")],
                bullets=list(sim.attrs.get("notes", [])),
            )
        )
    notes = [f"{n.severity}: {n.message}" for n in getattr(result, "notes", ())]
    if notes:
        sections.append(Section("Data quality notes", bullets=notes))
    subtitle = (
        f"{source}: history {rate.index[0].isoformat()} to {rate.index[-1].isoformat()}; "
        f"forecast {pd.Timestamp(fc['ds'].iloc[0]).isoformat()} + {format_duration(freq * len(fc))}; "
        f"capacity {cfg.capacity_per_replica:g} req/s per replica"
    )
    page = render("Recharge capacity report", subtitle, cards, sections)
    (out / "index.html").write_text(page, encoding="utf-8")
    return csv


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    f = frame.copy()
    for c in f.columns:
        if isinstance(f[c].dtype, pd.DatetimeTZDtype):
            f[c] = f[c].map(lambda t: t.isoformat())
    f.to_csv(path, index=False)


def _peak_days(plan: Plan, freq: pd.Timedelta, tz: str, price: float) -> pd.DataFrame:
    f = plan.frame.copy()
    local = pd.DatetimeIndex(f["ds"]).tz_convert(tz)
    f["day"] = [str(d) for d in local.date]
    hours = freq.total_seconds() / 3600
    rows = []
    for day, g in f.groupby("day", sort=True):
        i = int(g["peak_upper"].to_numpy().argmax())
        rh = float(g["replica_hours"].sum())
        rows.append(
            {
                "day": f"{pd.Timestamp(day):%a} {day}",
                "peak_forecast": _r(g["yhat"].max()),
                "peak_upper": _r(g["peak_upper"].max()),
                "peak_at": pd.Timestamp(local[g.index[i]]).strftime("%H:%M"),
                "max_replicas": int(g["replicas"].max()),
                "needed": int(g["need"].max()),
                "hours_at_max": _r(g["capped"].sum() * hours),
                "replica_hours": _r(rh),
                "cost": _r(rh * price, 2),
            }
        )
    return pd.DataFrame(rows).sort_values("peak_upper", ascending=False).reset_index(drop=True)


def _cost_outlook(plan: Plan, freq: pd.Timedelta, price: float) -> pd.DataFrame:
    hours = len(plan.frame) * freq.total_seconds() / 3600
    rh = float(plan.frame["replica_hours"].sum())
    per_day = rh / hours * 24 if hours else 0.0
    return pd.DataFrame(
        [
            {"item": "replica-hours over the horizon", "value": _r(rh)},
            {"item": "cost over the horizon", "value": _r(rh * price, 2)},
            {"item": "average replicas", "value": _r(rh / hours if hours else 0.0, 2)},
            {"item": "cost per day", "value": _r(per_day * price, 2)},
            {"item": "cost per 30 days (at this rate)", "value": _r(per_day * price * 30, 2)},
            {"item": "price per replica-hour", "value": _r(price, 4)},
        ]
    )


def _quality(result: Any) -> pd.DataFrame:
    rows = []
    bt = getattr(result, "backtest", None) or {}
    for key in ("wape", "mape", "bias", "coverage", "folds"):
        if key in bt and bt[key] is not None and not (isinstance(bt[key], float) and math.isnan(bt[key])):
            rows.append({"model": f"{result.model} (chosen)", "metric": key, "value": _r(bt[key], 4)})
    scores = getattr(result, "scores", None)
    if isinstance(scores, pd.DataFrame) and len(scores):
        sc = scores.reset_index()
        name_col = sc.columns[0]
        for _, row in sc.iterrows():
            for key in ("wape", "coverage"):
                if key in sc.columns and pd.notna(row[key]):
                    rows.append({"model": str(row[name_col]), "metric": key, "value": _r(row[key], 4)})
    if not rows:
        rows.append({"model": result.model, "metric": "backtest", "value": float("nan")})
    return pd.DataFrame(rows)


def _sim_table(sim: pd.DataFrame) -> pd.DataFrame:
    t = sim.reset_index()
    out = pd.DataFrame(
        {
            "policy": t["policy"],
            "intervals_short_pct": (t["short_interval_share"] * 100).round(2),
            "time_short_pct": (t["short_time_share"] * 100).round(2),
            "requests_short_pct": (t["short_request_share"] * 100).round(3),
            "worst_shortfall_rps": t["worst_shortfall_rps"].round(1),
            "replica_hours": t["replica_hours"].round(1),
            "vs_oracle": t.get("vs_oracle_replica_hours", pd.Series(np.nan, index=t.index)).round(3),
            "cost": t["cost"].round(2),
            "scaling_actions": t["scaling_actions"].astype(int),
            "warmups_issued": t["warmups_issued"].astype(int),
        }
    )
    return out
