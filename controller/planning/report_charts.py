"""Charts of the capacity report, drawn with matplotlib into PNG bytes.

The Agg backend is selected inside each call (never at import time), so importing this module has no side
effects and works without a display.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def forecast_chart(
    history: pd.Series, forecast: pd.DataFrame, events: pd.DataFrame, band_level: float, timezone: str
) -> bytes:
    """Recent history, the forecast with its band and peak band, and event markers."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 4.2))
    h = history.tz_convert(timezone)
    ds = pd.DatetimeIndex(forecast["ds"]).tz_convert(timezone)
    ax.plot(h.index, h.to_numpy(), color="#3a4a6b", lw=1, label="history (req/s)")
    ax.fill_between(
        ds,
        forecast["yhat_lower"],
        forecast["yhat_upper"],
        color="#7fb3f5",
        alpha=0.45,
        label=f"{band_level:.0%} band",
    )
    ax.plot(ds, forecast["peak_upper"], color="#d9822b", lw=1, ls="--", label="peak upper (capacity target)")
    ax.plot(ds, forecast["yhat"], color="#1f6fd1", lw=1.4, label="forecast")
    if len(ds):
        ax.axvline(ds[0], color="#888", lw=1, ls=":")
    for _, ev in events.iterrows():
        start = pd.Timestamp(ev["start"]).tz_convert(timezone)
        end = pd.Timestamp(ev["end"]).tz_convert(timezone)
        ax.axvspan(start, end, color="#c9a227", alpha=0.15)
        ax.text(start, ax.get_ylim()[1] * 0.97, str(ev["name"])[:24], fontsize=7, va="top", rotation=90)
    ax.set_ylabel("requests per second")
    ax.set_title(f"Traffic: recent history and forecast ({timezone})")
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    ax.grid(alpha=0.3)
    return _png(fig)


def plan_chart(plan: pd.DataFrame, schedule: pd.DataFrame, max_replicas: int, timezone: str) -> bytes:
    """Planned replicas per interval, the max-replicas cap, and when each scale-up must be requested."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 3.6))
    ds = pd.DatetimeIndex(plan["ds"]).tz_convert(timezone)
    ax.step(ds, plan["replicas"], where="post", color="#1f6fd1", lw=1.5, label="planned replicas")
    ax.step(ds, plan["need"], where="post", color="#d9822b", lw=1, ls="--", label="needed (uncapped)")
    ax.axhline(max_replicas, color="#c0392b", lw=1, ls=":", label=f"max replicas ({max_replicas})")
    if len(schedule):
        req = pd.DatetimeIndex(pd.to_datetime(schedule["request_at"], utc=True)).tz_convert(timezone)
        ax.scatter(
            req,
            schedule["to"],
            marker="^",
            color="#2e8b57",
            s=18,
            zorder=3,
            label="scale-up requested (start-up + warm-up ahead)",
        )
    ax.set_ylabel("replicas")
    ax.set_title("Replica plan")
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    ax.grid(alpha=0.3)
    return _png(fig)


def simulation_chart(timelines: dict[str, pd.DataFrame], capacity: float, timezone: str) -> bytes:
    """Demand against ready capacity for each simulated policy."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 3.8))
    colors = {"predictive": "#1f6fd1", "reactive": "#c0392b", "oracle": "#2e8b57", "cron": "#8e44ad"}
    first = next(iter(timelines.values()), None)
    if first is not None:
        ds = pd.DatetimeIndex(first["ds"]).tz_convert(timezone)
        ax.plot(ds, first["demand"], color="#222", lw=1, label="demand (req/s)")
    for name, tl in timelines.items():
        ds = pd.DatetimeIndex(tl["ds"]).tz_convert(timezone)
        ax.step(
            ds,
            tl["ready"] * capacity,
            where="post",
            lw=1,
            color=colors.get(name),
            alpha=0.85,
            label=f"{name}: ready capacity",
        )
    ax.set_ylabel("requests per second")
    ax.set_title("Simulated replay of recent history")
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    ax.grid(alpha=0.3)
    return _png(fig)
