"""Charts of the capacity report, drawn with matplotlib as inline SVG.

SVG rather than PNG: the charts stay sharp at any zoom, scale to the page width (no horizontal scrolling at
1280 px), and their text stays text, so a browser test can check that every axis carries a label. Each
axis label gets an id (``<chart>-xlabel-<n>`` / ``<chart>-ylabel-<n>``), and every id in a chart is
prefixed with the chart's name so several charts can share one page.

Charts show what a reader acts on: axes scaled to the data (not to ``--max-replicas``), a limit drawn only
when the data comes near it, legends below the plot so they never cover a line, and long timelines
summarised per interval (highest demand, lowest ready capacity) so the page stays small.

The Agg backend is selected inside each call (never at import time), so importing this module has no side
effects and works without a display.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

NEAR_MAX = 1.25  # draw the max-replicas line when it is within 25% above the highest planned count
COLORS = {"predictive": "#1f6fd1", "reactive": "#c0392b", "cron": "#8e44ad", "oracle": "#2e8b57",
          "as run": "#222222"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({
        "svg.fonttype": "none",  # text stays text
        "svg.hashsalt": "recharge-report",  # stable ids: the same data gives the same page
        "font.family": "DejaVu Sans",
        "font.size": 9,
    })
    import matplotlib.pyplot as plt

    return plt


def _label(ax: Any, chart: str, n: int, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.label.set_gid(f"xlabel-{n}")
    ax.yaxis.label.set_gid(f"ylabel-{n}")


def _legend_below(ax: Any, ncol: int = 4, y: float = -0.16) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, y), ncol=ncol, fontsize=8, frameon=False)


def _svg(fig: Any, chart: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _plt().close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inline in HTML
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{chart}-\1"', text)
    text = text.replace("url(#", f"url(#{chart}-").replace('href="#', f'href="#{chart}-')
    return text.replace("<svg ", f'<svg role="img" aria-label="{chart} chart" ', 1)


def _ax_time(ax: Any, timezone: str) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=timezone))
    ax.grid(alpha=0.3)


def forecast_chart(
    history: pd.Series,
    forecast: pd.DataFrame,
    events: pd.DataFrame,
    band_level: float,
    timezone: str,
    outages: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
) -> str:
    """Recent history, the forecast with its band and peak band, event spans and excluded outages."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 4.0))
    h = history.tz_convert(timezone)
    ds = pd.DatetimeIndex(forecast["ds"]).tz_convert(timezone)
    ax.plot(h.index, h.to_numpy(), color="#3a4a6b", lw=1, label="history")
    ax.fill_between(ds, forecast["yhat_lower"], forecast["yhat_upper"], color="#7fb3f5", alpha=0.45,
                    label=f"{band_level:.0%} band")
    ax.plot(ds, forecast["peak_upper"], color="#d9822b", lw=1, ls="--", label="peak upper (capacity target)")
    ax.plot(ds, forecast["yhat"], color="#1f6fd1", lw=1.4, label="forecast")
    if len(ds):
        ax.axvline(ds[0], color="#888", lw=1, ls=":")
    top = float(np.nanmax([np.nanmax(h.to_numpy()) if len(h) else 0, forecast["peak_upper"].max()]))
    ax.set_ylim(0, top * 1.12 if top > 0 else 1)
    shown = False
    for start, end in outages:
        ax.axvspan(pd.Timestamp(start).tz_convert(timezone), pd.Timestamp(end).tz_convert(timezone),
                   facecolor="#999", alpha=0.25, hatch="//", edgecolor="#666",
                   label=None if shown else "excluded outage (not learned as demand)")
        shown = True
    for n, (_, ev) in enumerate(events.iterrows()):
        start = pd.Timestamp(ev["start"]).tz_convert(timezone)
        end = pd.Timestamp(ev["end"]).tz_convert(timezone)
        ax.axvspan(start, end, color="#c9a227", alpha=0.15, label="calendar event" if n == 0 else None)
        ax.text(start, top * 1.1, f" {str(ev['name'])[:28]}", fontsize=7, va="top")
    _label(ax, "forecast", 1, f"time ({timezone})", "requests per second")
    ax.set_title("Traffic: recent history and forecast")
    _ax_time(ax, timezone)
    _legend_below(ax)
    return _svg(fig, "forecast")


def plan_chart(
    plan: pd.DataFrame, max_replicas: int, timezone: str, band_low: np.ndarray | None = None
) -> str:
    """Replicas planned per interval, the need, the range the band implies, and max replicas when near."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(12, 3.4))
    ds = pd.DatetimeIndex(plan["ds"]).tz_convert(timezone)
    need = plan["need"].to_numpy(dtype=float)
    if band_low is not None:
        ax.fill_between(ds, band_low, need, step="post", color="#f3c98b", alpha=0.5,
                        label="replicas the band implies (low to high)")
    ax.step(ds, plan["replicas"], where="post", color="#1f6fd1", lw=1.5, label="planned replicas (ready)")
    ax.step(ds, need, where="post", color="#d9822b", lw=1, ls="--", label="needed at the peak upper band")
    top = float(max(plan["replicas"].max(), need.max(), 1))
    if max_replicas <= NEAR_MAX * top:
        ax.axhline(max_replicas, color="#c0392b", lw=1, ls=":", label=f"max replicas ({max_replicas})")
        top = max(top, float(max_replicas))
    ax.set_ylim(0, top * 1.1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _label(ax, "plan", 1, f"time ({timezone})", "replicas")
    ax.set_title("Replica plan")
    _ax_time(ax, timezone)
    _legend_below(ax)
    return _svg(fig, "plan")


def per_interval(tl: pd.DataFrame, column: str, interval: pd.Timedelta, how: str) -> pd.Series:
    """A per-step timeline column summarised per trace interval (``max`` or ``min``)."""
    s = pd.Series(tl[column].to_numpy(dtype=float), index=pd.DatetimeIndex(tl["ds"]))
    return s.resample(interval).agg(how)


def simulation_chart(
    timelines: dict[str, pd.DataFrame], capacity: float, timezone: str, interval: pd.Timedelta
) -> str:
    """Highest demand against lowest ready capacity per trace interval, for each replayed policy."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 3.6))
    first = next(iter(timelines.values()), None)
    if first is not None:
        demand = per_interval(first, "demand", interval, "max")
        ax.plot(demand.index.tz_convert(timezone), demand.to_numpy(), color="#777", lw=1.2,
                label="demand (highest in each interval)")
    for name, tl in timelines.items():
        ready = per_interval(tl, "ready", interval, "min") * capacity
        ax.step(ready.index.tz_convert(timezone), ready.to_numpy(), where="post", lw=1,
                color=COLORS.get(name), alpha=0.85, label=f"{name}: ready capacity (lowest)")
    _label(ax, "simulation", 1, f"time ({timezone})", "requests per second")
    ax.set_title("Simulated replay of recent history")
    _ax_time(ax, timezone)
    _legend_below(ax, ncol=3)
    return _svg(fig, "simulation")


def outlook_chart(outlooks: Sequence[Any]) -> str:
    """Observed peaks per week / month and the projection with its band, one panel per outlook that
    projects (the weekly one alone when none does)."""
    import matplotlib.dates as mdates

    outlooks = [o for o in outlooks if len(o.projection)] or list(outlooks[:1])
    plt = _plt()
    fig, axes = plt.subplots(1, len(outlooks), figsize=(12, 3.4), squeeze=False)
    for n, (ax, o) in enumerate(zip(axes[0], outlooks, strict=True), start=1):
        obs = o.observed
        x_obs = pd.DatetimeIndex(obs.index).tz_localize(None)
        ax.plot(x_obs, obs.to_numpy(), marker="o", ms=3, color="#3a4a6b", lw=1, label="observed peak")
        p = o.projection
        if len(p):
            x = pd.DatetimeIndex(p["start"]).tz_localize(None)
            ax.fill_between(x, p["low"], p["high"], color="#7fb3f5", alpha=0.45, label="band")
            ax.plot(x, p["peak"], marker="o", ms=3, ls="--", color="#1f6fd1", label="projected peak")
        top = float(max(obs.max() if len(obs) else 0, p["high"].max() if len(p) else 0, 1))
        ax.set_ylim(0, top * 1.15)
        what = "week starting" if o.period == "week" else "month"
        _label(ax, "outlook", n, what, "peak requests per second")
        ax.set_title(f"{'Weekly' if o.period == 'week' else 'Monthly'} peaks")
        ax.grid(alpha=0.3)
        if o.period == "month":
            ax.xaxis.set_major_locator(mdates.MonthLocator())
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
        else:
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.tick_params(axis="x", labelrotation=30)
        _legend_below(ax, ncol=3, y=-0.42)
    return _svg(fig, "outlook")


def fleet_chart(wide: pd.DataFrame, top: Sequence[str], total: pd.DataFrame, timezone: str) -> str:
    """Replicas planned across the fleet, stacked by service (the ``top`` ones on their own, the rest as
    'others'), and the fleet's need (the sum of the services' needs at the peak upper band)."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(12, 3.8))
    ds = pd.DatetimeIndex(wide.index).tz_convert(timezone)
    layers = [(name, wide[name].to_numpy(dtype=float)) for name in top]
    rest = [c for c in wide.columns if c not in set(top)]
    if rest:
        layers.append((f"others ({len(rest)})", wide[rest].sum(axis=1).to_numpy(dtype=float)))
    base = np.zeros(len(ds))
    cmap = plt.get_cmap("tab20")
    for n, (name, values) in enumerate(layers):
        ax.fill_between(ds, base, base + values, step="post", color=cmap(n % 20), alpha=0.85, lw=0,
                        label=name)
        base = base + values
    need = total["replicas needed"].to_numpy(dtype=float)
    ax.step(ds, need, where="post", color="#222", lw=1, ls="--", label="fleet need (sum)")
    ax.set_ylim(0, float(max(base.max(initial=0), need.max(initial=0), 1)) * 1.1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _label(ax, "fleet", 1, f"time ({timezone})", "replicas")
    ax.set_title("Replicas planned across the fleet")
    _ax_time(ax, timezone)
    _legend_below(ax, ncol=4)
    return _svg(fig, "fleet")
