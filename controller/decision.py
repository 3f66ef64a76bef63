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
   the window's forecast is scaled by their ratio first (bounded; see :mod:`controller.level`).
   ``NoForecast`` / ``StaleForecast`` / ``ForecastExhausted``: no usable forecast, so ``ReactiveScaling`` from
   the observed load, never below the current replicas (blind: the safe direction).
2. ``ObservedLoadFloor`` (``ForecastMissed``): the observed load with headroom needs more than the plan.
3. Stabilisation (``ScaleDownStabilized`` / ``ScaleUpStabilized``), ``WithinTolerance``, then the rate limits
   (``ScaleUpLimit`` / ``ScaleDownLimit``) exactly as HPA ``behavior`` computes them.
4. Limits: ``TooFewReplicas`` (minReplicas), ``TooManyReplicas`` / ``MaxCapacityExceeded`` (maxReplicas, or
   maxReplicas + burstBuffer in ``exceed`` mode; both warn).
5. Safety floors that no rate limit or stabilisation may undercut: the observed need (``ObservedLoadFloor``)
   and, while blind (``ObservedLoadMissing`` / ``ObservedLoadStale`` / ``ForecastPartial`` / no forecast),
   the current replicas (``NoScaleDownWhileBlind``). Floors are capped by the ceiling.

Warm-ups due now (see :mod:`controller.warmup`) are returned with the new :class:`ControllerState`.
Per-artifact work (interval arrays, the ramps of the horizon) is memoised in :mod:`controller.forecastview`,
and times are compared as integer nanoseconds, so a decision costs tens of microseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import pandas as pd

from controller import level
from controller.behavior import (
    DOWN_LIMIT,
    DOWN_STABILIZED,
    RAMP_ANTICIPATION,
    UP_LIMIT,
    UP_STABILIZED,
    WITHIN_TOLERANCE,
    Step,
    Trace,
    anticipate,
    rate_limit,
    replicas_for,
    stabilize,
    tolerance,
)
from controller.config import ControllerConfig
from controller.forecastview import NS, seconds_ns, view
from controller.ports import ObservedLoad
from controller.state import ControllerState
from controller.warmup import WarmupAction, due_now
from forecaster.artifact import ForecastArtifact
from forecaster.durations import format_duration

__all__ = [
    "BLIND_HOLD", "DOWN_LIMIT", "DOWN_STABILIZED", "FORECAST_EXHAUSTED", "FORECAST_MISSED",
    "FORECAST_PARTIAL", "FORECAST_PEAK", "HEADROOM", "MAX_EXCEEDED", "NO_DATA", "NO_FORECAST",
    "OBSERVED_FLOOR", "OBSERVED_MISSING", "OBSERVED_STALE", "RAMP_ANTICIPATION", "REACTIVE",
    "STALE_FORECAST", "TOO_FEW", "TOO_MANY", "UP_LIMIT", "UP_STABILIZED", "WITHIN_TOLERANCE",
    "ControllerState", "Decision", "Mode", "Step", "decide", "replicas_for",
]

Mode = Literal["predictive", "reactive", "hold"]
# Reason codes (stable: they appear in annotations, Events, metrics labels and the plan output).
FORECAST_PEAK = "ForecastPeak"
HEADROOM = "Headroom"
NO_FORECAST = "NoForecast"
STALE_FORECAST = "StaleForecast"
FORECAST_EXHAUSTED = "ForecastExhausted"
FORECAST_PARTIAL = "ForecastPartial"
REACTIVE = "ReactiveScaling"
NO_DATA = "NoData"
OBSERVED_MISSING = "ObservedLoadMissing"
OBSERVED_STALE = "ObservedLoadStale"
OBSERVED_FLOOR = "ObservedLoadFloor"
FORECAST_MISSED = "ForecastMissed"
TOO_FEW = "TooFewReplicas"
TOO_MANY = "TooManyReplicas"
MAX_EXCEEDED = "MaxCapacityExceeded"
BLIND_HOLD = "NoScaleDownWhileBlind"


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`. ``reason``/``message`` belong to the step that set ``replicas``."""

    at: pd.Timestamp
    replicas: int
    current: int | None
    reason: str
    message: str
    mode: Mode
    steps: tuple[Step, ...]
    warmups: tuple[WarmupAction, ...]
    state: ControllerState
    window_end: pd.Timestamp  # end of the span the replicas must cover (now + lead + interval)
    forecast_peak: float | None = None  # max peak_upper over the window (level-corrected), req/s
    forecast_need: int | None = None  # replicas the forecast needs, headroom included
    observed_rate: float | None = None  # req/s, None when missing or stale
    observed_need: int | None = None  # replicas the observed load needs, headroom included

    @property
    def changed(self) -> bool:
        return self.current is not None and self.replicas != self.current

    @property
    def warnings(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.warning)

    def explain(self) -> str:
        """Multi-line explanation, one step per line (CLI, logs)."""
        lines = [f"{self.at.isoformat()}: {self.current} -> {self.replicas} replicas ({self.reason})"]
        lines += [f"  {'!' if s.warning else '-'} {s.reason}: {s.message}" for s in self.steps]
        lines += [f"  * warm-up {w.key} ({w.reason}): {w.message}" for w in self.warmups]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "replicas": self.replicas,
            "current": self.current,
            "reason": self.reason,
            "message": self.message,
            "mode": self.mode,
            "windowEnd": self.window_end.isoformat(),
            "forecastPeak": self.forecast_peak,
            "forecastNeed": self.forecast_need,
            "observedRate": self.observed_rate,
            "observedNeed": self.observed_need,
            "steps": [
                {"reason": s.reason, "message": s.message, "replicas": s.replicas, "warning": s.warning}
                for s in self.steps
            ],
            "warmups": [{"key": w.key, "reason": w.reason, "message": w.message} for w in self.warmups],
        }

    def annotation(self) -> str:
        """Compact JSON for the target's decision annotation (no step list, to stay small)."""
        return json.dumps(
            {
                "at": self.at.isoformat(),
                "replicas": self.replicas,
                "reason": self.reason,
                "message": self.message,
                "mode": self.mode,
            },
            separators=(",", ":"),
        )


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
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise ValueError("decide(): now must be timezone-aware")
    cap, head = config.capacity_per_replica, config.headroom
    current = state.replicas
    now_ns = now.value
    window_end = now + config.window_td
    tr = Trace()

    # 1. Observed load: usable, missing or stale.
    obs_rate: float | None = None
    obs_need: int | None = None
    if observed is None:
        tr.note(OBSERVED_MISSING, "no live load sample: using the forecast only, no scale-down", warning=True)
    elif not math.isfinite(float(observed.rate)):
        tr.note(OBSERVED_MISSING, f"live load sample is {observed.rate!r}, not a rate: using the forecast "
                "only, no scale-down", warning=True)
    elif now_ns - _ns(observed.sampled_at) > config.load_max_age_ns:
        age = now - observed.sampled_at
        tr.note(
            OBSERVED_STALE,
            f"live load sample is {format_duration(age)} old (loadMaxAge {config.load_max_age:g}s): "
            "using the forecast only, no scale-down",
            warning=True,
        )
    else:
        obs_rate = max(0.0, float(observed.rate))
        obs_need = replicas_for(obs_rate, cap, head)

    # 2. Demand from the forecast (level-corrected from the live load), or reactive scaling without one.
    fc = _forecast_demand(forecast, config, now, window_end, tr)
    lv = level.update(state, config.level_correction, obs_rate, fc.now_mean if fc else None, now)
    fc_peak = fc_need = fc_band_need = fc_now_peak = None
    partial = fc is not None and fc.partial
    if fc is not None:
        if lv.message is not None:
            tr.note(level.LEVEL_CORRECTED, lv.message)
        fc_peak, fc_mean, fc_now_peak = fc.peak * lv.factor, fc.mean * lv.factor, fc.now_peak
        fc_band_need = replicas_for(fc_peak, cap)
        fc_need = max(fc_band_need, replicas_for(fc_mean, cap, head))
    blind = obs_rate is None or fc_need is None or partial
    if fc_need is not None and fc_peak is not None and fc_band_need is not None:
        mode: Mode = "predictive"
        span = f"[{_hms(now)}, {_hms(window_end)}]"
        desired = tr.set(
            FORECAST_PEAK,
            f"forecast peak upper band {fc_peak:.1f} req/s over {span} needs {fc_band_need} "
            f"replicas at {cap:g} req/s each",
            fc_band_need,
        )
        if fc_need > fc_band_need:
            desired = tr.set(
                HEADROOM,
                f"forecast mean {fc_mean:.1f} req/s +{head:.0%} headroom needs {fc_need} replicas",
                fc_need,
            )
    elif obs_need is not None:
        mode = "reactive"
        desired = tr.set(
            REACTIVE,
            f"no usable forecast: observed {obs_rate:.1f} req/s +{head:.0%} headroom "
            f"needs {obs_need} replicas",
            obs_need,
            warning=True,
        )
    else:
        mode = "hold"
        fallback = current if current is not None else config.min_replicas
        desired = tr.set(
            NO_DATA,
            f"neither a usable forecast nor a live load sample: keeping {fallback} replicas",
            fallback,
            warning=True,
        )

    # 3. Observed load above the plan: scale up at once (the floor is re-applied after all limits).
    if obs_need is not None and obs_rate is not None and mode == "predictive" and obs_need > desired:
        missed = fc_now_peak is not None and obs_rate > fc_now_peak
        what = (
            f"above the forecast's upper band {fc_now_peak:.1f} req/s (forecast missed)"
            if missed
            else "more than the forecast covers"
        )
        desired = tr.set(
            FORECAST_MISSED if missed else OBSERVED_FLOOR,
            f"observed {obs_rate:.1f} req/s is {what}: {obs_need} replicas now",
            obs_need,
            warning=missed,
        )

    # 3b. A later peak the rate-limited scale-up cannot reach in time from here: start climbing now.
    if mode == "predictive" and forecast is not None and current is not None:
        desired = anticipate(forecast, config, state, now, window_end, desired, tr, lv.factor)

    # 4. Stabilisation, tolerance and rate limits relative to the current replicas.
    recs = _prune(state.recommendations, now_ns, _rec_retention(config))
    value = desired
    if current is not None:
        value = stabilize(value, current, recs, now, config, tr)
        value = tolerance(value, current, config, tr)
        value = rate_limit(value, current, state.scale_events, now, config, tr)

    # 5. Min/max limits.
    ceiling = config.ceiling
    if value < config.min_replicas:
        value = tr.set(TOO_FEW, f"raised to minReplicas {config.min_replicas}", config.min_replicas)
    if value > config.max_replicas:
        value = _cap(value, desired, config, tr)

    # 6. Safety floors no limit may undercut (capped by the ceiling).
    if obs_need is not None and value < min(obs_need, ceiling):
        floor = min(obs_need, ceiling)
        value = tr.set(
            OBSERVED_FLOOR,
            f"observed {obs_rate:.1f} req/s needs {floor} replicas now (not rate-limited)",
            floor,
        )
        if obs_need > ceiling:
            value = tr.set(
                MAX_EXCEEDED,
                f"observed load needs {obs_need} replicas, above the ceiling {ceiling}: capacity falls short",
                ceiling,
                warning=True,
            )
    recommendation = desired
    if blind and current is not None and value < min(current, ceiling):
        why = "the live load is unknown" if obs_rate is None else "the forecast does not cover the window"
        if fc_need is None:
            why = "there is no usable forecast"
        value = tr.set(BLIND_HOLD, f"keeping {min(current, ceiling)} replicas: {why}", min(current, ceiling))
        recommendation = max(desired, value)  # once the data is back, scale down only after stabilisation

    # 7. New state and warm-ups.
    events = state.scale_events
    if current is not None and value != current:
        events = (*events, (now, value - current))
    events = _prune(events, now_ns, _event_retention(config))
    new_state = ControllerState(
        replicas=value,
        recommendations=(*recs, (now, recommendation)),
        scale_events=events,
        issued_warmups=tuple((k, t) for k, t in state.issued_warmups if t.value >= now_ns),
        level=lv.log,
        level_at=lv.at,
        level_since=lv.since,
    )
    warmups: tuple[WarmupAction, ...] = ()
    if config.warmup.enabled:
        warmups = _warmups(forecast if fc_need is not None else None, new_state, config, now, value)
        if warmups:
            keep = _warmup_retention(config)
            new_state = replace(
                new_state,
                issued_warmups=(
                    *new_state.issued_warmups,
                    *((w.key, max(w.until, now) + keep) for w in warmups),
                ),
            )
    setter = tr.setter or Step(NO_DATA, "no step set the replica count", value)
    return Decision(
        at=now,
        replicas=value,
        current=current,
        reason=setter.reason,
        message=setter.message,
        mode=mode,
        steps=tuple(tr.steps),
        warmups=warmups,
        state=new_state,
        window_end=window_end,
        forecast_peak=fc_peak,
        forecast_need=fc_need,
        observed_rate=obs_rate,
        observed_need=obs_need,
    )


@dataclass(frozen=True)
class _Demand:
    peak: float  # max peak_upper over the window, req/s
    mean: float  # max yhat over the window, req/s
    partial: bool  # the forecast covers only part of the window
    now_peak: float | None  # peak_upper of the interval containing now
    now_mean: float | None  # yhat of the interval containing now


def _forecast_demand(
    forecast: ForecastArtifact | None,
    config: ControllerConfig,
    now: pd.Timestamp,
    end: pd.Timestamp,
    tr: Trace,
) -> _Demand | None:
    """What the forecast says about the window, or None (with the reason noted) when it is not usable."""
    if forecast is None:
        tr.note(NO_FORECAST, "no forecast available: scaling reactively, no scale-down", warning=True)
        return None
    if now.value - _ns(forecast.created_at) > config.forecast_max_age_ns:
        age = forecast.age(now)
        tr.note(
            STALE_FORECAST,
            f"forecast created {forecast.created_at.isoformat()} is {format_duration(age)} old "
            f"(forecastMaxAge {config.forecast_max_age:g}s): scaling reactively, no scale-down",
            warning=True,
        )
        return None
    fv = view(forecast)
    step, ivs = fv.step, forecast.intervals
    lo, hi = fv.window(now.value, end.value)  # intervals ending after now and starting before the window end
    if lo >= hi:
        tr.note(
            FORECAST_EXHAUSTED,
            f"forecast covers {ivs[0].ds.isoformat()} to {(ivs[-1].ds + _td(step)).isoformat()},"
            " not now: scaling reactively, no scale-down",
            warning=True,
        )
        return None
    partial = fv.ds[lo] > now.value or fv.ds[hi - 1] + step < end.value
    if partial:
        tr.note(
            FORECAST_PARTIAL,
            f"forecast covers only {ivs[lo].ds.isoformat()} to "
            f"{(ivs[hi - 1].ds + _td(step)).isoformat()} of the window: no scale-down",
            warning=True,
        )
    covers_now = fv.ds[lo] <= now.value
    return _Demand(
        peak=fv.max_peak(lo, hi),
        mean=max(fv.yhat[lo:hi]),
        partial=partial,
        now_peak=fv.peak[lo] if covers_now else None,
        now_mean=fv.yhat[lo] if covers_now else None,
    )


def _cap(value: int, demand: int, config: ControllerConfig, tr: Trace) -> int:
    """Apply maxReplicas (or the burst ceiling); a demand above it is a warning, a leftover surplus is not."""
    mx = config.max_replicas
    if demand <= mx:
        return tr.set(TOO_MANY, f"lowered to maxReplicas {mx}", mx)
    if config.max_capacity == "exceed" and config.burst_buffer > 0:
        allowed = min(value, config.ceiling)
        cut = f"; capped at maxReplicas + burstBuffer = {config.ceiling}" if value > config.ceiling else ""
        return tr.set(
            MAX_EXCEEDED,
            f"demand needs {demand} replicas, above maxReplicas {mx}: using {allowed} (exceed mode{cut})",
            allowed,
            warning=True,
        )
    return tr.set(
        MAX_EXCEEDED,
        f"demand needs {demand} replicas, capped at maxReplicas {mx}: capacity may fall short",
        mx,
        warning=True,
    )


def _warmups(
    forecast: ForecastArtifact | None,
    state: ControllerState,
    config: ControllerConfig,
    now: pd.Timestamp,
    replicas: int,
) -> tuple[WarmupAction, ...]:
    """Ramp and new-replica warm-ups due now and not issued yet (see :func:`controller.warmup.due_now`)."""
    return tuple(
        due_now(
            forecast,
            state.scale_events,
            target=config.target.describe() if config.target is not None else "recharge",
            now=now,
            config=config.warmup,
            startup_ns=seconds_ns(config.startup),
            replicas=replicas,
            grace_ns=2 * config.interval_ns,
            issued=(k for k, _ in state.issued_warmups),
        )
    )


def _prune(
    items: tuple[tuple[pd.Timestamp, int], ...],
    now_ns: int,
    keep_ns: int,
) -> tuple[tuple[pd.Timestamp, int], ...]:
    cut = now_ns - keep_ns
    return tuple((t, n) for t, n in items if t.value > cut)


def _rec_retention(config: ControllerConfig) -> int:
    b = config.behavior
    return max(b.scale_up.stabilization_window_seconds, b.scale_down.stabilization_window_seconds, 1) * NS


def _event_retention(config: ControllerConfig) -> int:
    b = config.behavior
    periods = [p.period_seconds for p in (*b.scale_up.policies, *b.scale_down.policies)] or [0]
    return max(max(periods) * NS, config.lead_ns + 3 * config.interval_ns)


def _ns(t: pd.Timestamp) -> int:
    """Nanoseconds since the epoch of a tz-aware timestamp (a naive one fails as comparing it would)."""
    if t.tzinfo is None:
        raise TypeError(f"cannot compare the naive timestamp {t} with a timezone-aware one")
    return int(t.value)


def _td(ns: int) -> pd.Timedelta:
    return pd.Timedelta(ns, unit="ns")


def _hms(t: pd.Timestamp) -> str:
    """``f"{t:%H:%M:%S}"`` without strftime (it runs on every decision)."""
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def _warmup_retention(config: ControllerConfig) -> pd.Timedelta:
    """How long an issued key is remembered after the warm-up stops being due (covers forecast re-plans)."""
    return pd.Timedelta(seconds=float(config.warmup.lookahead) + float(config.warmup.ramp_window))
