"""Read a history file that holds many series in long format (one row per series and interval).

Why this module exists: a platform forecasts many series (per region, operator, channel) and keeps them in
one file with an id column, as statsforecast and Prophet's users do (``unique_id, ds, y``). The id column is
found among :data:`ID_CANDIDATES` (or named with ``--id-column``); a file without one is a single series and
goes through :func:`forecaster.series.io.load_history` exactly as before.

Each series is parsed with the same rules and messages as a one-series file (:mod:`forecaster.series.io`),
but a bad series does not stop the others: its one-line error (naming the series and the file's data row)
is returned beside the good series. Only problems of the whole file (missing, unreadable, no such column)
raise.
Who calls it: the ``forecast`` and ``backtest`` subcommands.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.errors import InputError, UserError
from forecaster.series.io import (
    PARQUET_SUFFIXES,
    TIME_CANDIDATES,
    VALUE_CANDIDATES,
    _parse_times,
    _parse_values,
    _pick_column,
    _read_table,
    check_timezone,
)

ID_CANDIDATES = ("unique_id", "series", "id")
_ROW = re.compile(r"\brow (\d+)")


@dataclass(frozen=True)
class LongHistory:
    """The series of a long file in order of first appearance, and the ones that could not be read."""

    id_column: str
    series: list[tuple[str, pd.Series]]  # (id, raw series as load_history returns it)
    errors: list[tuple[str, str]]  # (id, one-line message)
    ids: list[str]  # every id, in order of first appearance


def find_id_column(path: str | os.PathLike[str], wanted: str | None = None) -> str | None:
    """The id column of a history file (``wanted``, else the first of ID_CANDIDATES present), or None.

    Reads the header only. InputError when ``wanted`` is not a column.
    """
    p = Path(path)
    where = str(path)
    if not p.is_file():
        if wanted:
            raise InputError(f"{where}: file not found; check the --history path")
        return None
    try:
        if p.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            columns = [str(c) for c in pq.read_schema(p).names]
        else:
            columns = [
                str(c)
                for c in pd.read_csv(
                    p, nrows=0, dtype=str, skipinitialspace=True, encoding="utf-8-sig"
                ).columns
            ]
    except Exception:  # unreadable files get load_history's precise message
        if wanted:
            _read_table(p, where)
        return None
    if wanted:
        if wanted not in columns:
            raise InputError(
                f"{where}: no column {wanted!r} (--id-column); columns found: {', '.join(columns)}"
            )
        return wanted
    lowered = {c.strip().lower(): c for c in columns}
    return next((lowered[c] for c in ID_CANDIDATES if c in lowered), None)


def load_long_history(
    path: str | os.PathLike[str],
    id_column: str,
    *,
    time_column: str | None = None,
    value_column: str | None = None,
    timezone: str = "UTC",
    counts: bool = False,
) -> LongHistory:
    """Every series of a long file, parsed as :func:`forecaster.series.io.load_history` parses one series;
    with ``counts`` each series' values are divided by its interval (req/s), as ``--counts`` does."""
    from forecaster.series.load import _per_second

    check_timezone(timezone)
    where = str(path)
    frame = _read_table(Path(path), where)
    if len(frame) == 0:
        raise InputError(f"{where}: has a header but no data rows")
    tcol = _pick_column(frame, time_column, TIME_CANDIDATES, where, "time", "--time-column")
    vcol = _pick_column(frame, value_column, VALUE_CANDIDATES, where, "value", "--value-column")
    if len({tcol, vcol, id_column}) < 3:
        raise InputError(f"{where}: the id, time and value columns must be three different columns")
    ids = frame[id_column].astype("string").str.strip().fillna("")
    if (ids == "").any():
        pos = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise InputError(f"{where}: column {id_column!r} row {pos + 1} has no series id; every row needs one")
    times = _pre_parse(frame[tcol])
    values = _values_once(frame[vcol], where, vcol)
    codes, uniques = pd.factorize(ids, sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    series: list[tuple[str, pd.Series]] = []
    errors: list[tuple[str, str]] = []
    for k, sid in enumerate(uniques):
        rows = order[bounds[k] : bounds[k + 1]]
        label = f"{where} series {sid!r}"
        try:
            if len(rows) < 2:
                raise InputError(f"{label}: has a single data row; at least two rows are needed to forecast")
            idx = _parse_times(_take(times, rows), label, tcol, timezone)
            vals = (
                values[rows] if values is not None else _parse_values(_take(frame[vcol], rows), label, vcol)
            )
            one = pd.Series(vals, index=idx, name="y")
            one = _per_second(one, label) if counts else one
        except UserError as exc:  # InputError included
            errors.append((str(sid), _file_rows(str(exc), rows)))
            continue
        series.append((str(sid), one))
    return LongHistory(id_column, series, errors, [str(u) for u in uniques])


def _take(col: pd.Series, rows: np.ndarray) -> pd.Series:
    return col.iloc[rows].reset_index(drop=True)


def _file_rows(message: str, rows: np.ndarray) -> str:
    """Rewrite 'row N' (1-based within the series) as the file's data row."""

    def fix(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"row {int(rows[n - 1]) + 1}" if 1 <= n <= len(rows) else m.group(0)

    return _ROW.sub(fix, message)


def _pre_parse(col: pd.Series) -> pd.Series:
    """ISO text parsed once for the whole file when every stamp is clean ISO 8601, all with or all without
    an offset; otherwise the text itself, parsed per series (slower, but each error names its series)."""
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        return col
    text = col.astype("string").str.strip()
    if text.isna().any() or not text.str.contains(r"^\d{4}-\d{2}-\d{2}", regex=True).all():
        return col
    offset = text.str.contains(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$", regex=True)
    if offset.any() and not offset.all():
        return col
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=bool(offset.all()))
    return col if parsed.isna().any() else parsed


def _values_once(col: pd.Series, where: str, name: str) -> np.ndarray | None:
    """All values parsed at once, or None when some are bad (then each series reports its own)."""
    try:
        return _parse_values(col, where, name)
    except InputError:
        return None
