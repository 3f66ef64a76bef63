"""What a decision is: the :class:`Decision` record, its reason codes and the texts of its steps.

:func:`controller.core.decision.decide` computes a decision; this module holds what it returns and what
operators
read from it (the ``reason`` codes in annotations, Events, metric labels and the plan output, the step
messages, ``explain()``/``to_dict()``/``annotation()``). Keeping the result types apart from the arithmetic
lets consumers such as the loop, the simulator and the reports depend on a small, stable module, and keeps
the decision core readable. Everything here is re-exported by :mod:`controller.core.decision`.

The step messages are built only when read (see :class:`controller.core.steps.Deferred`): ``decide()``
passes ``functools.partial`` objects of the ``*_message`` functions below, so a decision nobody explains
costs no string formatting. Pure: no clock, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from controller.core.state import ControllerState
from controller.core.steps import Step, Text, deferred_fields
from controller.core.warmup import WarmupAction
from forecaster.durations import format_duration

__all__ = [
    "BLIND_HOLD", "FORECAST_EXHAUSTED", "FORECAST_MISSED", "FORECAST_PARTIAL", "FORECAST_PEAK", "HEADROOM",
    "MAX_EXCEEDED", "NO_DATA", "NO_FORECAST", "OBSERVED_FLOOR", "OBSERVED_MISSING", "OBSERVED_STALE",
    "REACTIVE", "RESTART_HOLD", "STALE_FORECAST", "TOO_FEW", "TOO_MANY", "Decision", "Mode",
    "exhausted_message", "partial_message", "peak_message", "stale_forecast_message", "stale_load_message",
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
RESTART_HOLD = "RestartHold"


@deferred_fields("message", "window_end")
@dataclass(frozen=True, init=False)
class Decision:
    """The result of ``decide()``. ``reason``/``message`` belong to the step that set ``replicas``.

    ``message`` and ``window_end`` are built on first read (see :class:`controller.core.steps.Deferred`).
    """

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
    window: str | None = None  # the declared scaling window whose floor (or cap) was in force

    def __init__(
        self,
        at: pd.Timestamp,
        replicas: int,
        current: int | None,
        reason: str,
        message: Text,
        mode: Mode,
        steps: tuple[Step, ...],
        warmups: tuple[WarmupAction, ...],
        state: ControllerState,
        window_end: pd.Timestamp | Callable[[], pd.Timestamp],
        forecast_peak: float | None = None,
        forecast_need: int | None = None,
        observed_rate: float | None = None,
        observed_need: int | None = None,
        window: str | None = None,
    ) -> None:
        # One dict update instead of a frozen dataclass's per-field object.__setattr__ (a decision is made
        # every tick); ``message`` and ``window_end`` may be callables (Deferred fields).
        self.__dict__.update(
            at=at, replicas=replicas, current=current, reason=reason, message=message, mode=mode, steps=steps,
            warmups=warmups, state=state, window_end=window_end, forecast_peak=forecast_peak,
            forecast_need=forecast_need, observed_rate=observed_rate, observed_need=observed_need,
            window=window,
        )

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
            **({"window": self.window} if self.window is not None else {}),
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


# Step messages of decide(), built only when read (see controller.core.steps.Deferred).
def peak_message(peak: float, now: pd.Timestamp, window: pd.Timedelta, need: int, cap: float) -> str:
    span = f"[{_hms(now)}, {_hms(now + window)}]"
    return (
        f"forecast peak upper band {peak:.1f} req/s over {span} needs {need} replicas at {cap:g} req/s each"
    )


def stale_load_message(now: pd.Timestamp, sampled_at: pd.Timestamp, max_age: float) -> str:
    return (
        f"live load sample is {format_duration(now - sampled_at)} old (loadMaxAge {max_age:g}s): "
        "using the forecast only, no scale-down"
    )


def stale_forecast_message(created: pd.Timestamp, now: pd.Timestamp, max_age: float) -> str:
    return (
        f"forecast created {created.isoformat()} is {format_duration(now - created)} old "
        f"(forecastMaxAge {max_age:g}s): scaling reactively, no scale-down"
    )


def exhausted_message(first: pd.Timestamp, last: pd.Timestamp, step: int) -> str:
    return (
        f"forecast covers {first.isoformat()} to {(last + _td(step)).isoformat()},"
        " not now: scaling reactively, no scale-down"
    )


def partial_message(first: pd.Timestamp, last: pd.Timestamp, step: int) -> str:
    return (
        f"forecast covers only {first.isoformat()} to {(last + _td(step)).isoformat()} of the window: "
        "no scale-down"
    )


def _td(ns: int) -> pd.Timedelta:
    return pd.Timedelta(ns, unit="ns")


def _hms(t: pd.Timestamp) -> str:
    """``f"{t:%H:%M:%S}"`` without strftime (it runs on every decision)."""
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
