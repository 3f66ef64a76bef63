"""Declared scaling windows in the decision core: the floor and cap in force at a decision, and warm-ups.

A window (``controller.scalingWindows``, checked and enumerated by :mod:`controller.windows`) promises
replicas that are ready and warm when it opens. A decision at ``now`` sizes the span ``[now, now + lead +
interval]`` (a replica asked for now serves from ``now + lead``), so a window's floor is in force for
decisions in ``[start - lead - interval, end)``: some loop tick in ``[start - lead - interval, start -
lead]`` asks for it, and it is ready by ``start``. Its cap is in force for decisions in ``[start, end -
lead - interval)``: not before the window opens, and lifted early enough for the replicas needed after it
to be ready when it closes. Overlapping windows take the largest floor and the tightest cap, and a cap
never goes below the floor in force. :func:`controller.core.decision.decide` applies them after the rate
limits, like ``minReplicas`` and ``maxReplicas`` (``ScheduledFloor``, ``ScheduledCap``); the safety floors
(observed load, no scale-down while blind) still apply after them. Each opening also gets a cache warm-up
``warmup.lead`` before it (``WindowAhead``), like a forecast ramp.

Occurrences are computed once per config and week (chunks of :data:`CHUNK_NS`) into sorted segments, so a
decision costs one dictionary lookup and one bisect. Pure: no clock, no I/O.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Iterable
from typing import Any, NamedTuple

import pandas as pd

from controller.config import ControllerConfig
from controller.core.forecastview import NS, per_object, seconds_ns
from controller.core.warmup import WarmupAction, warmup_key
from controller.windows import ScalingWindow, occurrences
from forecaster.durations import format_duration

SCHEDULED_FLOOR = "ScheduledFloor"
SCHEDULED_CAP = "ScheduledCap"
WINDOW_AHEAD = "WindowAhead"
CHUNK_NS = 7 * 86_400 * NS


class InForce(NamedTuple):
    """The windows' floor and cap in force at one decision time."""

    floor: int  # largest floor in force (0: none)
    floor_by: int  # index of the window with that floor in config.scaling_windows (-1: none)
    cap: int | None  # tightest cap in force, raised to the floor if below it (None: none)
    cap_by: int  # index of the window with the tightest cap
    start_ns: int  # the floor window's occurrence (for messages; 0 when there is no floor)
    end_ns: int


class Opening(NamedTuple):
    start_ns: int
    window: int  # index in config.scaling_windows


class Timetable:
    """Per config: the floors and caps in force, by time, computed a week at a time on first use."""

    def __init__(self, config: ControllerConfig) -> None:
        self.windows = config.scaling_windows
        self.pre_ns = int(config.window_td.value)  # lead + interval
        self.warm_ns = seconds_ns(config.warmup.lead)
        self.grace_ns = 2 * config.interval_ns
        self._chunks: dict[int, tuple[list[int], list[InForce | None], list[Opening]]] = {}

    def at(self, now_ns: int) -> InForce | None:
        """What is in force for a decision at ``now_ns`` (None: no window)."""
        bounds, values, _ = self._chunk(now_ns // CHUNK_NS)
        return values[bisect.bisect_right(bounds, now_ns) - 1]

    def openings(self, lo_ns: int, hi_ns: int) -> list[Opening]:
        """Window openings with ``lo_ns <= start < hi_ns``, by start (every decision asks: bisected)."""
        out: list[Opening] = []
        for c in range(lo_ns // CHUNK_NS, (hi_ns - 1) // CHUNK_NS + 1):
            found = self._chunk(c)[2]
            a = bisect.bisect_left(found, (lo_ns,))
            b = bisect.bisect_left(found, (hi_ns,))
            if a < b:
                out.extend(found[a:b])
        return out

    def _chunk(self, c: int) -> tuple[list[int], list[InForce | None], list[Opening]]:
        found = self._chunks.get(c)
        if found is None:
            found = self._chunks[c] = self._build(c * CHUNK_NS, (c + 1) * CHUNK_NS)
        return found

    def _build(self, a: int, b: int) -> tuple[list[int], list[InForce | None], list[Opening]]:
        pre = self.pre_ns
        edges: list[tuple[int, int, int, int, int, int]] = []  # (time, +1/-1, kind 0 floor/1 cap, w, s, e)
        opening: list[Opening] = []
        for w, win in enumerate(self.windows):
            for s, e in occurrences(win.cron, a, b + pre):
                if a <= s < b:
                    opening.append(Opening(s, w))
                edges += [(s - pre, 1, 0, w, s, e), (e, -1, 0, w, s, e)]
                if win.max_replicas is not None and e - pre > s:
                    edges += [(s, 1, 1, w, s, e), (e - pre, -1, 1, w, s, e)]
        edges.sort(key=lambda x: (x[0], x[1]))  # at one instant, closings first
        count = [[0] * len(self.windows), [0] * len(self.windows)]
        span: list[tuple[int, int]] = [(0, 0)] * len(self.windows)
        bounds: list[int] = [a]
        values: list[InForce | None] = [None]
        for t, step, kind, w, s, e in edges:
            count[kind][w] += step
            if step > 0 and kind == 0:
                span[w] = (s, e)
            at = max(t, a)
            if at >= b:
                continue
            now = self._in_force(count, span)
            if bounds[-1] == at:
                values[-1] = now
            elif values[-1] != now:
                bounds.append(at)
                values.append(now)
        opening.sort()
        return bounds, values, opening

    def _in_force(self, count: list[list[int]], span: list[tuple[int, int]]) -> InForce | None:
        floor, floor_by, cap, cap_by = 0, -1, None, -1
        for w, win in enumerate(self.windows):
            if count[0][w] > 0 and (floor_by < 0 or win.min_replicas > floor):
                floor, floor_by = win.min_replicas, w
            if count[1][w] > 0 and win.max_replicas is not None and (cap is None or win.max_replicas < cap):
                cap, cap_by = win.max_replicas, w
        if floor_by < 0 and cap is None:
            return None
        if cap is not None and cap < floor:
            cap = floor  # a floor is a promise: the cap yields
        s, e = span[floor_by] if floor_by >= 0 else (0, 0)
        return InForce(floor, floor_by, cap, cap_by, s, e)


_TABLES: dict[int, tuple[weakref.ref[Any], Timetable]] = {}


def timetable(config: ControllerConfig) -> Timetable | None:
    """The memoised timetable of ``config`` (None when it declares no window)."""
    if not config.scaling_windows:
        return None
    return per_object(_TABLES, config, Timetable)


def floor_message(win: ScalingWindow, floor: int, start_ns: int, end_ns: int) -> str:
    tz = win.timezone
    return (
        f"scaling window {win.name!r} open {_local(start_ns, tz)} to {_local(end_ns, tz)}: at least {floor} "
        "replicas, requested start-up + warm-up ahead so they are ready and warm when it opens"
    )


def cap_message(win: ScalingWindow, cap: int) -> str:
    own = win.max_replicas if win.max_replicas is not None else cap
    kept = f"; kept at {cap}, the floor of an overlapping window" if own < cap else ""
    return f"scaling window {win.name!r} allows at most {own} replicas while it is open{kept}"


def due_warmups(table: Timetable, *, now: pd.Timestamp, target: str, replicas: int,
                issued: Iterable[str]) -> list[WarmupAction]:
    """Warm-ups for window openings due now (``start - warmup.lead <= now < start + 2 intervals``) whose
    idempotency key is not in ``issued``."""
    now_ns = now.value
    due = table.openings(now_ns - table.grace_ns + 1, now_ns + table.warm_ns + 1)
    if not due:
        return []
    done = set(issued)
    out = []
    for o in due:
        win = table.windows[o.window]
        if win.min_replicas <= 0:
            continue  # a cap-only window adds no replicas to warm
        start = pd.Timestamp(o.start_ns, tz="UTC").tz_convert(win.timezone)
        key = warmup_key(target, f"window:{win.name}", start)
        if key in done:
            continue
        out.append(WarmupAction(
            key=key,
            at=start - pd.Timedelta(table.warm_ns, unit="ns"),
            until=start + pd.Timedelta(table.grace_ns, unit="ns"),
            replicas=replicas,
            reason=WINDOW_AHEAD,
            message=(f"scaling window {win.name!r} opens {start.isoformat()} (at least {win.min_replicas} "
                     f"replicas); warming {format_duration(pd.Timedelta(table.warm_ns, unit='ns'))} ahead"),
        ))
    return out


def listing(config: ControllerConfig, start: pd.Timestamp, end: pd.Timestamp) -> list[dict[str, Any]]:
    """Every occurrence of the declared windows overlapping ``[start, end)``: name, start, end (in the
    window's zone), floor, cap and when the floor is first requested (for plans and reports)."""
    rows = []
    pre = config.window_td
    for win in config.scaling_windows:
        for s, e in occurrences(win.cron, start.value, end.value):
            opens = pd.Timestamp(s, tz="UTC").tz_convert(win.timezone)
            rows.append({
                "window": win.name,
                "start": opens,
                "end": pd.Timestamp(e, tz="UTC").tz_convert(win.timezone),
                "min_replicas": win.min_replicas,
                "max_replicas": win.max_replicas,
                "requested_from": opens - pre,
            })
    rows.sort(key=lambda r: (r["start"].value, r["window"]))
    return rows


def _local(ns: int, tz: str) -> str:
    return pd.Timestamp(ns, tz="UTC").tz_convert(tz).isoformat(timespec="minutes")
