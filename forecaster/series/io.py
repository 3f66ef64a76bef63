"""Read history files (CSV, Parquet) into one well-defined series, and write result frames as CSV.

Every command that takes ``--history FILE`` and the file history source go through :func:`load_history`, so
a file is understood the same way everywhere: which column holds the time and which the value, how zone-less
stamps are read, and what counts as unusable input. Anything unusable raises :class:`InputError` with ONE
line naming the file, the column and the data row (rows are counted from 1, the header not included), so a
user can fix the file without reading a traceback.

Timezones: stamps with a UTC offset (``...+02:00``, ``...Z``) are instants and are converted to the
requested zone; zone-less stamps are wall-clock times *in* that zone. The returned index stays tz-aware in
the user's zone so that models see the local hour of day and day of week across DST changes.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.errors import InputError, UserError

TIME_CANDIDATES = ("ds", "timestamp", "time", "date_time")
VALUE_CANDIDATES = ("y", "value")
PARQUET_SUFFIXES = (".parquet", ".pq")
_OFFSET_RE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
MAX_VALUE = 1e12
"""The largest accepted history value (a trillion requests per second or per interval). Far above any real
traffic, and far enough below the float limits that squares, sums and the band arithmetic stay exact enough
to mean something: 1e300 would overflow into inf and NaN bands (issue 10, item 11)."""


def check_timezone(name: str, *, what: str = "--timezone") -> str:
    """Return ``name`` if it is an IANA zone (``UTC``, ``Europe/Berlin``); else UserError naming ``what``."""
    try:
        zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise UserError(
            f"{what}: unknown timezone {name!r}; use an IANA name such as UTC, Europe/Berlin or Asia/Jakarta"
        ) from None
    return str(name)


CLI_NAMES = {
    "path": "--history", "time": "--time-column", "value": "--value-column", "timezone": "--timezone"
}
"""What :func:`load_history`'s messages call the path, the column choices and the zone: the flags by default;
a config-driven caller passes its field names (``source.file.path``), ``simulate`` its ``--trace``."""


def load_history(
    path: str | os.PathLike[str],
    *,
    time_column: str | None = None,
    value_column: str | None = None,
    timezone: str = "UTC",
    names: dict[str, str] | None = None,
) -> pd.Series:
    """Load a history file as a float series named ``y`` with a tz-aware DatetimeIndex named ``ds``.

    Rows keep the file's order (sorting and de-duplication are :func:`forecaster.series.cleaning.clean`'s
    job).
    Empty value cells become NaN (a missing interval, never a zero). Messages name the setting to fix with
    ``names`` (see :data:`CLI_NAMES`).
    """
    n = {**CLI_NAMES, **(names or {})}
    check_timezone(timezone, what=n["timezone"])
    p = Path(path)
    where = str(path)
    frame = _read_table(p, where, n["path"])
    if len(frame.columns) == 0 or len(frame) == 0:
        if len(frame.columns) == 0:
            raise InputError(f"{where}: file is empty; expected a header row and data rows")
        raise InputError(f"{where}: has a header but no data rows")
    tcol = _pick_column(frame, time_column, TIME_CANDIDATES, where, "time", n["time"])
    vcol = _pick_column(frame, value_column, VALUE_CANDIDATES, where, "value", n["value"])
    if tcol == vcol:
        raise InputError(f"{where}: the time and value columns are both {tcol!r}; name two different columns")
    if len(frame) < 2:
        raise InputError(f"{where}: has a single data row; at least two rows are needed to forecast")
    index = _parse_times(frame[tcol], where, tcol, timezone)
    values = _parse_values(frame[vcol], where, vcol)
    return pd.Series(values, index=index, name="y")


def _read_table(p: Path, where: str, path_name: str = "--history") -> pd.DataFrame:
    if not p.exists():
        raise InputError(f"{where}: file not found; check {'the ' if path_name.startswith('--') else ''}"
                         f"{path_name}{' path' if path_name.startswith('--') else ''}")
    if p.is_dir():
        raise InputError(f"{where}: is a directory, not a history file")
    try:
        if p.stat().st_size == 0:
            raise InputError(f"{where}: file is empty; expected a header row and data rows")
        if p.suffix.lower() in PARQUET_SUFFIXES:
            table = pd.read_parquet(p)
            # pandas writes a DatetimeIndex as the index, not a column: bring it back as a column.
            return table if isinstance(table.index, pd.RangeIndex) else table.reset_index()
        return pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{where}: file is empty; expected a header row and data rows") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "malformed CSV"
        raise InputError(f"{where}: not a readable CSV file ({detail})") from None
    except UnicodeDecodeError:
        raise InputError(f"{where}: not a text CSV file (cannot decode as UTF-8)") from None
    except OSError as exc:
        if p.suffix.lower() in PARQUET_SUFFIXES or "parquet" in str(exc).lower():
            raise InputError(f"{where}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        raise InputError(f"{where}: cannot read file ({exc.strerror or exc})") from None
    except (ValueError, TypeError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on corrupt files
        first = (str(exc).splitlines() or ["unknown error"])[0]
        detail = first.replace(f" '{p}'", "").replace(str(p), "file")
        kind = "Parquet file" if p.suffix.lower() in PARQUET_SUFFIXES else "file"
        raise InputError(f"{where}: not a readable {kind} ({detail})") from None


def _pick_column(
    frame: pd.DataFrame, wanted: str | None, candidates: tuple[str, ...], where: str, role: str, flag: str
) -> str:
    columns = [str(c) for c in frame.columns]
    found = ", ".join(columns) or "(none)"
    if wanted:
        if wanted in columns:
            return wanted
        raise InputError(f"{where}: no column {wanted!r} ({flag}); columns found: {found}")
    lowered = {c.strip().lower(): c for c in columns}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    raise InputError(
        f"{where}: no {role} column (looked for {', '.join(candidates)}); columns found: {found}; "
        f"name it with {flag}"
    )


def _row(pos: int) -> int:
    """1-based data row number of a 0-based position."""
    return int(pos) + 1


def _parse_times(col: pd.Series, where: str, name: str, timezone: str) -> pd.DatetimeIndex:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(col).tz_convert(timezone)
        return _finish_index(idx, where, name, col)
    if pd.api.types.is_datetime64_dtype(col.dtype):
        return _localize(pd.DatetimeIndex(col), where, name, timezone, col)
    text = col.astype("string").str.strip()
    blank = text.isna() | (text == "")
    if blank.any():
        pos = int(np.flatnonzero(blank.to_numpy())[0])
        raise InputError(f"{where}: column {name!r} row {_row(pos)} has no timestamp; every row needs one")
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all() and float(numeric.min()) >= 1e8:  # after 1973: not a compact date like 20260131
        # Unix epoch (Prometheus exports): seconds, or milliseconds when the numbers are that large.
        unit = "ms" if float(numeric.abs().max()) > 1e11 else "s"
        idx = pd.DatetimeIndex(pd.to_datetime(numeric.astype("float64"), unit=unit, utc=True))
        return _finish_index(idx.tz_convert(timezone), where, name, col)
    has_offset = text.str.contains(_OFFSET_RE, regex=True).to_numpy(dtype=bool)
    if has_offset.any() and not has_offset.all():
        pos = int(np.flatnonzero(~has_offset)[0] if has_offset[0] else np.flatnonzero(has_offset)[0])
        raise InputError(
            f"{where}: column {name!r} mixes stamps with and without a UTC offset (row {_row(pos)}: "
            f"{text.iloc[pos]!r}); write all stamps the same way"
        )
    parsed = _to_datetime(text, utc=bool(has_offset.all()))
    bad = parsed.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{where}: column {name!r} row {_row(pos)}: cannot parse timestamp {text.iloc[pos]!r}; "
            "use ISO 8601 such as 2026-01-31 13:30:00 or 2026-01-31T13:30:00+07:00"
        )
    idx = pd.DatetimeIndex(parsed)
    if has_offset.all():
        return _finish_index(idx.tz_convert(timezone), where, name, col)
    return _localize(idx, where, name, timezone, col)


def _to_datetime(text: pd.Series, *, utc: bool) -> pd.Series:
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=utc)
    if parsed.isna().any():
        # Not ISO 8601 everywhere: let pandas infer one format from the data (e.g. 01/31/2026 13:30).
        try:
            alt = pd.to_datetime(text, errors="coerce", utc=utc)
        except (ValueError, TypeError):
            return parsed
        if alt.isna().sum() < parsed.isna().sum():
            return alt
    return parsed


def _localize(
    idx: pd.DatetimeIndex, where: str, name: str, timezone: str, col: pd.Series
) -> pd.DatetimeIndex:
    # Wall-clock stamps in the repeated hour of a DST change: the first occurrence of a stamp is read as the
    # earlier (summer-time) instant and a repeat as the later one. A file that shows the hour only once
    # leaves the other hour as a visible gap.
    first = ~pd.Series(idx).duplicated(keep="first").to_numpy()
    localized = idx.tz_localize(timezone, ambiguous=first, nonexistent="NaT")
    bad = np.asarray(localized.isna())
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{where}: column {name!r} row {_row(pos)}: local time {idx[pos]} does not exist in {timezone} "
            "(clocks skip it at a DST change); write stamps in UTC or with a UTC offset"
        )
    return _finish_index(localized, where, name, col)


def _finish_index(idx: pd.DatetimeIndex, where: str, name: str, col: pd.Series) -> pd.DatetimeIndex:
    bad = np.asarray(idx.isna())
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{where}: column {name!r} row {_row(pos)}: cannot parse timestamp {col.iloc[pos]!r}"
        )
    out = idx.as_unit("ns")
    out.name = "ds"
    return out


def _parse_values(col: pd.Series, where: str, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col.dtype):
        raise InputError(f"{where}: column {name!r} holds true/false values, not numbers")
    if pd.api.types.is_numeric_dtype(col.dtype):
        values = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        blank = np.zeros(len(values), dtype=bool)
        bad_num = np.zeros(len(values), dtype=bool)
    else:
        text = col.astype("string").str.strip()
        blank = (text.isna() | (text == "") | text.str.lower().isin(["nan", "na", "null", "none"])).to_numpy(
            dtype=bool
        )
        values = pd.to_numeric(text.mask(blank), errors="coerce").astype("float64").to_numpy()
        bad_num = np.isnan(values) & ~blank
    bad_num |= np.isinf(values)
    if bad_num.any():
        pos = int(np.flatnonzero(bad_num)[0])
        raise InputError(
            f"{where}: column {name!r} row {_row(pos)}: {col.iloc[pos]!r} is not a finite number"
        )
    big = values > MAX_VALUE
    if big.any():
        pos = int(np.flatnonzero(big)[0])
        raise InputError(
            f"{where}: column {name!r} row {_row(pos)}: {values[pos]:g} is too large to forecast (at most "
            f"{MAX_VALUE:g}); check the column and its unit"
        )
    neg = values < 0
    if neg.any():
        pos = int(np.flatnonzero(neg)[0])
        raise InputError(
            f"{where}: column {name!r} row {_row(pos)}: negative value {values[pos]:g}; "
            "request volumes cannot be negative"
        )
    if np.isnan(values).all():
        raise InputError(f"{where}: column {name!r} has no values (every row is empty or NaN)")
    return values


def _iso_column(col: pd.Series) -> pd.Series:
    """ISO 8601 text with a UTC offset (``2026-01-31T13:30:00+07:00``); naive stamps are taken as UTC."""
    s = col if isinstance(col.dtype, pd.DatetimeTZDtype) else col.dt.tz_localize("UTC")
    text = s.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return text.str.replace(r"([+-]\d{2})(\d{2})$", r"\1:\2", regex=True)


VALUE_COLUMNS = ("yhat", "yhat_lower", "yhat_upper", "peak_upper")


def round_values(
    frame: pd.DataFrame, columns: Sequence[str] = VALUE_COLUMNS, digits: int = 4
) -> pd.DataFrame:
    """``frame`` with ``columns`` rounded to ``digits`` significant digits of their largest value.

    One number of decimals for all of them (at least one), so a column reads evenly: a peak of 25,327 keeps
    one decimal (``25327.1``), a peak of 15.2 keeps two (``15.24``), 0.0123 keeps five. ``digits`` <= 0
    leaves the frame as it is.
    """
    cols = [c for c in columns if c in frame.columns]
    if digits <= 0 or not cols:
        return frame
    values = np.abs(frame[cols].to_numpy(dtype=float))
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
    magnitude = math.floor(math.log10(top)) if top > 0 and math.isfinite(top) else 0
    decimals = max(1, digits - 1 - magnitude)
    return frame.assign(**{c: frame[c].astype(float).round(decimals) for c in cols})


def write_frame(frame: pd.DataFrame, dest: str, *, finite: tuple[str, ...] = ()) -> None:
    """Write ``frame`` as CSV with ISO 8601 stamps including the offset; ``dest`` ``-`` means stdout.

    Files are written to a temporary name and renamed, so a reader never sees a half-written file, and an
    existing file is replaced only by a complete, valid one: the frame must have rows, the ``finite``
    columns a finite number in every row, and the temporary file every row; otherwise UserError, and the
    old file stays (issue 10, item 11).
    """
    _check_complete(frame, dest, finite)
    out = frame.copy()
    if isinstance(out.index, pd.DatetimeIndex):
        out = out.reset_index()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name].dtype):
            out[name] = _iso_column(out[name])
    if dest == "-":
        out.to_csv(sys.stdout, index=False)
        return
    target = Path(dest)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{dest}: cannot write: directory {str(parent)!r} does not exist")
    from forecaster.tempfiles import remove_stale

    remove_stale(parent, target.name)  # left by a run killed between write and rename
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            out.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        with open(tmp, encoding="utf-8", newline="") as fh:
            lines = sum(1 for _ in fh)
        if lines < len(out) + 1:
            raise UserError(f"{dest}: not written: the temporary file holds {lines - 1} of {len(out)} rows")
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise UserError(f"{dest}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _check_complete(frame: pd.DataFrame, dest: str, finite: tuple[str, ...]) -> None:
    if frame.empty:
        raise UserError(f"{dest}: not written: nothing to write (no rows)")
    for name in finite:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise UserError(
                f"{dest}: not written: column {name!r} row {_row(pos)} is not a finite number "
                f"({values[pos]}); the previous file is kept"
            )


__all__ = [
    "CLI_NAMES", "MAX_VALUE", "TIME_CANDIDATES", "VALUE_CANDIDATES", "check_timezone", "load_history",
    "write_frame",
]
