"""The decision core: turn a forecast, the live load and the controller's memory into a replica count.

One pure function, :func:`decide`, serves the live loop, the simulator and the offline ``plan``: given the
same inputs it returns the same :class:`Decision`, never reads the clock and never mutates its inputs.
Every number it produces comes with a named step (like the HPA's normalisation reasons) so that operators
can see why the controller asked for N replicas:

1. Demand. ``ForecastPeak``: the forecast upper band of the *peak* rate over ``[now, now + lead + interval]``
   (a replica started now is useful only at ``now + lead``, and the controller must not scale down before a
   peak inside the lead), divided by ``capacityPerReplica``; ``Headroom``: the forecast mean plus the
   configured margin, when that needs more (headroom is not stacked on the band, which already covers the
   forecast's uncertainty). ``ForecastLevelCorrected``: after a sustained gap between live load and forecast,
   the window's forecast is scaled by their ratio first (bounded; see :mod:`controller.core.level`).
   ``NoForecast`` / ``StaleForecast`` / ``ForecastExhausted``: no usable forecast, so ``ReactiveScaling`` from
   the observed load, never below the current replicas (blind: the safe direction). With
   ``availabilityTarget``: ``AvailabilityTarget``, the window's rate at the forecast's error quantile that
   meets the target, instead of the band and headroom (see :mod:`controller.core.target`;
   ``NoErrorQuantiles`` when the artifact has no error table: band and headroom then).
2. ``ObservedLoadFloor`` (``ForecastMissed``): the observed load with headroom needs more than the plan.
3. Stabilisation (``ScaleDownStabilized`` / ``ScaleUpStabilized``), ``WithinTolerance``, then the rate limits
   (``ScaleUpLimit`` / ``ScaleDownLimit``) exactly as HPA ``behavior`` computes them.
4. Limits: ``TooFewReplicas`` (minReplicas), the declared scaling windows' ``ScheduledFloor`` and
   ``ScheduledCap`` (see :mod:`controller.core.schedule`), ``TooManyReplicas`` / ``MaxCapacityExceeded``
   (maxReplicas, or maxReplicas + burstBuffer in ``exceed`` mode; both warn).
5. Safety floors that no rate limit or stabilisation may undercut: the observed need (``ObservedLoadFloor``)
   and, while blind (``ObservedLoadMissing`` / ``ObservedLoadStale`` / ``ForecastPartial`` / no forecast),
   the current replicas (``NoScaleDownWhileBlind``). Floors are capped by the ceiling.

Warm-ups due now (see :mod:`controller.core.warmup`) are returned with the new :class:`ControllerState`.
Per-artifact work (interval arrays, range maxima, the ramps of the horizon and when their warm-ups are due) is
memoised in :mod:`controller.core.forecastview`, per-config spans once per config, times are compared as
integer
nanoseconds, and messages (and ``window_end``) are built only when read (see
:class:`controller.core.steps.Deferred`), so a decision costs a few tens of microseconds.

The :class:`Decision` record, its reason codes and its step messages live in :mod:`controller.core.outcome`
and
are re-exported here.
"""

from __future__ import annotations

import bisect
import math
import operator
import weakref
from functools import partial
from typing import Any, NamedTuple

import pandas as pd

from controller.config import ControllerConfig
from controller.core import level
from controller.core.behavior import (
    DOWN_LIMIT,
    DOWN_STABILIZED,
    RAMP_ANTICIPATION,
    UP_LIMIT,
    UP_STABILIZED,
    WITHIN_TOLERANCE,
    anticipate_ns,
    rate_limit,
    replicas_for,
    stabilized,
    tolerance,
)
from controller.core.forecastview import NS, ForecastView, per_object, seconds_ns, view
from controller.core.outcome import (
    BLIND_HOLD,
    FORECAST_EXHAUSTED,
    FORECAST_MISSED,
    FORECAST_PARTIAL,
    FORECAST_PEAK,
    HEADROOM,
    MAX_EXCEEDED,
    NO_DATA,
    NO_FORECAST,
    OBSERVED_FLOOR,
    OBSERVED_MISSING,
    OBSERVED_STALE,
    REACTIVE,
    RESTART_HOLD,
    STALE_FORECAST,
    TOO_FEW,
    TOO_MANY,
    Decision,
    Mode,
    exhausted_message,
    partial_message,
    peak_message,
    stale_forecast_message,
    stale_load_message,
)
from controller.core.schedule import (
    SCHEDULED_CAP,
    SCHEDULED_FLOOR,
    InForce,
    cap_message,
    due_warmups,
    floor_message,
    timetable,
)
from controller.core.state import ControllerState
from controller.core.steps import Step, Trace, raw, text
from controller.core.target import AVAILABILITY_TARGET, NO_ERROR_QUANTILES, sizing_view, target_message
from controller.core.warmup import WarmupAction, due_now
from controller.ports import ObservedLoad
from forecaster.artifact import ForecastArtifact

__all__ = [
    "AVAILABILITY_TARGET", "BLIND_HOLD", "DOWN_LIMIT", "DOWN_STABILIZED", "FORECAST_EXHAUSTED",
    "FORECAST_MISSED", "FORECAST_PARTIAL", "FORECAST_PEAK", "HEADROOM", "MAX_EXCEEDED", "NO_DATA",
    "NO_ERROR_QUANTILES", "NO_FORECAST", "OBSERVED_FLOOR", "OBSERVED_MISSING", "OBSERVED_STALE",
    "RAMP_ANTICIPATION", "REACTIVE", "RESTART_HOLD", "SCHEDULED_CAP", "SCHEDULED_FLOOR", "STALE_FORECAST",
    "TOO_FEW", "TOO_MANY", "UP_LIMIT", "UP_STABILIZED", "WITHIN_TOLERANCE", "ControllerState", "Decision",
    "Mode", "Step", "decide", "replicas_for",
]


def decide(
    forecast: ForecastArtifact | None,
    observed: ObservedLoad | None,
    state: ControllerState,
    config: ControllerConfig,
    now: pd.Timestamp,
) -> Decision:
    """Decide the replica count to request now and the warm-ups to issue now. Pure.

    ``state.replicas`` must be the replicas currently requested on the target (the loop refreshes it from
    the cluster); when None, rate limits, tolerance and the blind hold do not apply (first decision).
    """
    if type(now) is not pd.Timestamp:
        now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise ValueError("decide(): now must be timezone-aware")
    k = per_object(_SPANS, config, _Spans)
    # Memory dated after now (the wall clock stepped back) counts as made now: see ControllerState.not_after.
    state = state.not_after(now, hold_seconds=config.behavior.scale_down.stabilization_window_seconds)
    cap, head = config.capacity_per_replica, config.headroom
    current = state.replicas
    now_ns = now.value
    end_ns = now_ns + k.window_ns  # the window's end, (now + window_td).value
    tr = Trace()

    # 1. Observed load: usable, missing or stale.
    obs_rate: float | None = None
    obs_need: int | None = None
    if observed is None:
        tr.note(OBSERVED_MISSING, "no live load sample: using the forecast only, no scale-down", warning=True)
    elif not math.isfinite(float(observed.rate)) or observed.rate < 0:
        tr.note(OBSERVED_MISSING, text("live load sample is {!r}, not a rate: using the forecast only, no "
                                       "scale-down", observed.rate), warning=True)
    elif now_ns - _ns(observed.sampled_at) > config.load_max_age_ns:
        tr.note(
            OBSERVED_STALE,
            partial(stale_load_message, now, observed.sampled_at, config.load_max_age),
            warning=True,
        )
    else:
        obs_rate = float(observed.rate)
        obs_need = replicas_for(obs_rate, cap, head)

    # 2. Demand from the forecast (level-corrected from the live load), or reactive scaling without one.
    fc = _forecast_demand(forecast, config, now, end_ns, tr)
    lv = level.update(state, config.level_correction, obs_rate, fc.now_mean if fc else None, now)
    fc_peak = fc_need = fc_band_need = fc_now_peak = target = None
    partial_cover = fc is not None and fc.partial
    if fc is not None:
        note = raw(lv, "message")
        if note is not None:
            tr.note(level.LEVEL_CORRECTED, note)
        fc_peak, fc_mean, fc_now_peak = fc.peak * lv.factor, fc.mean * lv.factor, fc.now_peak
        target = fc.target
        fc_band_need = replicas_for(fc_peak, cap)
        fc_need = fc_band_need if target is not None else max(fc_band_need, replicas_for(fc_mean, cap, head))
    blind = obs_rate is None or fc_need is None or partial_cover
    if fc_need is not None and fc_peak is not None and fc_band_need is not None:
        mode: Mode = "predictive"
        desired = tr.set(
            FORECAST_PEAK if target is None else AVAILABILITY_TARGET,
            partial(peak_message, fc_peak, now, k.window_td, fc_band_need, cap) if target is None else
            partial(target_message, target, fc_peak, now, k.window_td, fc_band_need, cap),
            fc_band_need,
        )
        if fc_need > fc_band_need:
            desired = tr.set(
                HEADROOM,
                text("forecast mean {:.1f} req/s +{:.0%} headroom needs {} replicas", fc_mean, head, fc_need),
                fc_need,
            )
    elif obs_need is not None:
        mode = "reactive"
        desired = tr.set(
            REACTIVE,
            text(
                "no usable forecast: observed {:.1f} req/s +{:.0%} headroom needs {} replicas",
                obs_rate,
                head,
                obs_need,
            ),
            obs_need,
            warning=True,
        )
    else:
        mode = "hold"
        fallback = current if current is not None else config.min_replicas
        desired = tr.set(
            NO_DATA,
            text("neither a usable forecast nor a live load sample: keeping {} replicas", fallback),
            fallback,
            warning=True,
        )

    # 3. Observed load above the plan: scale up at once (the floor is re-applied after all limits).
    if obs_need is not None and obs_rate is not None and mode == "predictive" and obs_need > desired:
        if fc_now_peak is not None and obs_rate > fc_now_peak:
            desired = tr.set(FORECAST_MISSED, text(
                "observed {:.1f} req/s is above the forecast's upper band {:.1f} req/s (forecast missed): "
                "{} replicas now", obs_rate, fc_now_peak, obs_need), obs_need, warning=True)
        else:
            desired = tr.set(OBSERVED_FLOOR, text(
                "observed {:.1f} req/s is more than the forecast covers: {} replicas now", obs_rate, obs_need
            ), obs_need)

    # 3b. A later peak the rate-limited scale-up cannot reach in time from here: start climbing now.
    if mode == "predictive" and fc is not None and forecast is not None and current is not None:
        desired = anticipate_ns(fc.sizing, forecast, config, state, now_ns, end_ns, desired, tr, lv.factor)

    # 4. Stabilisation, tolerance and rate limits relative to the current replicas. One pass keeps the
    # recommendations of the retention and finds the extremes of both windows (as HPA stabilisation does).
    old_recs = state.recommendations
    keep_cut, up_cut, down_cut = now_ns - k.rec_keep_ns, now_ns - k.up_window_ns, now_ns - k.down_window_ns
    kept: list[tuple[pd.Timestamp, int]] = []
    up_rec = down_rec = desired
    for e in old_recs:
        t_ns = e[0].value
        if t_ns > keep_cut:
            kept.append(e)
            r = e[1]
            if t_ns > up_cut and r < up_rec:
                up_rec = r
            if t_ns > down_cut and r > down_rec:
                down_rec = r
    recs = old_recs if len(kept) == len(old_recs) else tuple(kept)
    # After a restart the replicas seen then count as recommended for a whole scale-down window (the loop
    # sets the hold; see ControllerState.held_after_restart). Scale-down only: the scale-up window ignores it.
    restart = state.restart_hold
    if restart is not None:
        if now_ns >= restart[0].value:
            restart = None
        elif restart[1] > down_rec:
            down_rec = restart[1]
            if current is not None and desired < current:
                tr.note(RESTART_HOLD, text(
                    "restarted or regained leadership: {} replicas count as recommended until {:%H:%M:%S}",
                    restart[1], restart[0]))
    value = desired
    if current is not None:
        value = stabilized(value, current, up_rec, down_rec, config, tr)
        value = tolerance(value, current, config, tr)
        value = rate_limit(value, current, state.scale_events, now, config, tr)

    # 5. Min/max limits.
    ceiling = config.ceiling
    if value < config.min_replicas:
        value = tr.set(TOO_FEW, text("raised to minReplicas {}", config.min_replicas), config.min_replicas)
    win = k.windows.at(now_ns) if k.windows is not None else None
    window = None
    if win is not None:
        value, window = _scheduled(value, win, config, tr)
    if value > config.max_replicas:
        value = _cap(value, desired, config, tr)

    # 6. Safety floors no limit may undercut (capped by the ceiling).
    if obs_need is not None and value < min(obs_need, ceiling):
        floor = min(obs_need, ceiling)
        value = tr.set(
            OBSERVED_FLOOR,
            text("observed {:.1f} req/s needs {} replicas now (not rate-limited)", obs_rate, floor),
            floor,
        )
        if obs_need > ceiling:
            value = tr.set(
                MAX_EXCEEDED,
                text("observed load needs {} replicas, above the ceiling {}: capacity falls short", obs_need,
                     ceiling),
                ceiling,
                warning=True,
            )
    recommendation = desired
    if blind and current is not None and value < min(current, ceiling):
        why = "the live load is unknown" if obs_rate is None else "the forecast does not cover the window"
        if fc_need is None:
            why = "there is no usable forecast"
        hold = min(current, ceiling)
        value = tr.set(BLIND_HOLD, text("keeping {} replicas: {}", hold, why), hold)
        recommendation = max(desired, value)  # once the data is back, scale down only after stabilisation

    # 7. New state and warm-ups (unchanged tuples are handed over as they are: they are immutable).
    events = state.scale_events
    if current is not None and value != current:
        events = (*events, (now, value - current))
    events = _prune(events, now_ns, k.event_keep_ns)
    issued = state.issued_warmups
    if issued:
        kept = [e for e in issued if e[1].value >= now_ns]
        if len(kept) != len(issued):
            issued = tuple(kept)
    warmups: tuple[WarmupAction, ...] = ()
    if config.warmup.enabled:
        warmups = tuple(
            due_now(
                forecast if fc_need is not None else None,
                events,
                target=k.target,
                now=now,
                config=config.warmup,
                startup_ns=k.startup_ns,
                replicas=value,
                grace_ns=k.grace_ns,
                issued=(key for key, _ in issued),
            )
        )
        if k.windows is not None:
            warmups += tuple(due_warmups(k.windows, now=now, target=k.target, replicas=value,
                                         issued=(key for key, _ in issued)))
        if warmups:
            issued = (*issued, *((w.key, max(w.until, now) + k.warmup_keep) for w in warmups))
    new_state = ControllerState(
        replicas=value,
        recommendations=(*recs, (now, recommendation)),
        scale_events=events,
        issued_warmups=issued,
        level=lv.log,
        level_at=lv.at,
        level_since=lv.since,
        restart_hold=restart,
    )
    setter = tr.setter
    return Decision(
        at=now,
        replicas=value,
        current=current,
        reason=setter.reason if setter is not None else NO_DATA,
        message=raw(setter, "message") if setter is not None else "no step set the replica count",
        mode=mode,
        steps=tuple(tr.steps),
        warmups=warmups,
        state=new_state,
        window_end=partial(operator.add, now, k.window_td),
        forecast_peak=fc_peak,
        forecast_need=fc_need,
        observed_rate=obs_rate,
        observed_need=obs_need,
        window=window,
    )


def _scheduled(value: int, win: InForce, config: ControllerConfig, tr: Trace) -> tuple[int, str]:
    """The declared windows' floor, then their cap (never below the floor), as limits after the rate limits;
    with the name of the window that set the count (else of the one whose floor or cap is in force)."""
    by = win.floor_by if win.floor_by >= 0 else win.cap_by
    if win.floor > value and win.floor_by >= 0:
        w = config.scaling_windows[win.floor_by]
        message = partial(floor_message, w, win.floor, win.start_ns, win.end_ns)
        value = tr.set(SCHEDULED_FLOOR, message, win.floor)
    if win.cap is not None and value > win.cap:
        by = win.cap_by
        value = tr.set(SCHEDULED_CAP, partial(cap_message, config.scaling_windows[by], win.cap), win.cap)
    return value, config.scaling_windows[by].name


class _Spans:
    """What :func:`decide` derives from a config, once per config object (see ``per_object``)."""

    __slots__ = ("down_window_ns", "event_keep_ns", "grace_ns", "rec_keep_ns", "startup_ns", "target",
                 "up_window_ns", "warmup_keep", "window_ns", "window_td", "windows")

    def __init__(self, config: ControllerConfig) -> None:
        b, w = config.behavior, config.warmup
        self.window_td = config.window_td
        self.window_ns = int(config.window_td.value)
        self.up_window_ns = b.scale_up.stabilization_window_seconds * NS
        self.down_window_ns = b.scale_down.stabilization_window_seconds * NS
        # Recommendations are kept for the longer stabilisation window, scale events for the longest policy
        # period (and a few ticks past the lead, for the new-replica warm-ups).
        self.rec_keep_ns = max(self.up_window_ns, self.down_window_ns, NS)
        periods = [p.period_seconds for p in (*b.scale_up.policies, *b.scale_down.policies)] or [0]
        self.event_keep_ns = max(max(periods) * NS, config.lead_ns + 3 * config.interval_ns)
        # An issued warm-up key is remembered this long after it stops being due (covers forecast re-plans).
        self.warmup_keep = pd.Timedelta(seconds=float(w.lookahead) + float(w.ramp_window))
        self.startup_ns = seconds_ns(config.startup)
        self.grace_ns = 2 * config.interval_ns
        self.target = config.target.describe() if config.target is not None else "recharge"
        self.windows = timetable(config)


_SPANS: dict[int, tuple[weakref.ref[Any], _Spans]] = {}


class _Demand(NamedTuple):
    view: ForecastView
    sizing: ForecastView  # what the need is read from: the view itself, or the availability target's
    target: float | None  # the availability target the peak is sized at (None: band and headroom)
    peak: float  # max peak_upper (or target rate) over the window, req/s
    mean: float  # max yhat over the window, req/s
    partial: bool  # the forecast covers only part of the window
    now_peak: float | None  # peak_upper of the interval containing now
    now_mean: float | None  # yhat of the interval containing now


def _forecast_demand(
    forecast: ForecastArtifact | None,
    config: ControllerConfig,
    now: pd.Timestamp,
    end_ns: int,
    tr: Trace,
) -> _Demand | None:
    """What the forecast says about the window, or None (with the reason noted) when it is not usable."""
    if forecast is None:
        tr.note(NO_FORECAST, "no forecast available: scaling reactively, no scale-down", warning=True)
        return None
    now_ns = now.value
    if now_ns - _ns(forecast.created_at) > config.forecast_max_age_ns:
        tr.note(
            STALE_FORECAST,
            partial(stale_forecast_message, forecast.created_at, now, config.forecast_max_age),
            warning=True,
        )
        return None
    fv = view(forecast)
    step, ivs, ds = fv.step, forecast.intervals, fv.ds
    # The intervals ending after now and starting before the window end (ForecastView.window, inlined).
    lo, hi = bisect.bisect_right(ds, now_ns - step), bisect.bisect_left(ds, end_ns)
    if lo >= hi:
        tr.note(FORECAST_EXHAUSTED, partial(exhausted_message, ivs[0].ds, ivs[-1].ds, step), warning=True)
        return None
    partial_cover = ds[lo] > now_ns or ds[hi - 1] + step < end_ns
    if partial_cover:
        tr.note(FORECAST_PARTIAL, partial(partial_message, ivs[lo].ds, ivs[hi - 1].ds, step), warning=True)
    covers_now = ds[lo] <= now_ns
    sv, target = fv, config.availability_target
    if target is not None:
        sv = sizing_view(forecast, fv, target) or fv
        if sv is fv:
            target = None
            tr.note(NO_ERROR_QUANTILES, "the forecast carries no backtest error table: sized on the band and "
                                        "headroom instead of the availability target", warning=True)
    return _Demand(
        fv,
        sv,
        target,
        max(sv.peak[lo:hi]),
        max(fv.yhat[lo:hi]),
        partial_cover,
        sv.peak[lo] if covers_now else None,
        fv.yhat[lo] if covers_now else None,
    )


def _cap(value: int, demand: int, config: ControllerConfig, tr: Trace) -> int:
    """Apply maxReplicas (or the burst ceiling); a demand above it is a warning, a leftover surplus is not."""
    mx = config.max_replicas
    if demand <= mx:
        return tr.set(TOO_MANY, text("lowered to maxReplicas {}", mx), mx)
    if config.max_capacity == "exceed" and config.burst_buffer > 0:
        allowed = min(value, config.ceiling)
        cut = f"; capped at maxReplicas + burstBuffer = {config.ceiling}" if value > config.ceiling else ""
        return tr.set(
            MAX_EXCEEDED,
            text("demand needs {} replicas, above maxReplicas {}: using {} (exceed mode{})",
                 demand, mx, allowed, cut),
            allowed,
            warning=True,
        )
    return tr.set(
        MAX_EXCEEDED,
        text("demand needs {} replicas, capped at maxReplicas {}: capacity may fall short", demand, mx),
        mx,
        warning=True,
    )


def _prune(
    items: tuple[tuple[pd.Timestamp, int], ...],
    now_ns: int,
    keep_ns: int,
) -> tuple[tuple[pd.Timestamp, int], ...]:
    """The entries newer than ``keep_ns`` before now (the same tuple when all are)."""
    cut = now_ns - keep_ns
    kept = [e for e in items if e[0].value > cut]
    return items if len(kept) == len(items) else tuple(kept)


def _ns(t: pd.Timestamp) -> int:
    """Nanoseconds since the epoch of a tz-aware timestamp (a naive one fails as comparing it would)."""
    if t.tzinfo is None:
        raise TypeError(f"cannot compare the naive timestamp {t} with a timezone-aware one")
    return int(t.value)
