"""Weekly and monthly peak outlook for the capacity report: how high the peak may go, weeks and months ahead.

A capacity planner books nodes, quotas and budgets weeks or months ahead, beyond the 7-day forecast the
controller runs on. This module answers from the history itself, as far ahead as it supports:

- the peak of every full past week (Monday to Monday, local time) and calendar month, measured on the
  cleaned history (outages excluded, gaps left out; a period counts when 90% of its intervals are there);
- a log-linear trend through those peaks, kept only when the history shows one (slope t-statistic above
  2); otherwise a flat level (their mean in log space);
- projected peaks for the next periods with a prediction band at the report's band level (the ordinary
  least-squares prediction interval, in log space, so it widens with distance and with a short history),
  and the replicas the band implies at the given capacity per replica.

What "as far as the history supports" means: at least :data:`MIN_PERIODS` full periods are needed, and
the outlook looks at most half as many periods ahead as it has seen (capped at 8 weeks / 6 months),
starting with the first period that begins after the history ends. With fewer, the outlook says so
instead of guessing. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

Period = Literal["week", "month"]
MIN_PERIODS = 4
MAX_AHEAD = {"week": 8, "month": 6}
COVERAGE = 0.9  # share of a period's intervals that must be observed for its peak to count
TREND_T = 2.0
COLUMNS = {"week": "week from", "month": "month"}


@dataclass(frozen=True)
class Outlook:
    """Observed peaks per period and the projection (empty with a ``note`` when the history is too short)."""

    period: Period
    observed: pd.Series  # peak rate (req/s) by period start, full periods only
    projection: pd.DataFrame  # start, peak, low, high (req/s)
    table: pd.DataFrame  # the projection as the report shows it (and writes to CSV)
    note: str


def period_peaks(y: pd.Series, period: Period, timezone: str) -> pd.Series:
    """Peak of ``y`` in each full period (local weeks from Monday, or calendar months), by period start."""
    if len(y) < 2:
        return pd.Series(dtype=float)
    idx = pd.DatetimeIndex(y.index)
    step = pd.Timedelta(np.min(np.diff(idx.asi8)), unit="ns")
    local = pd.Series(y.to_numpy(dtype=float), index=idx.tz_convert(timezone))
    naive = local.index.tz_localize(None)
    if period == "week":
        starts = (naive.normalize() - pd.to_timedelta(naive.day_of_week, unit="D"))
        nxt = starts + pd.Timedelta(days=7)
    else:
        starts = naive.to_period("M").to_timestamp()
        nxt = starts + pd.offsets.MonthBegin(1)
    frame = pd.DataFrame({"y": local.to_numpy(), "start": starts, "next": nxt})
    out = {}
    for start, g in frame.groupby("start", sort=True):
        end = g["next"].iloc[0]
        expected = (end - start) / step
        seen = int(np.isfinite(g["y"].to_numpy()).sum())
        if seen >= COVERAGE * expected and np.isfinite(g["y"]).any():
            out[pd.Timestamp(start).tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)] = (
                float(g["y"].max())
            )
    return pd.Series(out, dtype=float)


def t_quantile(p: float, dof: int) -> float:
    """Student-t quantile by the Cornish-Fisher expansion (within about 1% of the exact one for dof >= 2)."""
    z = NormalDist().inv_cdf(p)
    v = float(dof)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def _next_starts(last: pd.Timestamp, end: pd.Timestamp, period: Period, n: int) -> list[pd.Timestamp]:
    """The starts of the ``n`` periods after ``last`` (a period start) that begin at or after ``end``."""
    tz = last.tz
    naive, stop = last.tz_localize(None), end.tz_convert(tz).tz_localize(None)
    stamps: list[pd.Timestamp] = []
    k = 1
    while len(stamps) < n:
        t = naive + (pd.Timedelta(days=7 * k) if period == "week" else pd.offsets.MonthBegin(k))
        if t >= stop:
            stamps.append(pd.Timestamp(t))
        k += 1
    return [t.tz_localize(tz, nonexistent="shift_forward", ambiguous=True) for t in stamps]


def _index_of(starts: pd.DatetimeIndex, first: pd.Timestamp, period: Period) -> np.ndarray:
    """Period number of each start counted from ``first`` (calendar positions, so missing periods count)."""
    a, b = starts.tz_localize(None), first.tz_localize(None)
    if period == "week":
        return np.asarray(np.round((a - b) / pd.Timedelta(days=7)), dtype=float)
    return np.asarray((a.year - b.year) * 12 + (a.month - b.month), dtype=float)


def peak_outlook(
    y: pd.Series,
    period: Period,
    *,
    timezone: str,
    band_level: float = 0.9,
    capacity_per_replica: float,
    min_replicas: int = 0,
) -> Outlook:
    """Observed peaks per ``period`` and their projection as far ahead as the history supports."""
    observed = period_peaks(y, period, timezone)
    observed = observed[observed > 0]
    n = len(observed)
    word = "weeks" if period == "week" else "months"
    empty = pd.DataFrame(columns=["start", "peak", "low", "high"])
    if n < MIN_PERIODS:
        note = (f"needs at least {MIN_PERIODS} full {word} of history to look ahead; this history has {n}")
        table = _table(empty, period, capacity_per_replica, min_replicas)
        return Outlook(period, observed, empty, table, note)
    ahead = min(MAX_AHEAD[period], n // 2)
    x = _index_of(pd.DatetimeIndex(observed.index), observed.index[0], period)
    ly = np.log(observed.to_numpy(dtype=float))
    xbar, sxx = float(x.mean()), float(((x - x.mean()) ** 2).sum())
    slope = float(((x - xbar) * (ly - ly.mean())).sum() / sxx) if sxx > 0 else 0.0
    intercept = float(ly.mean() - slope * xbar)
    resid = ly - (intercept + slope * x)
    s_trend = math.sqrt(float((resid**2).sum()) / (n - 2)) if n > 2 else math.inf
    t_slope = abs(slope) / (s_trend / math.sqrt(sxx)) if s_trend > 0 and sxx > 0 else math.inf
    trend = math.isfinite(t_slope) and t_slope > TREND_T
    idx = pd.DatetimeIndex(y.index)
    end = idx[-1] + pd.Timedelta(np.min(np.diff(idx.asi8)), unit="ns")
    starts = _next_starts(observed.index[-1], end, period, ahead)
    x0 = _index_of(pd.DatetimeIndex(starts), observed.index[0], period)
    q = 0.5 + band_level / 2
    if trend:
        centre = intercept + slope * x0
        spread = t_quantile(q, n - 2) * s_trend * np.sqrt(1 + 1 / n + (x0 - xbar) ** 2 / sxx)
        how = f"trend {math.expm1(slope):+.1%} per {period}"
    else:
        s_flat = float(np.std(ly, ddof=1))
        centre = np.full(len(x0), float(ly.mean()))
        spread = np.full(len(x0), t_quantile(q, n - 1) * s_flat * math.sqrt(1 + 1 / n))
        how = "no clear trend: flat at the mean level"
    proj = pd.DataFrame({
        "start": starts,
        "peak": np.exp(centre),
        "low": np.exp(centre - spread),
        "high": np.exp(centre + spread),
    })
    note = (
        f"from the peaks of {n} full {word} ({observed.index[0]:%Y-%m-%d} to {observed.index[-1]:%Y-%m-%d}); "
        f"{how}; "
        f"{band_level:.0%} band; {ahead} {word} ahead (half the {word} seen, at most {MAX_AHEAD[period]})"
    )
    return Outlook(period, observed, proj, _table(proj, period, capacity_per_replica, min_replicas), note)


def _table(proj: pd.DataFrame, period: Period, capacity: float, min_replicas: int) -> pd.DataFrame:
    """The projection with readable headers, rounded, and the replicas the band implies."""
    def need(rate: float) -> int:
        return max(min_replicas, math.ceil(rate / capacity - 1e-9))

    fmt = "%Y-%m-%d" if period == "week" else "%Y-%m"
    rows = [
        {
            COLUMNS[period]: pd.Timestamp(r.start).strftime(fmt),
            "peak (req/s)": round(float(r.peak), 1),
            "band low (req/s)": round(float(r.low), 1),
            "band high (req/s)": round(float(r.high), 1),
            "replicas at peak": need(float(r.peak)),
            "replicas (band)": f"{need(float(r.low))}-{need(float(r.high))}",
        }
        for r in proj.itertuples(index=False)
    ]
    columns = [COLUMNS[period], "peak (req/s)", "band low (req/s)", "band high (req/s)", "replicas at peak",
               "replicas (band)"]
    return pd.DataFrame(rows, columns=columns)
