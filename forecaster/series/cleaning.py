"""Turn a raw history series into a regular, honest one that models can fit, and say what was changed.

Every history (file or Prometheus) passes through :func:`clean` before any model sees it. Cleaning never hides
a problem: each change is reported as a :class:`~forecaster.artifact.QualityNote` that ends up in the forecast
artifact and the CLI output.

- sort and de-duplicate (identical repeats are noted; the same stamp with different values is an InputError),
- infer the interval (or use the one asked for) and reject stamps that sit on no regular grid,
- regularise: an interval absent from the input is NaN, never zero,
- flag outages: runs of zeros, or sharp drops far below what is normal *for that series at that local time
  of day/week*, so a collection failure or a blizzard does not teach a model that demand vanished. A sparse
  series whose zeros are ordinary (a quiet counter) is judged by its own zero rate, so isolated zeros are
  not outages,
- note short history (under 14 days) as a warning instead of failing.

Seasonal slots use the local wall clock of the series' timezone: a DST change does not shift the daily shape.
All of it is vectorised pandas/numpy: 10k points take milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from forecaster.artifact import QualityNote
from forecaster.durations import format_duration
from forecaster.errors import InputError, UserError
from forecaster.series.groups import SortedGroups, dense, group_mean, group_sum

SHORT_HISTORY = pd.Timedelta(days=14)
DAY = pd.Timedelta(days=1)
# A drop is an outage candidate below this share of the expected level for the slot ...
DROP_RATIO = 0.1
# ... and its flagged window extends to neighbours still below this share.
EXTEND_RATIO = 0.5
# A run of zeros is an outage when, judged by the series' own zero rate per slot, it is this unlikely.
ZERO_RUN_PROBABILITY = 1e-8
MIN_OUTAGE_SPAN = pd.Timedelta(minutes=30)


@dataclass(frozen=True)
class CleanSeries:
    """A regular history at ``freq`` plus masks and the notes that explain every change made to it."""

    y: pd.Series  # regular tz-aware index named ds; NaN where missing or flagged as an outage
    freq: pd.Timedelta
    timezone: str
    notes: tuple[QualityNote, ...]
    missing: pd.Series  # bool: interval absent from the input (or its value was empty)
    outage: pd.Series  # bool: flagged outage
    observed: pd.Series  # regular values before outage masking (NaN only where missing)

    def frame(self) -> pd.DataFrame:
        """The ``ds, y`` frame models fit on (outages and gaps are NaN)."""
        return pd.DataFrame({"ds": self.y.index, "y": self.y.to_numpy()})


def clean(raw: pd.Series, *, where: str, freq: pd.Timedelta | None = None) -> CleanSeries:
    """Sort, de-duplicate, regularise and flag outages; ``where`` names the source in error messages."""
    if not isinstance(raw.index, pd.DatetimeIndex):
        raise InputError(f"{where}: history has no timestamps (index is {type(raw.index).__name__})")
    idx = (raw.index if raw.index.tz is not None else raw.index.tz_localize("UTC")).as_unit("ns")
    timezone = str(idx.tz)
    values = pd.to_numeric(pd.Series(raw.to_numpy()), errors="coerce").astype("float64").to_numpy()
    if np.isnan(values).all():
        raise InputError(f"{where}: history has no values (all empty or NaN)")
    bad = np.flatnonzero((values < 0) | np.isinf(values))
    if len(bad):
        pos = int(bad[0])
        raise InputError(
            f"{where}: value {values[pos]:g} at {idx[pos].isoformat()} (row {pos + 1}) is negative or "
            "infinite; request volumes must be finite and non-negative"
        )
    notes: list[QualityNote] = []

    rows = np.arange(len(values)) + 1  # 1-based data rows, as in the file
    order = np.argsort(idx.asi8, kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        notes.append(QualityNote("unsorted", "info", "timestamps were not in order; sorted them"))
    idx, values, rows = idx[order], values[order], rows[order]
    idx, values = _deduplicate(idx, values, rows, where, notes)
    if len(idx) < 2:
        raise InputError(f"{where}: history has a single distinct timestamp; at least two are needed")

    freq = None if freq is None else pd.Timedelta(freq)
    step, calendar_days = _infer_step(idx, rows, where, hint=freq)
    target = step
    if freq is not None:
        ratio = freq / step
        if freq < step or abs(ratio - round(ratio)) > 1e-9:
            raise InputError(
                f"{where}: requested interval {format_duration(freq)} does not fit the data's "
                f"{format_duration(step)} interval; use a whole multiple of {format_duration(step)}"
            )
    full = _grid(idx[0], idx[-1], step, calendar_days)
    observed = pd.Series(values, index=idx).reindex(full)
    observed = _trim(observed)
    observed.index.name = "ds"
    observed.name = "y"
    missing = observed.isna()
    outage = pd.Series(_flag_outages(observed, step), index=observed.index, name="outage")
    y = observed.mask(outage)
    y.name = "y"
    notes.extend(_gap_notes(missing, step))
    notes.extend(_outage_notes(observed, outage, step))
    span = observed.index[-1] - observed.index[0] + step
    if span < SHORT_HISTORY:
        notes.append(QualityNote(
            "short_history", "warning",
            f"only {format_duration(span)} of history (under 14 days): weekly patterns cannot be learned "
            "and the forecast band is less reliable",
        ))
    series = CleanSeries(y=y, freq=step, timezone=timezone, notes=tuple(notes),
                         missing=missing.rename("missing"), outage=outage, observed=observed)
    if freq is not None and freq != target:
        series = resample(series, freq, "mean")
    return series


def _deduplicate(
    idx: pd.DatetimeIndex, values: np.ndarray, rows: np.ndarray, where: str, notes: list[QualityNote]
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    dup = idx.duplicated(keep=False)
    if not dup.any():
        return idx, values
    frame = pd.DataFrame({"ds": idx.asi8[dup], "v": values[dup], "row": rows[dup]})
    spread = frame.groupby("ds")["v"].agg(["min", "max"])
    conflict = spread[spread["max"] > spread["min"]]
    if len(conflict):
        key = conflict.index[0]
        clash = frame[frame["ds"] == key]
        stamp = pd.Timestamp(key, tz="UTC").tz_convert(idx.tz)
        shown = ", ".join(f"row {int(r)}: {v:g}" for r, v in zip(clash["row"], clash["v"], strict=True))
        raise InputError(
            f"{where}: timestamp {stamp.isoformat()} appears more than once with different values ({shown}); "
            "keep one row per timestamp"
        )
    series = pd.Series(values, index=idx)
    kept = series.groupby(level=0, sort=False).first()  # first non-NaN value of each stamp
    removed = len(series) - len(kept)
    notes.append(QualityNote("duplicates", "warning",
                             f"{removed} repeated row(s) with the same timestamp and value were dropped"))
    return pd.DatetimeIndex(kept.index), kept.to_numpy(dtype="float64")


def _mode(diffs: np.ndarray) -> int:
    uniq, counts = np.unique(diffs, return_counts=True)
    return int(uniq[np.argmax(counts)])


def _infer_step(
    idx: pd.DatetimeIndex, rows: np.ndarray, where: str, hint: pd.Timedelta | None = None
) -> tuple[pd.Timedelta, bool]:
    """The data interval, and whether it is counted in calendar days (local midnight to midnight).

    A ``hint`` (the step a source was queried at) is used as is when every stamp sits on its grid, at least
    half of the grid is present and the data is not simply coarser; otherwise the stamps decide.
    """
    day_ns = DAY.value
    wall = idx.tz_localize(None).as_unit("ns").asi8
    if hint is not None and hint.value > 0:
        on_days = hint.value % day_ns == 0
        pts = wall if on_days else idx.as_unit("ns").asi8
        d = np.diff(pts)
        mode = _mode(d)
        coarser = mode != hint.value and not np.any(d % mode)  # regular data at a coarser step than asked
        dense = (pts[-1] - pts[0]) // hint.value + 1 <= 2 * len(pts)
        if not np.any(d % hint.value) and dense and not coarser:
            return hint, on_days
    wall_diffs = np.diff(wall)
    calendar = _mode(wall_diffs) % day_ns == 0
    points = wall if calendar else idx.as_unit("ns").asi8
    diffs = np.diff(points)
    step = _mode(diffs)
    if np.any(diffs % step):
        smallest = int(diffs.min())
        span = int(points[-1] - points[0])
        if smallest > 0 and not np.any(diffs % smallest) and span // smallest + 1 <= 2 * len(points):
            step = smallest
        else:
            pos = int(np.flatnonzero(diffs % step)[0]) + 1
            raise InputError(
                f"{where}: irregular timestamps: row {int(rows[pos])} ({idx[pos].isoformat()}) is "
                f"{format_duration(pd.Timedelta(int(diffs[pos - 1]), unit='ns'))} after the previous stamp, "
                f"not a multiple of the usual {format_duration(pd.Timedelta(step, unit='ns'))} interval; "
                "aggregate the data to a fixed interval"
            )
    return pd.Timedelta(step, unit="ns"), calendar


def _grid(
    start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta, calendar_days: bool
) -> pd.DatetimeIndex:
    if calendar_days:
        days = int(step / DAY)
        wall = pd.date_range(start.tz_localize(None), end.tz_localize(None), freq=pd.offsets.Day(days))
        grid = wall.tz_localize(start.tz, ambiguous="NaT", nonexistent="shift_forward")
        return pd.DatetimeIndex(grid[~grid.isna()]).as_unit("ns")
    return pd.date_range(start, end, freq=step).as_unit("ns")


def _trim(observed: pd.Series) -> pd.Series:
    """Drop leading/trailing intervals without a value (an empty last cell must not end the history)."""
    valid = np.flatnonzero(observed.notna().to_numpy())
    return observed.iloc[valid[0] : valid[-1] + 1]


def _slots(index: pd.DatetimeIndex, step: pd.Timedelta, valid: int) -> np.ndarray:
    """Seasonal slot of each interval in local wall-clock time: time of week once two weeks are seen."""
    wall = index.tz_localize(None)
    span = index[-1] - index[0]
    if step >= DAY:
        daily = np.zeros(len(index), dtype=np.int64)
        weekly = np.asarray(wall.day_of_week, dtype=np.int64)
        per_day = 1
    else:
        sec = np.asarray(wall.hour * 3600 + wall.minute * 60 + wall.second, dtype=np.int64)
        step_s = max(int(step.total_seconds()), 1)
        daily = sec // step_s
        per_day = max(int(DAY / step), 1)
        weekly = np.asarray(wall.day_of_week, dtype=np.int64) * (daily.max() + 1) + daily
    if span >= pd.Timedelta(days=14) and valid / (7 * per_day) >= 2:
        return weekly
    return daily


def _run_ids(mask: np.ndarray) -> np.ndarray:
    """An id per run of equal values, so runs can be grouped."""
    return np.concatenate([[0], np.cumsum(mask[1:] != mask[:-1])])


def _flag_outages(observed: pd.Series, step: pd.Timedelta) -> np.ndarray:
    v = observed.to_numpy(dtype="float64")
    valid = ~np.isnan(v)
    n_valid = int(valid.sum())
    flagged = np.zeros(len(v), dtype=bool)
    if n_valid < 4:
        return flagged
    slot = dense(_slots(pd.DatetimeIndex(observed.index), step, n_valid))

    # Rule 1: runs of zeros that this series' own zero rate per slot makes implausible.
    zero = valid & (v == 0)
    if zero.any():
        p_zero = (group_sum(slot, zero) + 0.5) / (group_sum(slot, valid) + 1.0)
        rid = _run_ids(zero)
        run_logp = group_sum(rid, np.where(zero, np.log(p_zero), 0.0))
        run_len = group_sum(rid, zero)
        run_p = group_mean(rid, p_zero)
        # Implausible as a whole, at times when zeros are the exception (not a closed-at-weekends service).
        flagged |= zero & (run_len >= 2) & (run_logp < math.log(ZERO_RUN_PROBABILITY)) & (run_p < 0.5)

    # Rule 2: sharp drops far below the usual level of this slot, and below the slot's own low range.
    profile = SortedGroups(slot, v).median()[slot]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(profile > 0, v / profile, np.nan)
    window = max(int(pd.Timedelta(days=7) / step), 1)
    level = (pd.Series(ratio).rolling(window, center=True, min_periods=max(window // 4, 1)).median()
             .fillna(1.0).clip(lower=0.25, upper=4.0).to_numpy())
    expected = profile * level
    with np.errstate(divide="ignore", invalid="ignore"):
        adjusted = v / level
    low = SortedGroups(slot, adjusted).quantile(0.1)[slot] * level
    core = valid & (v < DROP_RATIO * expected) & (v < 0.5 * low)
    min_run = max(1 if step >= pd.Timedelta(hours=6) else 2, math.ceil(MIN_OUTAGE_SPAN / step))
    crid = _run_ids(core)
    seeds = core & (group_sum(crid, core) >= min_run)
    if seeds.any():
        soft = valid & (v < EXTEND_RATIO * expected)
        srid = _run_ids(soft)
        flagged |= soft & (group_sum(srid, seeds) > 0)
    return flagged


def _runs(mask: pd.Series) -> list[tuple[pd.Timestamp, int]]:
    """(start, length) of each run of True values."""
    m = mask.to_numpy(dtype=bool)
    if not m.any():
        return []
    edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(mask.index[int(p)], int(e - p)) for p, e in zip(starts, ends, strict=True)]


def _gap_notes(missing: pd.Series, step: pd.Timedelta) -> list[QualityNote]:
    n = int(missing.sum())
    if not n:
        return []
    runs = _runs(missing)
    start, length = max(runs, key=lambda r: r[1])
    share = n / len(missing)
    return [QualityNote(
        "gap", "warning",
        f"{n} missing interval(s) ({share:.1%}) in {len(runs)} gap(s), kept as missing (not zero); longest "
        f"{format_duration(step * length)} from {start.isoformat()}",
    )]


def _outage_notes(observed: pd.Series, outage: pd.Series, step: pd.Timedelta) -> list[QualityNote]:
    runs = _runs(outage)
    if not runs:
        return []
    shown = "; ".join(f"{s.isoformat()} for {format_duration(step * n)}" for s, n in runs[:3])
    more = f" and {len(runs) - 3} more" if len(runs) > 3 else ""
    return [QualityNote(
        "outage", "warning",
        f"{int(outage.sum())} interval(s) look like an outage (zeros or a sharp drop far below the usual "
        f"level for that time) and are excluded from fitting: {shown}{more}",
    )]


def resample(series: CleanSeries, freq: pd.Timedelta, how: Literal["mean", "sum"] = "mean") -> CleanSeries:
    """Aggregate to a coarser interval that is a whole multiple of ``series.freq``.

    Bins start at local midnight (calendar days for daily intervals). An output interval with any missing
    input is NaN (never a partial sum); one with any outage input is an outage. Incomplete bins at either end
    are dropped.
    """
    freq = pd.Timedelta(freq)
    ratio = freq / series.freq
    if freq < series.freq or abs(ratio - round(ratio)) > 1e-9:
        raise UserError(
            f"interval {format_duration(freq)} must be a whole multiple of the history's "
            f"{format_duration(series.freq)} interval"
        )
    if freq == series.freq:
        return series
    if how not in ("mean", "sum"):
        raise UserError(f"resample: unknown aggregation {how!r}; use mean or sum")
    calendar = freq % DAY == pd.Timedelta(0)
    rule: pd.DateOffset | pd.Timedelta = pd.offsets.Day(int(freq / DAY)) if calendar else freq
    obs = series.observed
    kwargs = {"origin": "start_day"}
    size = obs.resample(rule, **kwargs).size()
    agg = getattr(obs.resample(rule, **kwargs), how)()
    miss = series.missing.resample(rule, **kwargs).max().astype(bool)
    out = series.outage.resample(rule, **kwargs).max().astype(bool)
    starts = pd.DatetimeIndex(size.index)
    ends = starts[1:].append(pd.DatetimeIndex([starts[-1] + rule]))
    expected = np.round((ends - starts) / series.freq).astype(int)
    complete = size.to_numpy() >= np.asarray(expected)
    keep = pd.Series(complete, index=size.index)
    valid = np.flatnonzero(complete)
    if not len(valid):
        raise InputError(
            f"history covers less than one full {format_duration(freq)} interval; cannot aggregate to it"
        )
    keep[:] = False
    keep.iloc[valid[0] : valid[-1] + 1] = True
    miss = miss[keep] | ~pd.Series(complete, index=size.index)[keep]
    out = out[keep] & ~miss
    observed = agg[keep].where(~miss)
    observed.index.name, observed.name = "ds", "y"
    y = observed.mask(out)
    n_miss = int(miss.sum())
    gaps = (
        "no interval is missing" if n_miss == 0
        else f"{n_miss} are missing because one of their {format_duration(series.freq)} inputs is"
    )
    note = QualityNote(
        "resampled", "info",
        f"aggregated from {format_duration(series.freq)} to {format_duration(freq)} intervals ({how}); "
        f"{gaps}",
    )
    return CleanSeries(y=y, freq=freq, timezone=series.timezone, notes=(*series.notes, note),
                       missing=miss.rename("missing"), outage=out.rename("outage"), observed=observed)
