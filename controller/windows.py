"""Declared scaling windows: parse and validate their cron expressions and list when they occur.

Operators already scale by schedule (KEDA's cron scaler, hand-written CronJobs before the monthly bundle
reset or a TV promotion). A scaling window says "from this cron instant, for this long (or until that cron
instant), in this zone, keep at least N replicas". This module is the one place that knows cron: it checks a
window (:func:`check_window`, called when a :class:`ScalingWindow` of ``controller.scalingWindows`` is
built, so a bad window stops the command with one line naming it) and lists its occurrences in a span
(:func:`occurrences`), which :mod:`controller.core.schedule` turns into per-decision floors and caps.

Cron is parsed by ``croniter`` (a pure expression library; the decision core may not import APScheduler,
which is a scheduler with threads and clocks). Expressions have the 5 standard fields (minute, hour,
day-of-month, month, day-of-week) and are evaluated in the window's IANA zone. Daylight-saving rules: a
start inside a spring-forward gap fires at the first valid instant after it (02:30 -> 03:00), and a start
repeated by a fall-back fires once, at its first occurrence. A duration is elapsed time (``6h`` is six real
hours even across a clock change); an end cron ends the window at its first instant after the start.

Pure: no clock. Validation checks the first :data:`CHECK_STARTS` starts (at most one year) after
:data:`CHECK_FROM`, a fixed instant, so the same window always gets the same verdict.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Self

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter
from pydantic import Field, model_validator

from forecaster.configbase import Between, ConfigModel, Duration, FieldError, NonEmptyStr, check

CHECK_FROM = dt.datetime(2026, 1, 1)  # wall-clock time in the window's zone
CHECK_STARTS = 400
CHECK_SPAN = dt.timedelta(days=366)
NS = 1_000_000_000
_S = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class CronWindow:
    """When a window is open: from each ``start`` instant for ``duration_s`` or until the next ``end``."""

    start: str
    end: str | None
    duration_s: float | None
    timezone: str
    longest_s: float  # the longest occurrence seen by the check (the duration, or the widest end-cron gap)


class ScalingWindow(ConfigModel):
    """A declared scaling window, like KEDA's cron scaler: a replica floor (and optional cap) on a schedule.
    Checked when built: a bad window stops the command with one line naming it."""

    config_path = "controller.scalingWindows"

    name: NonEmptyStr = Field(description="Unique name; shown in reasons, plans and reports.")
    start: NonEmptyStr = Field(
        description="Cron expression (5 fields, read in timezone) of the instants the window opens; the "
        "floor is requested start-up + warm-up earlier, so the replicas are ready and warm then.",
    )
    end: NonEmptyStr | None = Field(
        None, description="Cron expression of the instant the window closes (its first instant after the "
        "start); give end or duration.",
    )
    duration: Annotated[Duration, Between("0s", "366d")] | None = Field(
        None, description="How long the window stays open (elapsed time); give end or duration.",
        json_schema_extra={"unit": "s"},
    )
    timezone: NonEmptyStr = Field("UTC", description="IANA zone the cron expressions are read in.")
    min_replicas: int = Field(
        ge=0, description="Replicas kept at least while open; overlapping windows take the largest floor. It "
        "never lowers what the forecast or the live load needs.", json_schema_extra={"unit": "replicas"},
    )
    max_replicas: int | None = Field(
        None, ge=1, description="At most this many replicas while open (the tightest cap of overlapping "
        "windows, never below their floor); the safety floors (observed load, no scale-down while blind) "
        "may exceed it.", json_schema_extra={"unit": "replicas"},
    )

    @model_validator(mode="after")
    def _schedule(self) -> Self:
        if self.max_replicas is not None:
            check(self.max_replicas >= self.min_replicas, "maxReplicas",
                  f"window {self.name!r}: must be >= minReplicas ({self.min_replicas}), "
                  f"got {self.max_replicas}")
        _ = self.cron  # parse and check the schedule now: a bad window stops the command at start
        return self

    @cached_property
    def cron(self) -> CronWindow:
        """The checked schedule (see :func:`check_window`)."""
        duration = None if self.duration is None else float(self.duration)
        return check_window(self.name, start=self.start, end=self.end, duration_s=duration,
                            timezone=self.timezone)

    def describe(self) -> str:
        """``name (start cron [to end cron | for duration] zone, min N[, max M])``, for plans and reports."""
        span = f"to '{self.end}'" if self.end is not None else f"for {float(self.duration or 0):g}s"
        cap = f", max {self.max_replicas}" if self.max_replicas is not None else ""
        return f"{self.name} ('{self.start}' {span} {self.timezone}, min {self.min_replicas}{cap})"


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; ValueError naming it when unknown."""
    try:
        return _zone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown timezone {name!r} (use an IANA name such as Asia/Jakarta)") from None


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    if not name or name != name.strip():
        raise ValueError(name)
    return zoneinfo.ZoneInfo(name)


def check_cron(expr: str) -> None:
    """ValueError (one line) unless ``expr`` is a 5-field cron expression that fires at some time."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expr!r} is not a cron expression: it needs 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}"
        )
    try:
        croniter(expr, CHECK_FROM).get_next(dt.datetime)
    except CroniterBadDateError:
        raise ValueError(f"{expr!r} never fires (no such date)") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        reason = str(exc).replace(f"[{expr}]", "").strip()
        if reason.endswith("out of range"):
            reason = "a field is out of range (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7)"
        elif reason in ("", "is not acceptable"):
            reason = "a field is malformed"
        raise ValueError(f"{expr!r} is not a valid cron expression: {reason}") from None


@functools.lru_cache(maxsize=256)
def check_window(
    name: str, *, start: str, end: str | None, duration_s: float | None, timezone: str
) -> CronWindow:
    """The checked :class:`CronWindow`, or a :class:`FieldError` naming the field at fault and the window.

    Refused: a bad or never-firing cron expression, both or neither of ``end`` and ``duration``, a duration
    that is not positive (the window would end before it starts), an unknown zone, and a window longer than
    its period (an occurrence still open when the next one starts). Memoised: configs are re-read.
    """
    who = f"window {name!r}"
    try:
        tz = zone(timezone)
    except ValueError as exc:
        raise FieldError("timezone", f"{who}: {exc}") from None
    for key, expr in (("start", start), ("end", end)):
        if expr is not None:
            try:
                check_cron(expr)
            except ValueError as exc:
                raise FieldError(key, f"{who}: {exc}") from None
    if (end is None) == (duration_s is None):
        raise FieldError("", f"{who}: give either end (a cron expression) or duration, not "
                             f"{'both' if end is not None else 'neither'}")
    if duration_s is not None and not duration_s > 0:
        raise FieldError("duration", f"{who}: the window ends before it starts: duration must be positive, "
                                     f"got {duration_s:g}s")
    first = CHECK_FROM.replace(tzinfo=tz)
    starts = _starts(start, tz, first - _S, first + CHECK_SPAN, limit=CHECK_STARTS)
    longest = 0.0
    for s, nxt in zip(starts, [*starts[1:], None], strict=True):
        e = _end_of(s, end, duration_s, tz)
        longest = max(longest, (e - s).total_seconds())
        if nxt is not None and e > nxt:
            raise FieldError("", (
                f"{who}: the window is longer than its period: the occurrence from {s.isoformat()} lasts "
                f"until {e.isoformat()}, after the next start {nxt.isoformat()}"
            ))
    return CronWindow(start, end, duration_s, timezone, longest)


def occurrences(window: CronWindow, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """``(start, end)`` in epoch nanoseconds of every occurrence that overlaps ``[start_ns, end_ns)``."""
    tz = zone(window.timezone)
    lo = dt.datetime.fromtimestamp(start_ns / NS, tz)
    hi = dt.datetime.fromtimestamp(end_ns / NS, tz)
    # An occurrence open at lo started at most longest_s before it (a checked window ends before its next
    # start); the latest start at or before lo is included in case an unchecked year has a longer one.
    base = lo - dt.timedelta(seconds=window.longest_s)
    prev = croniter(window.start, lo + _S).get_prev(dt.datetime)
    out = []
    for s in _starts(window.start, tz, min(base, prev) - _S, hi):
        e = _end_of(s, window.end, window.duration_s, tz)
        s_ns, e_ns = _ns(s), _ns(e)
        if e_ns > start_ns and s_ns < end_ns:
            out.append((s_ns, e_ns))
    return out


def _starts(expr: str, tz: zoneinfo.ZoneInfo, after: dt.datetime, before: dt.datetime,
            *, limit: int | None = None) -> list[dt.datetime]:
    """Start instants in ``(after, before)``; a wall-clock time repeated by a fall-back counts once."""
    it = croniter(expr, after.astimezone(tz))
    out: list[dt.datetime] = []
    seen = None
    while limit is None or len(out) < limit:
        try:
            s = it.get_next(dt.datetime)
        except CroniterBadDateError:
            break
        if s >= before:
            break
        wall = s.replace(tzinfo=None)
        if wall != seen:
            out.append(s)
        seen = wall
    return out


def _end_of(s: dt.datetime, end: str | None, duration_s: float | None, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    if duration_s is not None:
        return (s.astimezone(dt.UTC) + dt.timedelta(seconds=duration_s)).astimezone(tz)
    assert end is not None
    return croniter(end, s).get_next(dt.datetime)


def _ns(t: dt.datetime) -> int:
    delta = t.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000
