"""Known-future covariates: values known ahead for the horizon (promotion intensity, a campaign calendar, a
weather forecast), read from their own file and lined up with the history and the horizon.

Who calls it: the ``forecast``/``backtest`` subcommands (``--covariates FILE``) and
:func:`forecaster.pipeline.run_forecast`, which passes the aligned frame to the models in
:class:`~forecaster.models.base.FitContext`. The learned models use each column as a feature and Prophet as a
regressor; the seasonal models ignore them.

A covariate must have a value at every interval of the horizon: a missing future value is an error naming
the column and the first missing time, never a silent zero. Gaps in the past are allowed (the models treat
them as unknown). A file finer than the forecast interval is averaged per interval.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.errors import InputError, UserError
from forecaster.series.io import TIME_CANDIDATES, _parse_times, _parse_values, _read_table


def load_covariates(
    path: str | os.PathLike[str], *, time_column: str | None = None, timezone: str = "UTC"
) -> pd.DataFrame:
    """``ds`` plus one float column per covariate (every column other than the time column)."""
    where = str(path)
    frame = _read_table(Path(path), where)
    columns = [str(c) for c in frame.columns]
    tcol = time_column or next((c for c in columns if c.strip().lower() in TIME_CANDIDATES), None)
    if tcol is None or tcol not in columns:
        raise InputError(
            f"{where}: no time column (looked for {time_column or ', '.join(TIME_CANDIDATES)}); "
            f"columns found: {', '.join(columns) or '(none)'}"
        )
    names = [c for c in columns if c != tcol]
    if not names or len(frame) == 0:
        raise InputError(f"{where}: needs a time column, at least one covariate column and data rows")
    out = pd.DataFrame({"ds": _parse_times(frame[tcol], where, tcol, timezone)})
    for name in names:
        out[name] = _parse_values(frame[name], where, name)
    return out.sort_values("ds", kind="stable").reset_index(drop=True)


def align(covariates: pd.DataFrame, stamps: pd.DatetimeIndex, history_end: pd.Timestamp) -> pd.DataFrame:
    """The covariates on ``stamps`` (interval starts), averaged per interval; UserError when a stamp at or
    after ``history_end`` (the horizon) has no value, naming the column and the first missing time."""
    if len(stamps) < 2:
        raise UserError("covariates: need at least two intervals to align to")
    freq = stamps[1] - stamps[0]
    ds = pd.DatetimeIndex(covariates["ds"])
    key = stamps[0] + ((ds - stamps[0]) // freq) * freq
    values = covariates.drop(columns=["ds"]).astype(float)
    per_interval = values.groupby(key).mean().reindex(stamps)
    future = np.asarray(stamps >= history_end)
    for name in per_interval.columns:
        missing = future & ~np.isfinite(per_interval[name].to_numpy(dtype=float))
        if missing.any():
            first = stamps[int(np.flatnonzero(missing)[0])]
            raise UserError(
                f"covariate {name!r} has no value for {first.isoformat()} (the forecast horizon needs a "
                "value at every interval)"
            )
    return per_interval.reset_index(names="ds")
