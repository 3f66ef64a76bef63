"""HPA-style behaviour for the decision core: stabilisation, tolerance, rate limits and ramp anticipation.

These are the normalisation steps :func:`controller.decision.decide` applies between "what the demand
needs" and "what to request now", each recorded as a named :class:`Step` (``ScaleDownStabilized``,
``WithinTolerance``, ``ScaleUpLimit``, ``ScaleDownLimit``, ``RampAnticipation``). The rate limits follow the
Kubernetes HPA ``behavior`` semantics: a policy allows a change relative to the replicas at the start of
its period, counting the scale events the controller made inside that period. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import pandas as pd

from controller.config import ControllerConfig, ScalingRules
from controller.forecastview import NS, view
from controller.state import ControllerState
from forecaster.artifact import ForecastArtifact

_EPS = 1e-9
DOWN_STABILIZED = "ScaleDownStabilized"
UP_STABILIZED = "ScaleUpStabilized"
WITHIN_TOLERANCE = "WithinTolerance"
UP_LIMIT = "ScaleUpLimit"
DOWN_LIMIT = "ScaleDownLimit"
RAMP_ANTICIPATION = "RampAnticipation"
_MAX_TICKS = 240  # how many loop ticks ahead ramp anticipation looks (2 h at the default 30 s interval)


@dataclass(frozen=True)
class Step:
    """One named step of a decision: its reason code, a human message and the replica count after it."""

    reason: str
    message: str
    replicas: int | None = None
    warning: bool = False


class Trace:
    """Collects steps and remembers which step last set the replica count."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.setter: Step | None = None

    def note(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.steps.append(Step(reason, message, None, warning))

    def set(self, reason: str, message: str, replicas: int, *, warning: bool = False) -> int:
        step = Step(reason, message, replicas, warning)
        self.steps.append(step)
        self.setter = step
        return replicas


def replicas_for(rate: float, capacity: float, headroom: float = 0.0) -> int:
    """Replicas that serve ``rate`` req/s at ``capacity`` req/s each with ``headroom`` (fraction) to spare."""
    if rate <= 0:
        return 0
    return max(0, math.ceil(rate * (1.0 + headroom) / capacity - _EPS))


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
    ``scale`` multiplies the forecast peaks (the level correction of :func:`controller.decision.decide`).
    """
    current = state.replicas
    rules = config.behavior.scale_up
    if current is None or rules.select_policy == "Disabled":
        return desired
    ceiling, tick = config.ceiling, config.interval_ns
    cap, head, lead = config.capacity_per_replica, config.headroom, config.lead_ns
    fv = view(forecast)
    step, ds, peaks = fv.step, fv.ds, fv.peak
    now_ns, end_ns = now.value, window_end.value
    lo = bisect.bisect_left(ds, end_ns)
    hi = bisect.bisect_left(ds, end_ns + _MAX_TICKS * tick + step)
    if lo >= hi:
        return desired
    means = fv.yhat
    target = min(forecast_need(max(peaks[lo:hi]) * scale, max(means[lo:hi]) * scale, cap, head), ceiling)
    if target <= max(desired, current):
        return desired  # nothing ahead needs more than we already ask for
    # reach[i]: replicas the fastest climb has requested by tick i (ticks every interval from now).
    reach: list[int] = []
    cur = current
    events = [(t.value, d) for t, d in state.scale_events]
    while cur < target and len(reach) < _MAX_TICKS:
        at_ns = now_ns + len(reach) * tick
        nxt = min(target, _limit_ns(rules, cur, events, at_ns, up=True))
        if nxt <= cur:
            break
        events.append((at_ns, nxt - cur))
        reach.append(nxt)
        cur = nxt
    if len(reach) <= 1:
        return desired  # one step gets there: the normal window is early enough
    hi = bisect.bisect_left(ds, end_ns + len(reach) * tick + step)
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
        f"the peak at {forecast.intervals[best_at].ds:%H:%M} needs {best} replicas; the scale-up policies "
        "need several steps to get there, so the climb starts now",
        best,
    )


def stabilize(
    desired: int,
    current: int,
    recs: tuple[tuple[pd.Timestamp, int], ...],
    now: pd.Timestamp,
    config: ControllerConfig,
    tr: Trace,
) -> int:
    """HPA stabilisation: highest recommendation of the scale-down window, lowest of the scale-up window."""
    up_w = config.behavior.scale_up.stabilization_window_seconds
    down_w = config.behavior.scale_down.stabilization_window_seconds
    up_rec = down_rec = desired
    now_ns = now.value
    up_cut, down_cut = now_ns - up_w * NS, now_ns - down_w * NS
    for t, r in recs:
        t_ns = t.value
        if t_ns > up_cut:
            up_rec = min(up_rec, r)
        if t_ns > down_cut:
            down_rec = max(down_rec, r)
    value = max(current, up_rec)
    value = min(value, down_rec)
    if value > desired:
        return tr.set(
            DOWN_STABILIZED,
            f"highest recommendation of the last {down_w}s is {value}: not scaling down to {desired} yet",
            value,
        )
    if value < desired:
        return tr.set(
            UP_STABILIZED,
            f"lowest recommendation of the last {up_w}s is {value}: not scaling up to {desired} yet",
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
        f"{value} is within {config.tolerance:.0%} below the current {current}: keeping it",
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
            return tr.set(UP_LIMIT, f"scale-up policy allows {limit} now (wanted {value})", limit)
    elif value < current:
        limit = scale_limit(config.behavior.scale_down, current, events, now, up=False)
        if value < limit:
            return tr.set(DOWN_LIMIT, f"scale-down policy allows {limit} now (wanted {value})", limit)
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
        added = sum(d for t, d in events if t > since and d > 0)
        removed = -sum(d for t, d in events if t > since and d < 0)
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
