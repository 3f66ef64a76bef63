"""Learn how recurring calendar days (month start, paydays) move traffic, and carry that into the forecast.

Seasonal models see days and weeks; recharge traffic also jumps on the first of the month and on paydays,
which drift across weekdays and so hide from a weekly profile. For each such kind of day this module compares
every past occurrence in the history with the same local times one and two weeks either side (stamps on any
calendar day excluded). When at least ``MIN_OCCURRENCES`` past days agree, each beyond +-``MIN_EFFECT`` in
the same direction, the median ratio scales that kind's intervals in the horizon, and the pipeline reports
it. Otherwise nothing changes: one coincidence must not become a forecast. Called by forecaster.pipeline.

Public holidays are rarer and each is its own kind of day, so they are learned per holiday in the horizon
(:func:`holiday_effects`): from past occurrences of the same holiday where the history has them, otherwise
from how the series behaved on its other public holidays. The median ratio is shrunk toward no effect by the
weight of the evidence, ``n / (n + k)`` with ``k`` = ``SAME_HOLIDAY_PRIOR`` or ``OTHER_HOLIDAYS_PRIOR`` (other
holidays are weaker evidence for this one), and an effect under ``MIN_EFFECT`` after shrinking is dropped.
The models never see holidays (the history they fit on has them masked), so the effect is applied once, to
whichever model or blend was chosen.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = ("month_start", "payday")
MIN_OCCURRENCES = 2
MIN_EFFECT = 0.08
NEIGHBOUR_DAYS = (-14, -7, 7, 14)
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
    mask = np.zeros(len(stamps), dtype=bool)
    if len(events) == 0:
        return mask
    t = _ns(stamps)
    for start, end in zip(_ns(events["start"]), _ns(events["end"]), strict=True):
        mask |= (t >= start) & (t < end)
    return mask


def _unscaled(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Events of ``kind`` with no declared uplift (a declared one is applied by the models themselves)."""
    if len(events) == 0:
        return events
    up = pd.to_numeric(events["uplift"], errors="coerce").to_numpy(dtype=float)
    return events[(events["kind"] == kind).to_numpy() & ~np.isfinite(up)]


def _neighbour_refs(stamps: pd.DatetimeIndex, calm: pd.Series) -> np.ndarray:
    """Calm values at the same local time ``k`` days away, one row per ``k`` in :data:`NEIGHBOUR_DAYS`.

    NaN where that time has no calm value, and where it does not exist or is ambiguous in the series' time
    zone (a DST change falls on it): such an interval has no single "same local time", and the other
    neighbours still give a reference.
    """
    tz = stamps.tz
    wall = stamps.tz_localize(None) if tz is not None else stamps
    values = calm.to_numpy(dtype=float)
    out = np.full((len(NEIGHBOUR_DAYS), len(stamps)), np.nan)
    for row, k in enumerate(NEIGHBOUR_DAYS):
        target = wall + pd.Timedelta(days=k)
        if tz is not None:
            target = target.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        at = calm.index.get_indexer(target)
        found = at >= 0
        out[row, found] = values[at[found]]
    return out


def _event_ratios(y: pd.Series, calm: pd.Series, past: pd.DataFrame) -> list[float | None]:
    """Per past event, its actual total over the same local times of the calm surrounding weeks (None
    where fewer than half of its intervals have both an actual and a reference)."""
    if len(past) == 0:
        return []
    t = _ns(y.index)
    bounds = zip(_ns(past["start"]), _ns(past["end"]), strict=True)
    spans = [np.flatnonzero((t >= start) & (t < end)) for start, end in bounds]
    at = np.concatenate(spans)
    refs = _neighbour_refs(pd.DatetimeIndex(y.index[at]), calm)  # every event's neighbours in one lookup
    seen = np.isfinite(refs).any(axis=0)
    ref = np.full(len(at), np.nan)
    ref[seen] = np.nanmedian(refs[:, seen], axis=0)
    actual = y.to_numpy(dtype=float)[at]
    ratios: list[float | None] = []
    edges = np.cumsum([0, *(len(span) for span in spans)])
    for lo, hi in itertools.pairwise(edges):
        a, r = actual[lo:hi], ref[lo:hi]
        ok = np.isfinite(a) & np.isfinite(r)
        good = ok.sum() >= max(1, (hi - lo) // 2) and r[ok].sum() > 0
        ratios.append(float(a[ok].sum() / r[ok].sum()) if good else None)
    return ratios


def _ratios(y: pd.Series, calm: pd.Series, past: pd.DataFrame) -> list[float]:
    """The ratios of :func:`_event_ratios` for the events that have one."""
    return [r for r in _event_ratios(y, calm, past) if r is not None]


def learn_effects(history: pd.DataFrame, events: pd.DataFrame) -> list[EventEffect]:
    """Effects of the recurring kinds that the history shows consistently (``history``: regular ds, y), then
    the effect of each public holiday after the history (see :func:`holiday_effects`)."""
    if len(events) == 0 or len(history) == 0:
        return []
    y = pd.Series(history["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(history["ds"]))
    first, last = y.index[0], y.index[-1]
    calm = y.where(~_inside(y.index, events))
    effects = []
    for kind in KINDS:
        past = _unscaled(events, kind)
        past = past[(pd.DatetimeIndex(past["start"]) >= first) & (pd.DatetimeIndex(past["end"]) <= last)]
        ratios = _ratios(y, calm, past)
        up = all(r > 1 + MIN_EFFECT for r in ratios)
        down = all(r < 1 - MIN_EFFECT for r in ratios)
        if len(ratios) >= MIN_OCCURRENCES and (up or down):
            effects.append(EventEffect(kind, float(np.median(ratios)), tuple(ratios)))
    return effects + holiday_effects(y, calm, events)


def holiday_effects(y: pd.Series, calm: pd.Series, events: pd.DataFrame) -> list[EventEffect]:
    """One shrunk effect per public holiday that starts after the history, where evidence exists."""
    holidays = _unscaled(events, "holiday")
    if len(holidays) == 0 or len(y) == 0:
        return []
    starts = pd.DatetimeIndex(holidays["start"])
    past = holidays[np.asarray((starts >= y.index[0]) & (pd.DatetimeIndex(holidays["end"]) <= y.index[-1]))]
    ahead = holidays[np.asarray(starts > y.index[-1])]
    # One ratio per past holiday with enough data (an occurrence inside an outage gives none).
    found = zip(past.index, _event_ratios(y, calm, past), strict=True)
    past_ratios = {i: r for i, r in found if r is not None}
    effects = []
    for name in dict.fromkeys(ahead["name"].astype(str)):
        same = [r for i, r in past_ratios.items() if str(past.loc[i, "name"]) == name]
        ratios, prior, source = same, SAME_HOLIDAY_PRIOR, "past occurrence(s) of this holiday"
        if not same:
            ratios, prior, source = list(past_ratios.values()), OTHER_HOLIDAYS_PRIOR, "other holiday(s)"
        if not ratios:
            continue
        n = len(ratios)
        factor = 1.0 + (float(np.median(ratios)) - 1.0) * n / (n + prior)
        if abs(factor - 1.0) >= MIN_EFFECT:
            effects.append(EventEffect("holiday", factor, tuple(ratios), name=name, source=source))
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
