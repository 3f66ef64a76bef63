"""HPA-style behaviour for the decision core: stabilisation, tolerance, rate limits and ramp anticipation.

These are the normalisation steps :func:`controller.core.decision.decide` applies between "what the demand
needs" and "what to request now", each recorded as a named :class:`Step` (``ScaleDownStabilized``,
``WithinTolerance``, ``ScaleUpLimit``, ``ScaleDownLimit``, ``RampAnticipation``). The rate limits follow the
Kubernetes HPA ``behavior`` semantics: a policy allows a change relative to the replicas at the start of
its period, counting the scale events the controller made inside that period. Pure: ``now`` is passed in.

Each step is recorded on a :class:`~controller.core.steps.Trace` (see :mod:`controller.core.steps` for how
messages are built only when read).
"""

from __future__ import annotations

import bisect
import math

import pandas as pd

from controller.config import ControllerConfig, ScalingRules
from controller.core.forecastview import NS, ForecastView, view
from controller.core.state import ControllerState
from controller.core.steps import Trace, text
from forecaster.artifact import ForecastArtifact

_EPS = 1e-9
DOWN_STABILIZED = "ScaleDownStabilized"
UP_STABILIZED = "ScaleUpStabilized"
WITHIN_TOLERANCE = "WithinTolerance"
UP_LIMIT = "ScaleUpLimit"
DOWN_LIMIT = "ScaleDownLimit"
RAMP_ANTICIPATION = "RampAnticipation"
_MAX_TICKS = 240  # how many loop ticks ahead ramp anticipation looks (2 h at the default 30 s interval)


def replicas_for(rate: float, capacity: float, headroom: float = 0.0) -> int:
    """Replicas that serve ``rate`` req/s at ``capacity`` req/s each with ``headroom`` (fraction) to spare."""
    if rate <= 0:
        return 0
    n = math.ceil(rate * (1.0 + headroom) / capacity - _EPS)
    return n if n > 0 else 0


def forecast_need(peak: float, mean: float, capacity: float, headroom: float) -> int:
    """Replicas a forecast needs: its peak upper band, or its mean with headroom, whichever is more.

    The upper band already covers the forecast's uncertainty, so headroom is not stacked on top of it;
    headroom is the margin on the central forecast.
    """
    return max(replicas_for(peak, capacity), replicas_for(mean, capacity, headroom))


def anticipate(
    forecast: ForecastArtifact,
    config: ControllerConfig,
    state: ControllerState,
    now: pd.Timestamp,
    window_end: pd.Timestamp,
    desired: int,
    tr: Trace,
    scale: float = 1.0,
) -> int:
    """Raise ``desired`` when a peak after the window needs more scale-up steps than the ticks left before it.

    The scale-up policies allow only so many replicas per period, so a large ramp takes several loop ticks;
    the replicas asked for at tick i are ready at ``now + i * interval + lead``. If the fastest climb from
    the current count reaches a later peak's need only after its last useful tick, the climb starts now.
    ``scale`` multiplies the forecast peaks (the level correction of :func:`controller.core.decision.decide`).
    """
    fv = view(forecast)
    return anticipate_ns(fv, forecast, config, state, now.value, window_end.value, desired, tr, scale)


def anticipate_ns(
    fv: ForecastView,
    forecast: ForecastArtifact,
    config: ControllerConfig,
    state: ControllerState,
    now_ns: int,
    end_ns: int,
    desired: int,
    tr: Trace,
    scale: float = 1.0,
) -> int:
    """:func:`anticipate` with the artifact's view at hand and times in nanoseconds (the decision's path)."""
    current = state.replicas
    rules = config.behavior.scale_up
    if current is None or rules.select_policy == "Disabled":
        return desired
    tick = config.interval_ns
    ds = fv.ds
    step = fv.step
    lo = bisect.bisect_left(ds, end_ns)
    hi = bisect.bisect_left(ds, end_ns + _MAX_TICKS * tick + step)
    if lo >= hi:
        return desired
    cap, head, ceiling = config.capacity_per_replica, config.headroom, config.ceiling
    peak, mean = fv.range_max(lo, hi)
    target = min(forecast_need(peak * scale, mean * scale, cap, head), ceiling)
    if target <= max(desired, current):
        return desired  # nothing ahead needs more than we already ask for
    # reach[i]: replicas the fastest climb has requested by tick i (ticks every interval from now). A policy
    # whose period is longer than the interval allows nothing on some ticks (its budget is spent until the
    # earlier scale-ups leave the period): such a tick keeps the count and the climb goes on after it.
    reach: list[int] = []
    cur = current
    events = [(t.value, d) for t, d in state.scale_events]
    while cur < target and len(reach) < _MAX_TICKS:
        at_ns = now_ns + len(reach) * tick
        nxt = min(target, _limit_ns(rules, cur, events, at_ns, up=True))
        if nxt <= cur:
            longest = max((p.period_seconds for p in rules.policies), default=0) * NS
            if not any(d > 0 and t > at_ns - longest for t, d in events):
                break  # no scale-up left to leave a period: no later tick can climb either
            reach.append(cur)
            continue
        events.append((at_ns, nxt - cur))
        reach.append(nxt)
        cur = nxt
    if len(reach) <= 1 or reach[-1] <= current:
        return desired  # one step gets there (the normal window is early enough), or none can climb
    hi = bisect.bisect_left(ds, end_ns + len(reach) * tick + step)
    peaks, means, lead = fv.peak, fv.yhat, config.lead_ns
    best, best_at = desired, -1
    for k in range(lo, hi):
        need = min(forecast_need(peaks[k] * scale, means[k] * scale, cap, head), ceiling)
        if need <= max(best, current):
            continue
        last_tick = math.floor((ds[k] - lead - now_ns) / tick)  # the last tick ready in time
        ticks_needed = next((i + 1 for i, r in enumerate(reach) if r >= need), len(reach) + 1)
        if ticks_needed > last_tick:
            best, best_at = need, k
    if best_at < 0:
        return desired
    return tr.set(
        RAMP_ANTICIPATION,
        text(
            "the peak at {:%H:%M} needs {} replicas; the scale-up policies need several steps to get there, "
            "so the climb starts now",
            forecast.intervals[best_at].ds,
            best,
        ),
        best,
    )


def stabilized(
    desired: int, current: int, up_rec: int, down_rec: int, config: ControllerConfig, tr: Trace
) -> int:
    """HPA stabilisation given the lowest recommendation of the scale-up window and the highest of the
    scale-down window (each including ``desired``): never below the scale-down window's highest, never
    above the scale-up window's lowest recommendation."""
    value = max(current, up_rec)
    value = min(value, down_rec)
    if value > desired:
        down_w = config.behavior.scale_down.stabilization_window_seconds
        return tr.set(
            DOWN_STABILIZED,
            text(
                "highest recommendation of the last {}s is {}: not scaling down to {} yet",
                down_w,
                value,
                desired,
            ),
            value,
        )
    if value < desired:
        up_w = config.behavior.scale_up.stabilization_window_seconds
        return tr.set(
            UP_STABILIZED,
            text(
                "lowest recommendation of the last {}s is {}: not scaling up to {} yet", up_w, value, desired
            ),
            value,
        )
    return value


def tolerance(value: int, current: int, config: ControllerConfig, tr: Trace) -> int:
    """Keep the current count when the scale-down is small; scale-ups always go ahead (asymmetric costs)."""
    if value >= current or current <= 0 or current > config.ceiling:
        return value
    if (current - value) / current > config.tolerance:
        return value
    return tr.set(
        WITHIN_TOLERANCE,
        text("{} is within {:.0%} below the current {}: keeping it", value, config.tolerance, current),
        current,
    )


def rate_limit(
    value: int,
    current: int,
    events: tuple[tuple[pd.Timestamp, int], ...],
    now: pd.Timestamp,
    config: ControllerConfig,
    tr: Trace,
) -> int:
    """HPA behavior policies: the change allowed per period, counted from the replicas at period start."""
    if value > current:
        limit = scale_limit(config.behavior.scale_up, current, events, now, up=True)
        if value > limit:
            return tr.set(UP_LIMIT, text("scale-up policy allows {} now (wanted {})", limit, value), limit)
    elif value < current:
        limit = scale_limit(config.behavior.scale_down, current, events, now, up=False)
        if value < limit:
            message = text("scale-down policy allows {} now (wanted {})", limit, value)
            return tr.set(DOWN_LIMIT, message, limit)
    return value


def scale_limit(
    rules: ScalingRules,
    current: int,
    events: tuple[tuple[pd.Timestamp, int], ...],
    now: pd.Timestamp,
    *,
    up: bool,
) -> int:
    """The furthest the policies let the count move from ``current`` now, given the recent scale events."""
    return _limit_ns(rules, current, [(t.value, d) for t, d in events], now.value, up=up)


def _limit_ns(
    rules: ScalingRules, current: int, events: list[tuple[int, int]], now_ns: int, *, up: bool
) -> int:
    if rules.select_policy == "Disabled" or not rules.policies:
        return current
    limits = []
    for p in rules.policies:
        since = now_ns - p.period_seconds * NS
        added = removed = 0
        for t, d in events:
            if t > since:
                if d > 0:
                    added += d
                elif d < 0:
                    removed -= d
        if up:
            start = current - added + removed
            if p.type == "Pods":
                limits.append(start + p.value)
            else:  # a percentage of zero is zero: allow at least one pod so scaling from zero is possible
                limits.append(max(math.ceil(start * (1 + p.value / 100) - _EPS), start + 1))
        else:
            start = current + removed - added
            limits.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100) + _EPS))
    pick = max if (rules.select_policy == "Max") == up else min
    limit = pick(limits)
    return max(limit, current) if up else min(limit, current)
