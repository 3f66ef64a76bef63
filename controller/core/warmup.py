"""Cache warm-up planning: find the forecast's ramps and decide when to warm the recharge service's caches.

A cold cache turns a traffic ramp into a latency spike even when there are enough replicas. This module
finds ramps in a forecast (a rise above ``rampThreshold`` within ``rampWindow``) and in its declared events
(promotions, month start, paydays with a known uplift), and plans one warm-up call ``warmup.lead`` before
each. Replicas added by a scale-up are warmed once they are ready. Every warm-up carries a deterministic
idempotency key, so a controller restart (which rebuilds the plan from the same forecast) does not repeat
calls whose keys are in the persisted state.

Pure: no clock, no I/O. :func:`controller.core.decision.decide` calls :func:`due_now` on every decision.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from controller.config import WarmupConfig
from controller.core.forecastview import NS, ForecastView, per_object, seconds_ns, view
from forecaster.artifact import Event, ForecastArtifact, Interval
from forecaster.durations import format_duration

RAMP = "RampAhead"
EVENT = "EventAhead"
NEW_REPLICAS = "NewReplicas"


@dataclass(frozen=True)
class Ramp:
    """A forecast rise: traffic starts climbing at ``start`` and exceeds the threshold at ``crossing``."""

    start: pd.Timestamp
    crossing: pd.Timestamp
    base_rate: float  # req/s before the rise
    peak_rate: float  # req/s at the crossing (forecast) or base * uplift (event)
    source: str  # "forecast" or "event:<name>"

    @property
    def rise(self) -> float:
        """Relative rise, e.g. 0.45 for +45% (inf when rising from zero)."""
        return float("inf") if self.base_rate <= 0 else self.peak_rate / self.base_rate - 1.0


@dataclass(frozen=True)
class WarmupAction:
    """One warm-up call: issue at ``at`` with idempotency ``key``; ``replicas`` is the count to warm."""

    key: str
    at: pd.Timestamp
    until: pd.Timestamp  # the call is pointless after this (the ramp is over / replicas are old)
    replicas: int
    reason: str  # RampAhead | EventAhead | NewReplicas
    message: str


@functools.lru_cache(maxsize=4096)
def warmup_key(target: str, kind: str, when: pd.Timestamp) -> str:
    """Deterministic idempotency key of a warm-up: same target, kind and instant give the same key.

    Memoised: a due warm-up is looked up on every tick until it is issued or over."""
    stamp = pd.Timestamp(when).tz_convert("UTC").isoformat() if pd.Timestamp(when).tzinfo else str(when)
    digest = hashlib.sha256(f"{target}|{kind}|{stamp}".encode()).hexdigest()[:16]
    return f"warmup-{digest}"


def detect_ramps(
    intervals: Sequence[Interval],
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    threshold: float,
    window: pd.Timedelta,
) -> list[Ramp]:
    """Ramps whose crossing lies in [start, end].

    A crossing is an interval whose ``yhat`` exceeds ``(1 + threshold)`` times the lowest ``yhat`` of the
    preceding ``window`` while the interval before it did not. The ramp starts right after that lowest
    interval. Intervals must be ascending (the artifact guarantees it).
    """
    ramps: list[Ramp] = []
    prev_flag = False
    # Only intervals from two windows before `start` can matter (one for the look-back, one for the onset).
    first = bisect.bisect_left(intervals, start - 2 * window, key=lambda iv: iv.ds)
    last = bisect.bisect_right(intervals, end, key=lambda iv: iv.ds)
    lo = first  # first index inside the look-back window of i
    values = [iv.yhat for iv in intervals[first:last]]
    stamps = [iv.ds.value for iv in intervals[first:last]]  # ns: plain ints keep this loop fast
    win, lo_ns, hi_ns = window.value, start.value, end.value
    for i in range(first, last):
        cur = intervals[i]
        cur_ns = stamps[i - first]
        while lo < i and stamps[lo - first] < cur_ns - win:
            lo += 1
        flag = False
        base_idx = -1
        if lo < i:
            back = values[lo - first : i - first]
            base = min(back)
            base_idx = i - 1 - back[::-1].index(base)  # the latest lowest interval
            flag = cur.yhat > base * (1.0 + threshold) if base > 0 else cur.yhat > 0
        if flag and not prev_flag and lo_ns <= cur_ns <= hi_ns:
            ramps.append(
                Ramp(
                    start=intervals[base_idx + 1].ds,
                    crossing=cur.ds,
                    base_rate=intervals[base_idx].yhat,
                    peak_rate=cur.yhat,
                    source="forecast",
                )
            )
        prev_flag = flag
    return ramps


def event_ramps(
    events: Iterable[Event], intervals: Sequence[Interval], *, start: pd.Timestamp, end: pd.Timestamp,
    threshold: float,
) -> list[Ramp]:
    """Declared events starting in [start, end] that raise traffic by more than ``threshold`` (known uplift),
    and promotions without a stated uplift (assumed to matter)."""
    out: list[Ramp] = []
    for e in events:
        if not start <= e.start <= end:
            continue
        if e.uplift is None:
            if e.kind != "promotion":
                continue
            uplift = 1.0 + threshold
        elif e.uplift - 1.0 < threshold:
            continue
        else:
            uplift = e.uplift
        k = bisect.bisect_left(intervals, e.start, key=lambda iv: iv.ds)  # intervals are ascending
        base = intervals[k - 1].yhat if k else 0.0
        out.append(Ramp(e.start, e.start, base, base * uplift, f"event:{e.name}"))
    return out


def planned_ramps(forecast: ForecastArtifact, *, now: pd.Timestamp, config: WarmupConfig) -> list[Ramp]:
    """The ramps warmed for: crossing in [now - one interval, now + lookahead], forecast
    ramps and the event ramps not merged into them, ordered by start.

    An event ramp that falls inside a forecast ramp (start..crossing, one interval of slack) is merged into
    it, so the same rise is not warmed twice. For a contiguous artifact the forecast ramps come from the
    memoised whole-horizon detection (:mod:`controller.core.forecastview`), which finds exactly what
    :func:`detect_ramps` finds in the look-ahead (each flag depends only on one ``rampWindow`` before it).
    """
    fv = view(forecast)
    thr = config.ramp_threshold
    lo_ns, hi_ns = now.value - fv.step, now.value + seconds_ns(config.lookahead)
    if fv.contiguous:
        index = fv.ramps(thr, seconds_ns(config.ramp_window))
        a = bisect.bisect_left(index.crossing_ns, lo_ns)
        b = bisect.bisect_right(index.crossing_ns, hi_ns)
        ivs = forecast.intervals
        found = [
            Ramp(
                start=ivs[index.start_idx[j]].ds,
                crossing=ivs[index.crossing_idx[j]].ds,
                base_rate=ivs[index.base_idx[j]].yhat,
                peak_rate=ivs[index.crossing_idx[j]].yhat,
                source="forecast",
            )
            for j in range(a, b)
        ]
    else:
        found = detect_ramps(
            forecast.intervals, start=now - _td(fv.step), end=now + _td(hi_ns - now.value), threshold=thr,
            window=_td(seconds_ns(config.ramp_window)),
        )
    if forecast.events:
        step = _td(fv.step)
        lo, hi = now - step, now + _td(hi_ns - now.value)
        events = event_ramps(forecast.events, forecast.intervals, start=lo, end=hi, threshold=thr)
        for ev in events:
            if not any(r.start - step <= ev.start <= r.crossing + step for r in found):
                found.append(ev)
    if len(found) > 1:
        found.sort(key=lambda r: r.start.value)
    return found


def ramp_action(
    r: Ramp, *, target: str, lead: pd.Timedelta, step: pd.Timedelta, replicas: int
) -> WarmupAction:
    is_event = r.source.startswith("event:")
    rise = "from zero" if r.rise == float("inf") else f"+{r.rise:.0%}"
    what = f"event {r.source[6:]!r}" if is_event else "forecast ramp"
    return WarmupAction(
        key=warmup_key(target, r.source, r.crossing),
        at=r.start - lead,
        until=r.crossing + step,
        replicas=replicas,
        reason=EVENT if is_event else RAMP,
        message=(
            f"{what} {rise} ({r.base_rate:.1f} -> {r.peak_rate:.1f} req/s) starting "
            f"{r.start.isoformat()}; warming {format_duration(lead)} ahead"
        ),
    )


def due_now(
    forecast: ForecastArtifact | None,
    scale_events: Iterable[tuple[pd.Timestamp, int]],
    *,
    target: str,
    now: pd.Timestamp,
    config: WarmupConfig,
    startup_ns: int,
    replicas: int,
    grace_ns: int,
    issued: Iterable[str],
) -> list[WarmupAction]:
    """The ramp warm-ups then the new-replica warm-ups that are due now (``at <= now < until``) and not
    issued yet (by key), building only those actions (this runs on every decision)."""
    now_ns = now.value
    ramps: list[Ramp] = []
    if forecast is not None:
        ramps = _due_ramps(forecast, now, config)
    grown: list[tuple[pd.Timestamp, int]] = []
    if config.new_replicas:
        for when, delta in scale_events:
            ready = when.value + startup_ns
            if delta > 0 and ready <= now_ns < ready + grace_ns:
                grown.append((when, delta))
    if not ramps and not grown:
        return []
    done = set(issued)
    out: list[WarmupAction] = []
    for r in ramps:
        key = warmup_key(target, r.source, r.crossing)
        if key not in done:
            assert forecast is not None  # ramps come from it
            lead = _td(per_object(_SPANS, config, _Spans).lead_ns)
            step = _td(int(forecast.interval_seconds) * NS)
            out.append(ramp_action(r, target=target, lead=lead, step=step, replicas=replicas))
            done.add(key)
    for when, delta in grown:
        key = warmup_key(target, "replicas", when)
        if key not in done:
            out.append(new_replica_warmups(
                ((when, delta),), target=target, now=now, startup=_td(startup_ns), replicas=replicas,
                grace=_td(grace_ns),
            )[0])
            done.add(key)
    return out


class _Spans:
    """The warm-up config's spans in nanoseconds, once per config object."""

    __slots__ = ("lead_ns", "lookahead_ns", "window_ns")

    def __init__(self, config: WarmupConfig) -> None:
        self.lead_ns = seconds_ns(config.lead)
        self.window_ns = seconds_ns(config.ramp_window)
        self.lookahead_ns = seconds_ns(config.lookahead)


_SPANS: dict[int, tuple[weakref.ref[Any], _Spans]] = {}


def _due_ramps(forecast: ForecastArtifact, now: pd.Timestamp, config: WarmupConfig) -> list[Ramp]:
    """The ramps of :func:`planned_ramps` whose warm-up is due now (``start - lead <= now < crossing +
    step``), in the same order; without declared events, read off the memoised index (no Ramp is built
    for the ramps that are not due)."""
    fv = view(forecast)
    sp = per_object(_SPANS, config, _Spans)
    now_ns, lead_ns, step_ns = now.value, sp.lead_ns, fv.step
    if not fv.contiguous or forecast.events:
        return [
            r
            for r in planned_ramps(forecast, now=now, config=config)
            if r.start.value - lead_ns <= now_ns < r.crossing.value + step_ns
        ]
    key = ("due", config.ramp_threshold, sp.window_ns, lead_ns, sp.lookahead_ns)
    spans = fv.derived.get(key)
    if spans is None:
        spans = fv.derived[key] = _due_spans(fv, config.ramp_threshold, sp)
    k = bisect.bisect_right(spans[0], now_ns) - 1
    if k < 0 or now_ns >= spans[1][k]:
        return []  # no ramp of the horizon is due now
    index = fv.ramps(config.ramp_threshold, sp.window_ns)
    crossing, first = index.crossing_ns, index.start_idx
    a = bisect.bisect_left(crossing, now_ns - step_ns)
    b = bisect.bisect_right(crossing, now_ns + sp.lookahead_ns)
    ds = fv.ds
    due = [j for j in range(a, b) if ds[first[j]] - lead_ns <= now_ns < crossing[j] + step_ns]
    if len(due) > 1:
        due.sort(key=lambda j: ds[first[j]])
    ivs = forecast.intervals
    return [
        Ramp(
            start=ivs[first[j]].ds,
            crossing=ivs[index.crossing_idx[j]].ds,
            base_rate=ivs[index.base_idx[j]].yhat,
            peak_rate=ivs[index.crossing_idx[j]].yhat,
            source="forecast",
        )
        for j in due
    ]


def _due_spans(fv: ForecastView, threshold: float, sp: _Spans) -> tuple[list[int], list[int]]:
    """When some ramp's warm-up is due, as merged ``[start, end)`` spans (starts, ends) in nanoseconds.

    Ramp j is planned while its crossing lies in [now - step, now + lookahead] and due while
    ``start - lead <= now < crossing + step``: together, ``max(start - lead, crossing - lookahead) <= now <
    crossing + step``.
    """
    index = fv.ramps(threshold, sp.window_ns)
    spans = sorted(
        (max(fv.ds[s] - sp.lead_ns, c - sp.lookahead_ns), c + fv.step)
        for s, c in zip(index.start_idx, index.crossing_ns, strict=True)
    )
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in spans:
        if lo >= hi:
            continue
        if ends and lo <= ends[-1]:
            ends[-1] = max(ends[-1], hi)
        else:
            starts.append(lo)
            ends.append(hi)
    return starts, ends


def _td(ns: int) -> pd.Timedelta:
    return pd.Timedelta(ns, unit="ns")


def new_replica_warmups(
    scale_events: Iterable[tuple[pd.Timestamp, int]], *, target: str, now: pd.Timestamp,
    startup: pd.Timedelta, replicas: int, grace: pd.Timedelta,
) -> list[WarmupAction]:
    """One warm-up per scale-up event, due when its new replicas are ready (``startup`` after the event)."""
    out = []
    for when, delta in scale_events:
        if delta <= 0:
            continue
        ready = when + startup
        out.append(
            WarmupAction(
                key=warmup_key(target, "replicas", when),
                at=ready,
                until=ready + grace,
                replicas=replicas,
                reason=NEW_REPLICAS,
                message=f"{delta} replica(s) added at {when.isoformat()} are ready; warming their caches",
            )
        )
    return out
