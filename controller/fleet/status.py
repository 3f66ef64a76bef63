"""What a scaler's ``status`` says after a tick: conditions, replicas, the last decision, the forecast.

Pure: from the tick's outcome, the forecast and the previous status to the new status. A condition keeps
its ``lastTransitionTime`` while its status is unchanged, and the last decision's time moves only when the
decision changes, so a steady scaler produces the same status tick after tick and the reconciler writes
nothing (API calls follow what changes, not the size of the fleet).

Conditions, as ``kubectl get psc`` and alerting read them:

- ``Ready``: the scaler is reconciled. False with ``InvalidSpec``, ``TargetNotFound``, ``Forbidden`` (an
  RBAC gap; the message names the verb) or ``TickFailed``.
- ``ForecastFresh``: a forecast younger than ``forecastMaxAge`` is in use. False with ``NoForecast`` or
  ``StaleForecast`` (the controller then scales reactively and never down).
- ``Scaling``: decisions are applied; the reason is the decision's code (``ForecastPeak`` ...). False with
  ``Paused``, ``DryRun`` or ``ForecastOnly``.
- ``Degraded``: a dependency failed but the scaler still acts safely: ``MetricsUnavailable``,
  ``StoreUnreadable``, ``StateUnavailable``, ``WarmupFailed``.
"""

from __future__ import annotations

import bisect
from typing import Any

import pandas as pd

from controller.core.forecastview import view
from forecaster.artifact import ForecastArtifact

_FAULT_REASONS = {
    "metrics": "MetricsUnavailable", "store": "StoreUnreadable", "state": "StateUnavailable",
    "warmup": "WarmupFailed",
}
_FAIL_REASONS = {"not_found": "TargetNotFound", "forbidden": "Forbidden"}
MESSAGE_LIMIT = 512


def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _cond(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason,
            "message": message[:MESSAGE_LIMIT]}


def _fault_kind(fault: str) -> str:
    return fault.split(":", 1)[0].strip()


def next_peak(forecast: ForecastArtifact, now: pd.Timestamp) -> tuple[pd.Timestamp, float] | None:
    """The highest ``peak_upper`` from the interval containing ``now`` to the end of the horizon (the
    earliest of equal peaks).

    Every scaler's status asks this on every tick, so it reads the decision core's memoised view of the
    artifact and a suffix arg-max built once per artifact: a bisect per call instead of a pass over the
    intervals (at 288 intervals that pass was most of a 1,000-scaler round's CPU).
    """
    v = view(forecast)
    lo = bisect.bisect_right(v.ds, pd.Timestamp(now).value - v.step)  # first interval ending after now
    if lo >= len(v.ds):
        return None
    best = v.derived.get(_SUFFIX_ARGMAX)
    if best is None:
        best = v.derived[_SUFFIX_ARGMAX] = _suffix_argmax(v.peak)
    i = best[lo]
    return forecast.intervals[i].ds, float(v.peak[i])


_SUFFIX_ARGMAX = "fleet.status.suffix_argmax"


def _suffix_argmax(values: list[float]) -> list[int]:
    """``out[i]``: the index of the first maximum of ``values[i:]``."""
    out = [0] * len(values)
    best = len(values) - 1
    for i in range(len(values) - 1, -1, -1):
        if values[i] >= values[best]:
            best = i
        out[i] = best
    return out


def forecast_status(forecast: ForecastArtifact | None, now: pd.Timestamp) -> dict[str, Any]:
    if forecast is None:
        return {}
    out: dict[str, Any] = {"model": forecast.model, "createdAt": _iso(forecast.created_at)}
    if forecast.backtest and forecast.backtest.get("wape") is not None:
        out["backtestWape"] = round(float(forecast.backtest["wape"]), 4)
    peak = next_peak(forecast, now)
    if peak is not None:
        when, rate = peak
        out["nextPeakTime"], out["nextPeakRate"] = _iso(when), round(rate, 1)
        out["nextPeak"] = f"{pd.Timestamp(when).tz_convert('UTC').strftime('%m-%d %H:%MZ')} {rate:,.0f}/s"
    return out


def build_status(
    *,
    generation: int,
    now: pd.Timestamp,
    mode: str,
    paused: bool,
    spec_error: str | None = None,
    outcome: str | None = None,
    faults: tuple[str, ...] = (),
    decision: Any = None,
    current: int | None = None,
    forecast: ForecastArtifact | None = None,
    forecast_max_age: float | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The scaler's new ``status`` (see the module docstring for the conditions)."""
    prev = previous or {}
    conditions: list[dict[str, Any]] = []
    if spec_error is not None:
        conditions.append(_cond("Ready", False, "InvalidSpec", spec_error))
    elif outcome == "failed":
        kinds = [_fault_kind(f) for f in faults]
        reason = next((_FAIL_REASONS[k] for k in kinds if k in _FAIL_REASONS), "TickFailed")
        conditions.append(_cond("Ready", False, reason, "; ".join(faults) or "the tick failed"))
    else:
        conditions.append(_cond("Ready", True, "Reconciled", "the scaler is reconciled"))
    if spec_error is None:
        if forecast is None:
            conditions.append(_cond("ForecastFresh", False, "NoForecast",
                                    "no forecast yet: scaling reactively, never down"))
        else:
            age = forecast.age(now).total_seconds()
            fresh = forecast_max_age is None or age <= forecast_max_age
            made = f"forecast made at {_iso(forecast.created_at)}"
            conditions.append(_cond("ForecastFresh", fresh, "Fresh" if fresh else "StaleForecast",
                                    made if fresh else made + ": too old, scaling reactively, never down"))
        if mode == "forecastOnly":
            conditions.append(_cond("Scaling", False, "ForecastOnly", "mode forecastOnly: no decisions"))
        elif paused:
            conditions.append(_cond("Scaling", False, "Paused", "spec.paused: the target is left alone"))
        elif decision is not None:
            ok = mode != "dryRun"
            what = f"{decision.replicas} replicas ({decision.reason})"
            conditions.append(_cond("Scaling", ok, decision.reason if ok else "DryRun",
                                    f"decided {what}" if ok else f"would set {what}; changes nothing"))
        degraded = [f for f in faults if _fault_kind(f) in _FAULT_REASONS] if outcome != "failed" else []
        if degraded:
            conditions.append(_cond("Degraded", True, _FAULT_REASONS[_fault_kind(degraded[0])],
                                    "; ".join(degraded)))
        else:
            conditions.append(_cond("Degraded", False, "AsExpected", "every dependency answered"))
    old = {c.get("type"): c for c in prev.get("conditions") or []}
    for c in conditions:
        before = old.get(c["type"])
        same = before is not None and before.get("status") == c["status"]
        c["lastTransitionTime"] = before.get("lastTransitionTime") if same and before else _iso(now)
        c["observedGeneration"] = generation
    status: dict[str, Any] = {"observedGeneration": generation, "conditions": conditions}
    if current is not None:
        status["currentReplicas"] = int(current)
    last = dict(prev.get("lastDecision") or {})
    if decision is not None and mode not in ("forecastOnly",) and not paused:
        status["desiredReplicas"] = int(decision.replicas)
        changed = last.get("reason") != decision.reason or prev.get("desiredReplicas") != decision.replicas
        if changed or "time" not in last:  # the message's numbers move every tick: keep it until it changes
            last = {"reason": decision.reason, "message": str(decision.message)[:MESSAGE_LIMIT],
                    "time": _iso(decision.at)}
    elif "desiredReplicas" in prev:
        status["desiredReplicas"] = prev["desiredReplicas"]
    if last:
        status["lastDecision"] = last
    fc = forecast_status(forecast, now)
    if fc:
        status["forecast"] = fc
    return status
