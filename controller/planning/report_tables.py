"""The tables of the capacity report, as frames with the headers a reader sees (and the CSVs carry).

:mod:`controller.planning.report` decides what the page shows; this module turns plans, backtest scores and
simulation results into small, rounded frames whose column names are readable ("peak upper (req/s)", not
``peak_upper``). The page renders each frame as it is written to its CSV, so every number on the page is a
CSV cell. Long lists (every scale-up, every warm-up) stay in their CSVs; the page shows per-day summaries.
Pure: frames in, frames out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from controller.planning.warmups import count_warmups
from controller.planning.whatif import Plan

POLICY_ORDER = ("predictive", "reactive", "cron", "oracle", "as run")


def r(x: float, nd: int = 1) -> float:
    """Round for the page and the CSV alike."""
    return float(round(float(x), nd))


def money(value: float | None, nd: int = 2) -> float | str:
    """A cost cell: rounded, or ``'n/a'`` when there is no price."""
    return "n/a" if value is None else r(value, nd)


def need_of(rate: float, capacity: float, lo: int) -> int:
    """Replicas a rate needs at ``capacity`` req/s each (at least ``lo``)."""
    return max(lo, math.ceil(float(rate) / capacity - 1e-9))


def daily_summary(
    plan: Plan, freq: pd.Timedelta, tz: str, price: float | None, capacity: float, min_replicas: int,
    cost: str,
) -> pd.DataFrame:
    """One row per local day: peak and its band, the replicas the band implies, the first scale-up, how
    many scale-ups and warm-ups, hours at max, replica-hours and cost."""
    f = plan.frame
    local = pd.DatetimeIndex(f["ds"]).tz_convert(tz)
    day_of = pd.Series([str(d) for d in local.date], index=f.index)
    ups = pd.DataFrame(plan.schedule)
    up_days = (
        pd.Series([str(pd.Timestamp(t).tz_convert(tz).date()) for t in ups["request_at"]])
        if len(ups) else pd.Series(dtype=str)
    )
    warm_days = pd.Series([str(pd.Timestamp(w["issue_at"]).tz_convert(tz).date()) for w in plan.warmups],
                          dtype=str)
    warm_reasons = pd.Series([w["reason"] for w in plan.warmups], dtype=str)
    hours = freq.total_seconds() / 3600
    rows = []
    for day, g in f.groupby(day_of, sort=True):
        i = int(g["peak_upper"].to_numpy().argmax())
        rh = float(g["replica_hours"].sum())
        first = ups[up_days.to_numpy() == day] if len(ups) else ups
        warm = count_warmups(warm_reasons[warm_days == day])
        rows.append({
            "day": f"{pd.Timestamp(day):%a} {day}",
            "peak forecast (req/s)": r(g["yhat"].max()),
            "peak upper (req/s)": r(g["peak_upper"].max()),
            "peak at": pd.Timestamp(local[g.index[i]]).strftime("%H:%M"),
            "replicas (band)": (
                f"{need_of(g['yhat_lower'].max(), capacity, min_replicas)}-{int(g['need'].max())}"
            ),
            "most replicas planned": int(g["replicas"].max()),
            "first scale-up": (
                pd.Timestamp(first["request_at"].iloc[0]).tz_convert(tz).strftime("%H:%M:%S")
                if len(first) else "-"
            ),
            "scale-ups": len(first),
            "warm-ups": warm.total,
            "hours at max": r(g["capped"].sum() * hours),
            "replica-hours": r(rh),
            cost: money(None if price is None else rh * price),
        })
    return pd.DataFrame(rows)


def cost_outlook(plan: Plan, freq: pd.Timedelta, price: float | None, currency: str) -> pd.DataFrame:
    """Replica-hours and what they cost over the horizon, per day and per 30 days."""
    hours = len(plan.frame) * freq.total_seconds() / 3600
    rh = float(plan.frame["replica_hours"].sum())
    per_day = rh / hours * 24 if hours else 0.0
    unit = f" ({currency})" if currency else ""

    def priced(x: float) -> float | str:
        return money(None if price is None else x * price)

    return pd.DataFrame(
        [
            {"item": "replica-hours over the horizon", "value": r(rh)},
            {"item": "average replicas", "value": r(rh / hours if hours else 0.0, 2)},
            {"item": f"cost over the horizon{unit}", "value": priced(rh)},
            {"item": f"cost per day{unit}", "value": priced(per_day)},
            {"item": f"cost per 30 days at this rate{unit}", "value": priced(per_day * 30)},
            {"item": f"price per replica-hour{unit}", "value": "n/a" if price is None else r(price, 4)},
        ]
    )


def quality(result: Any) -> pd.DataFrame:
    """Backtest scores in percent, one row per model, best first, the chosen model (or blend) on top."""
    def pct(v: Any, nd: int = 1) -> float:
        x = float(v) if v is not None else math.nan
        return r(100 * x, nd) if math.isfinite(x) else math.nan

    rows = []
    bt = getattr(result, "backtest", None) or {}
    if bt:
        rows.append({
            "model": f"{result.model} (chosen)",
            "WAPE (%)": pct(bt.get("wape")),
            "MAPE (%)": pct(bt.get("mape")),
            "bias (%)": pct(bt.get("bias")),
            "band coverage (%)": pct(bt.get("coverage")),
            "folds": int(bt.get("folds", 0) or 0),
        })
    scores = getattr(result, "scores", None)
    if isinstance(scores, pd.DataFrame) and len(scores):
        for alias, row in scores.sort_values("wape", na_position="last").iterrows():
            rows.append({
                "model": str(alias),
                "WAPE (%)": pct(row.get("wape")),
                "MAPE (%)": pct(row.get("mape")),
                "bias (%)": pct(row.get("bias")),
                "band coverage (%)": pct(row.get("coverage")),
                "folds": int(row["folds"]) if math.isfinite(float(row.get("folds", math.nan))) else 0,
            })
    if not rows:
        rows.append({"model": result.model, "WAPE (%)": math.nan, "MAPE (%)": math.nan, "bias (%)": math.nan,
                     "band coverage (%)": math.nan, "folds": 0})
    return pd.DataFrame(rows)


def simulation(sim: pd.DataFrame, price: float | None, cost: str, warms: dict[str, bool]) -> pd.DataFrame:
    """The policy comparison with readable headers; warm-ups read ``-`` for a policy that makes none."""
    t = sim.reset_index()
    t = t.assign(_order=[POLICY_ORDER.index(p) if p in POLICY_ORDER else 99 for p in t["policy"]])
    t = t.sort_values("_order", kind="stable").reset_index(drop=True)
    vs = t["vs_oracle_replica_hours"] if "vs_oracle_replica_hours" in t else pd.Series(np.nan, index=t.index)
    return pd.DataFrame(
        {
            "policy": t["policy"],
            "intervals short (%)": (t["short_interval_share"] * 100).round(2),
            "time short (%)": (t["short_time_share"] * 100).round(2),
            "requests short (%)": (t["short_request_share"] * 100).round(3),
            "worst shortfall (req/s)": t["worst_shortfall_rps"].round(1),
            "replica-hours": t["replica_hours"].round(1),
            "vs oracle (x)": vs.round(3),
            cost: [money(c if price is not None else None) for c in t["cost"]],
            "scaling actions": t["scaling_actions"].astype(int),
            "warm-ups": [str(int(w)) if warms.get(p, False) else "-"
                         for p, w in zip(t["policy"], t["warmups_issued"], strict=True)],
        }
    )


def risks(plan: Plan, tz: str) -> pd.DataFrame:
    """Risk windows in local time with readable headers."""
    kinds = {"max_replicas": "at max replicas", "short": "short below max", "quota": "over quota"}
    rows = [
        {
            "kind": kinds.get(x["kind"], x["kind"]),
            "from": pd.Timestamp(x["start"]).tz_convert(tz).strftime("%a %Y-%m-%d %H:%M"),
            "to": pd.Timestamp(x["end"]).tz_convert(tz).strftime("%a %Y-%m-%d %H:%M"),
            "peak (req/s)": r(x["peak_rate"]),
            "replicas needed": x["replicas_needed"],
            "replicas ready": x["replicas_ready"],
            "limit": x["limit"],
            "reason": x["reason"],
        }
        for x in plan.risks
    ]
    columns = ["kind", "from", "to", "peak (req/s)", "replicas needed", "replicas ready", "limit", "reason"]
    return pd.DataFrame(rows, columns=columns)


def scenarios(plans: list[tuple[str, Plan]], price: float | None, cost: str) -> pd.DataFrame:
    """Baseline and each scenario side by side (one row each), all replayed through decide()."""
    rows = []
    for name, p in plans:
        s = p.summary
        rows.append({
            "scenario": name,
            "peak upper (req/s)": r(s["peak_upper"]),
            "replicas needed at peak": int(s["max_replicas_needed"]),
            "most replicas planned": int(s["max_replicas_planned"]),
            "hours at max": r(s["hours_at_max"]),
            "hours short": r(s["hours_short"]),
            "replica-hours": r(s["replica_hours"]),
            cost: money(s["cost"] if price is not None else None),
            "scale-ups": int(s["scale_ups"]),
            "warm-ups": int(s["warmups"]),
        })
    return pd.DataFrame(rows)
