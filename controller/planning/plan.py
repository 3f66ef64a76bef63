"""The offline replica and warm-up plan for the next horizon (``recharge-autoscaler plan``).

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
headroom if more; with ``availabilityTarget``, its rate at the target's error quantile), ``requested``
(replicas requested at ``ds``), ``reason`` (code of the decision that readied the row), and
``warmup_at, warmup_key, warmup_reason`` (warm-ups issued within the row, ``;``-separated, empty if none),
then ``window`` (the declared scaling window whose floor or cap set the row's replicas, empty if none).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from controller.config import ControllerConfig
from controller.core.decision import SCHEDULED_CAP, SCHEDULED_FLOOR, Decision, decide
from controller.core.state import ControllerState
from controller.core.target import interval_needs
from controller.ports import ObservedLoad
from forecaster.artifact import ForecastArtifact
from forecaster.configbase import Duration
from forecaster.durations import format_duration
from forecaster.errors import UserError

PLAN_COLUMNS = [
    "ds", "replicas", "yhat", "yhat_lower", "yhat_upper", "peak_upper", "need", "requested", "reason",
    "warmup_at", "warmup_key", "warmup_reason", "window",
]


def tick_for(config: ControllerConfig, resolution: pd.Timedelta) -> pd.Timedelta:
    """The simulated clock's step: the loop interval, shrunk so that it divides the plan's resolution."""
    res_s = int(resolution.total_seconds())
    step = max(1, int(float(config.interval)))
    return pd.Timedelta(seconds=math.gcd(step, res_s) if res_s > 0 else step)


def build_plan(
    forecast: ForecastArtifact,
    config: ControllerConfig,
    *,
    initial_replicas: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, list[Decision]]:
    """Step :func:`decide` through the forecast's horizon; return the plan frame and every decision taken.

    The clock starts ``lead`` (rounded up to the tick) before the first interval, with ``initial_replicas``
    already running and ready (None: whatever the first decision asks for). The load at each tick is the
    forecast ``yhat`` of the interval containing it (the first interval's before the horizon starts).
    ``progress(done, total)`` is called every 1,000 ticks.
    """
    ivs = forecast.intervals
    res = pd.Timedelta(seconds=forecast.interval_seconds)
    tick = tick_for(config, res)
    lead_ticks = math.ceil(config.lead / tick - 1e-9)
    start, end = ivs[0].ds, ivs[-1].ds + res
    t0 = start - lead_ticks * tick
    n_ticks = int((end - t0) / tick)
    horizon = end - min(forecast.created_at, t0)
    cfg = config.evolve(
        forecast_max_age=Duration(max(float(config.forecast_max_age), horizon.total_seconds() + 1)),
    )
    state = ControllerState(replicas=initial_replicas)
    stamps = [i.ds for i in ivs]
    times: list[pd.Timestamp] = []
    requested: list[int] = []
    decisions: list[Decision] = []
    for k in range(n_ticks):
        if progress is not None and k % 1000 == 0:
            progress(k, n_ticks)
        now = t0 + k * tick
        idx = max(0, bisect.bisect_right(stamps, now) - 1)
        d = decide(forecast, ObservedLoad(ivs[idx].yhat, now), state, cfg, now)
        state = d.state
        times.append(now)
        requested.append(d.replicas)
        decisions.append(d)
    first = initial_replicas if initial_replicas is not None else requested[0]
    rows: list[dict[str, Any]] = []
    needs = interval_needs(forecast, config)
    lead = config.lead
    for iv, need in zip(ivs, needs, strict=True):
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
        readied = decisions[max(readying, 0)]
        rows.append({
            "ds": iv.ds,
            "replicas": ready,
            "yhat": iv.yhat,
            "yhat_lower": iv.yhat_lower,
            "yhat_upper": iv.yhat_upper,
            "peak_upper": iv.peak_upper,
            "need": need,
            "requested": requested[at_ds] if at_ds >= 0 else first,
            "reason": readied.reason,
            "warmup_at": ";".join(w_at(decisions, w_lo, hi, w.key) for w in issued),
            "warmup_key": ";".join(w.key for w in issued),
            "warmup_reason": ";".join(w.reason for w in issued),
            "window": _set_by(readied, decisions[at_ds] if at_ds >= 0 else None),
        })
    return pd.DataFrame(rows, columns=PLAN_COLUMNS), decisions


def _set_by(readied: Decision, at_start: Decision | None) -> str:
    """The scaling window that readied the row and still holds it at the row's start (else "")."""
    scheduled = (SCHEDULED_FLOOR, SCHEDULED_CAP)
    if readied.reason in scheduled and at_start is not None and at_start.reason in scheduled:
        return readied.window or ""
    return ""


def w_at(decisions: list[Decision], lo: int, hi: int, key: str) -> str:
    """ISO time at which the warm-up ``key`` was issued (the tick of the decision that returned it)."""
    for d in decisions[lo:hi]:
        if any(w.key == key for w in d.warmups):
            return d.at.isoformat()
    return ""


def forecast_after(
    series: Any,
    horizon: pd.Timedelta,
    *,
    model: str,
    calendar: Any,
    source: str,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, ForecastArtifact]:
    """The forecast right after ``series`` and its artifact, created at the history's end.

    ``plan``, ``whatif`` and ``report`` all plan from this, so the same history gives the same plan in each.
    ``progress`` receives the pipeline's backtest progress (``"3/42 snaive"``).
    """
    from forecaster.pipeline import run_forecast, to_artifact

    if horizon < series.freq:
        raise UserError(
            f"--horizon: {format_duration(horizon)} is shorter than the history's resolution "
            f"({format_duration(series.freq)})"
        )
    result = run_forecast(series, horizon, model=model, calendar=calendar, progress=progress)
    created = pd.Timestamp(series.y.index[-1])
    return result, to_artifact(result, created_at=created, source=source, series=series)
