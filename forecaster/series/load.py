"""The one way a history file becomes a series: read, convert counts to a rate, clean.

Every caller that starts from a file (``forecast``, ``backtest``, ``plan``, ``simulate``, ``whatif``,
``report``, the file source of the job) goes through :class:`HistorySpec`, so the same file with the same
options gives the same series everywhere. :func:`load_series` returns the cleaned series the forecaster
fits; :func:`load_rate` the raw per-second rate the simulator replays (sorted, one row per stamp, gaps kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.errors import UserError
from forecaster.series.cleaning import CleanSeries, clean
from forecaster.series.io import check_timezone, load_history


@dataclass(frozen=True)
class HistorySpec:
    """Where a history is and how to read it."""

    path: str
    time_column: str | None = None
    value_column: str | None = None
    timezone: str = "UTC"
    counts: bool = False  # values are counts per interval; divided by the interval to get req/s
    flag: str = "--history"  # what messages call the path (simulate: --trace)


def _read(spec: HistorySpec) -> pd.Series:
    if not spec.path:
        raise UserError(f"{spec.flag}: required; give a CSV or Parquet file of past traffic")
    timezone = check_timezone(spec.timezone or "UTC")
    return load_history(
        spec.path,
        time_column=spec.time_column,
        value_column=spec.value_column,
        timezone=timezone,
        names={"path": spec.flag},
    )


def _per_second(raw: pd.Series, path: str) -> pd.Series:
    """Counts per interval -> requests per second, the interval being the smallest step of the file."""
    stamps = np.unique(raw.index.as_unit("ns").asi8)
    if len(stamps) < 2:
        raise UserError(f"{path}: needs at least two rows to know the interval")
    interval = pd.Timedelta(int(np.min(np.diff(stamps))), unit="ns")
    return raw / interval.total_seconds()


def load_series(spec: HistorySpec) -> CleanSeries:
    """The cleaned series of ``spec`` (see :mod:`forecaster.series.cleaning`), in req/s when ``counts``."""
    raw = _read(spec)
    if spec.counts:
        raw = _per_second(raw, spec.path)
    return clean(raw, where=str(spec.path))


def load_rate(spec: HistorySpec) -> pd.Series:
    """The trace as a per-second rate series: sorted, the last row kept per duplicated stamp, not cleaned."""
    raw = _read(spec).sort_index()
    raw = raw[~raw.index.duplicated(keep="last")]
    if len(raw) < 2:
        raise UserError(f"{spec.path}: needs at least two rows to know the interval")
    if spec.counts:
        raw = _per_second(raw, spec.path)
    return raw.astype(float)
