"""Learn how recurring calendar days (month start, paydays) move traffic, and carry that into the forecast.

Seasonal models see days and weeks; recharge traffic also jumps on the first of the month and on paydays,
which drift across weekdays and so hide from a weekly profile. For each such kind of day this module compares
every past occurrence in the history with the same local times one and two weeks either side (stamps on any
calendar day excluded; a local time that a DST change skips or repeats has no such neighbour and is left
out). When at least ``MIN_OCCURRENCES`` past days agree, each beyond +-``MIN_EFFECT`` in the same direction,
the median ratio scales that kind's intervals in the horizon, and the pipeline reports it. Otherwise nothing
changes: one coincidence must not become a forecast. Called by forecaster.pipeline.

Public holidays are rarer and each is its own kind of day, so they are learned per holiday in the horizon
(:func:`holiday_effects`): from past occurrences of the same holiday where the history has them, otherwise
from how the series behaved on its other public holidays. The median ratio is shrunk toward no effect by the
weight of the evidence, ``n / (n + k)`` with ``k`` = ``SAME_HOLIDAY_PRIOR`` or ``OTHER_HOLIDAYS_PRIOR`` (other
holidays are weaker evidence for this one), and an effect under ``MIN_EFFECT`` after shrinking is dropped.
The models never see holidays (the history they fit on has them masked), so the effect is applied once, to
whichever model or blend was chosen.

The history and the events are read into arrays once per call (:class:`_History`, :class:`_Events`): a
fleet forecast runs this for every series, and per-event pandas selections cost more than the arithmetic.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

KINDS = ("month_start", "payday")
MIN_OCCURRENCES = 2
MIN_EFFECT = 0.08
NEIGHBOUR_DAYS = (-14, -7, 7, 14)
DAY_NS = 86_400 * 10**9
SAME_HOLIDAY_PRIOR = 1.0
OTHER_HOLIDAYS_PRIOR = 3.0


@dataclass(frozen=True)
class EventEffect:
    """A learned multiplier for one kind of calendar day, with the evidence behind it."""

    kind: str
    factor: float
    ratios: tuple[float, ...]
    name: str | None = None  # a holiday effect applies to this holiday only
    source: str = ""  # where a holiday's evidence came from

    @property
    def key(self) -> str:
        return self.kind if self.name is None else f"{self.kind}:{self.name}"

    def describe(self) -> str:
        seen = ", ".join(f"x{r:.2f}" for r in self.ratios)
        n = len(self.ratios)
        if self.name is not None:
            return (
                f"holiday {self.name}: x{self.factor:.2f} of the surrounding weeks, from {n} {self.source} "
                f"({seen}), shrunk toward x1.00 for thin evidence"
            )
        return f"{self.kind} days run x{self.factor:.2f} of the surrounding weeks ({n} past: {seen})"


def _ns(stamps: object) -> np.ndarray:
    """Nanoseconds since the epoch (UTC for tz-aware stamps): integer compares instead of Timestamp ones."""
    return np.asarray(pd.DatetimeIndex(stamps).as_unit("ns").asi8)


def _inside(stamps: pd.DatetimeIndex, events: pd.DataFrame) -> np.ndarray:
    if len(events) == 0:
        return np.zeros(len(stamps), dtype=bool)
    return _inside_ns(_ns(stamps), _ns(events["start"]), _ns(events["end"]))


def _inside_ns(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(t), dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        mask |= (t >= start) & (t < end)
    return mask


def _unscaled(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Events of ``kind`` with no declared uplift (a declared one is applied by the models themselves)."""
    if len(events) == 0:
        return events
    return events[(events["kind"] == kind).to_numpy() & ~np.isfinite(_uplifts(events))]


def _uplifts(events: pd.DataFrame) -> np.ndarray:
    return np.asarray(pd.to_numeric(events["uplift"], errors="coerce"), dtype=float)


@dataclass(frozen=True)
class _Events:
    """The event columns as arrays, read once per call (small-frame overheads add up over a fleet)."""

    kind: np.ndarray
    name: np.ndarray
    start: np.ndarray  # ns
    end: np.ndarray
    unscaled: np.ndarray  # no declared uplift

    @classmethod
    def of(cls, events: pd.DataFrame) -> _Events:
        return cls(
            kind=events["kind"].to_numpy(dtype=object),
            name=events["name"].astype(str).to_numpy(dtype=object),
            start=_ns(events["start"]),
            end=_ns(events["end"]),
            unscaled=~np.isfinite(_uplifts(events)),
        )


@dataclass(frozen=True)
class _History:
    """A history's stamps (ns), actuals and calm values (actuals outside every event), as arrays."""

    index: pd.DatetimeIndex
    t: np.ndarray
    y: np.ndarray
    calm: np.ndarray

    @classmethod
    def of(cls, y: pd.Series, calm: pd.Series) -> _History:
        index = pd.DatetimeIndex(y.index)
        if not calm.index.equals(index):
            calm = calm.reindex(index)
        return cls(index, _ns(index), y.to_numpy(dtype=float), calm.to_numpy(dtype=float))

    @cached_property
    def increasing(self) -> bool:
        """The stamps are strictly increasing (a regular history is), so a binary search finds them."""
        return len(self.t) < 2 or bool(np.all(self.t[1:] > self.t[:-1]))

    def positions(self, targets: np.ndarray) -> np.ndarray:
        """Where each target stamp (ns) is in the history, -1 where it is not."""
        t = self.t
        if not self.increasing:
            # Not strictly increasing: a hash lookup (which refuses duplicate stamps, as reindex does).
            return np.asarray(self.index.get_indexer(pd.DatetimeIndex(targets.view("M8[ns]"), tz="UTC")))
        at = np.minimum(np.searchsorted(t, targets), len(t) - 1)
        return np.where(t[at] == targets, at, -1)

    def neighbour_refs(self, at: np.ndarray) -> np.ndarray:
        """Calm values at the same local time ``k`` days away from the stamps at positions ``at``, one row
        per ``k`` in :data:`NEIGHBOUR_DAYS`.

        NaN where that time has no calm value, and where it does not exist or is ambiguous in the series'
        time zone (a DST change falls on it): such an interval has no single "same local time", and the
        other neighbours still give a reference.
        """
        tz = self.index.tz
        wall = self.index[at].tz_localize(None) if tz is not None and str(tz) != "UTC" else None
        out = np.full((len(NEIGHBOUR_DAYS), len(at)), np.nan)
        for row, k in enumerate(NEIGHBOUR_DAYS):
            if wall is None:  # UTC or naive: a local day is 24 hours
                target = self.t[at] + k * DAY_NS
            else:
                local = (wall + pd.Timedelta(days=k)).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
                target = np.asarray(local.as_unit("ns").asi8)  # NaT: the minimum int64, found nowhere
            pos = self.positions(target)
            found = pos >= 0
            out[row, found] = self.calm[pos[found]]
        return out

    def ratios(self, starts: np.ndarray, ends: np.ndarray) -> list[float | None]:
        """Per event ``[start, end)``, its actual total over the same local times of the calm surrounding
        weeks (None where fewer than half of its intervals have both an actual and a reference)."""
        if len(starts) == 0:
            return []
        spans = [np.flatnonzero((self.t >= lo) & (self.t < hi)) for lo, hi in zip(starts, ends, strict=True)]
        at = np.concatenate(spans)
        refs = self.neighbour_refs(at)  # every event's neighbours in one lookup
        seen = np.isfinite(refs).any(axis=0)
        ref = np.full(len(at), np.nan)
        ref[seen] = np.nanmedian(refs[:, seen], axis=0)
        actual = self.y[at]
        ratios: list[float | None] = []
        edges = np.cumsum([0, *(len(span) for span in spans)])
        for lo, hi in itertools.pairwise(edges):
            a, r = actual[lo:hi], ref[lo:hi]
            ok = np.isfinite(a) & np.isfinite(r)
            good = ok.sum() >= max(1, (hi - lo) // 2) and r[ok].sum() > 0
            ratios.append(float(a[ok].sum() / r[ok].sum()) if good else None)
        return ratios


def _event_ratios(y: pd.Series, calm: pd.Series, past: pd.DataFrame) -> list[float | None]:
    """Per past event (rows of ``past``), see :meth:`_History.ratios`."""
    if len(past) == 0:
        return []
    return _History.of(y, calm).ratios(_ns(past["start"]), _ns(past["end"]))


def learn_effects(history: pd.DataFrame, events: pd.DataFrame) -> list[EventEffect]:
    """Effects of the recurring kinds that the history shows consistently (``history``: regular ds, y), then
    the effect of each public holiday after the history (see :func:`holiday_effects`)."""
    if len(events) == 0 or len(history) == 0:
        return []
    index = pd.DatetimeIndex(history["ds"])
    y = history["y"].to_numpy(dtype=float)
    ev = _Events.of(events)
    t = _ns(index)
    calm = np.where(_inside_ns(t, ev.start, ev.end), np.nan, y)
    h = _History(index, t, y, calm)
    within = (ev.start >= t[0]) & (ev.end <= t[-1])
    effects = []
    for kind in KINDS:
        sel = (ev.kind == kind) & ev.unscaled & within
        ratios = [r for r in h.ratios(ev.start[sel], ev.end[sel]) if r is not None]
        up = all(r > 1 + MIN_EFFECT for r in ratios)
        down = all(r < 1 - MIN_EFFECT for r in ratios)
        if len(ratios) >= MIN_OCCURRENCES and (up or down):
            effects.append(EventEffect(kind, float(np.median(ratios)), tuple(ratios)))
    return effects + _holiday_effects(h, ev)


def holiday_effects(y: pd.Series, calm: pd.Series, events: pd.DataFrame) -> list[EventEffect]:
    """One shrunk effect per public holiday that starts after the history, where evidence exists."""
    if len(events) == 0 or len(y) == 0:
        return []
    return _holiday_effects(_History.of(y, calm), _Events.of(events))


def _holiday_effects(h: _History, ev: _Events) -> list[EventEffect]:
    holiday = (ev.kind == "holiday") & ev.unscaled
    if not holiday.any() or len(h.t) == 0:
        return []
    past = holiday & (ev.start >= h.t[0]) & (ev.end <= h.t[-1])
    ahead = holiday & (ev.start > h.t[-1])
    # One ratio per past holiday with enough data (an occurrence inside an outage gives none).
    found = zip(ev.name[past], h.ratios(ev.start[past], ev.end[past]), strict=True)
    past_ratios = [(name, r) for name, r in found if r is not None]
    effects = []
    for name in dict.fromkeys(ev.name[ahead]):
        same = [r for n, r in past_ratios if n == name]
        ratios, prior, source = same, SAME_HOLIDAY_PRIOR, "past occurrence(s) of this holiday"
        if not same:
            ratios, prior, source = [r for _, r in past_ratios], OTHER_HOLIDAYS_PRIOR, "other holiday(s)"
        if not ratios:
            continue
        n = len(ratios)
        factor = 1.0 + (float(np.median(ratios)) - 1.0) * n / (n + prior)
        if abs(factor - 1.0) >= MIN_EFFECT:
            effects.append(EventEffect("holiday", factor, tuple(ratios), name=str(name), source=source))
    return effects


def apply_effects(
    frame: pd.DataFrame, events: pd.DataFrame, effects: list[EventEffect]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Scale the forecast intervals inside each effect's events; the events get the learned uplift.

    Returns the new frame, the events (horizon kinds with an effect carry ``uplift`` = factor) and the number
    of intervals scaled per effect (:attr:`EventEffect.key`).
    """
    out, evs = frame.copy(), events.copy()
    stamps = pd.DatetimeIndex(out["ds"])
    touched: dict[str, int] = {}
    for eff in effects:
        which = _unscaled(evs, eff.kind)
        if eff.name is not None:
            which = which[(which["name"].astype(str) == eff.name).to_numpy()]
        mask = _inside(stamps, which)
        if not mask.any():
            continue
        for col in ("yhat", "yhat_lower", "yhat_upper"):
            values = out[col].to_numpy(dtype=float).copy()
            values[mask] *= eff.factor
            out[col] = values
        evs.loc[which.index, "uplift"] = eff.factor
        touched[eff.key] = int(mask.sum())
    return out, evs, touched
