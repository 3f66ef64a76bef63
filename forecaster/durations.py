"""Parse and format the durations used on the command line and in config (``90s``, ``30m``, ``24h``, ``7d``).

Every duration flag in the product goes through :func:`parse_duration` so that units, errors and limits
are the same everywhere.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from forecaster.errors import UserError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_seconds(text: str | int | float) -> float:
    """Seconds in ``'90s'``, ``'30m'``, ``'24h'``, ``'7d'``, ``'1w'``, ``'1h30m'`` or a bare number.

    Works on plain floats (no pandas), so an absurd value such as ``1000000d`` parses and can be refused
    by a range check instead of overflowing a Timedelta. Negative values are returned as such (the caller
    decides); bad syntax, booleans and non-finite numbers raise ``ValueError`` with a message that does not
    name the field (the caller adds it).
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like 30m, 24h or 7d, got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    elif isinstance(text, str):
        s = text.strip().lower()
        negative = s.startswith("-")
        s = s.removeprefix("-").strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", s):
            seconds = float(s)
        else:
            parts = _PART.findall(s)
            if not s or "".join(n + u for n, u in parts) != s:
                raise ValueError(
                    f"cannot parse {text!r}; use a number with a unit s, m, h, d or w (e.g. 30m, 24h, 7d)"
                )
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
        if negative:
            seconds = -seconds
    else:
        raise ValueError(f"expected a duration like 30m, 24h or 7d, got {text!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"must be a finite duration, got {text!r}")
    return seconds


def parse_duration(
    text: str | int | float,
    *,
    what: str = "duration",
    allow_zero: bool = False,
    unit_required: bool | None = None,
) -> pd.Timedelta:
    """Parse ``'90s'``, ``'30m'``, ``'24h'``, ``'7d'``, ``'1w'`` or combinations like ``'1h30m'``.

    A bare number is read as seconds in config files; on the command line (``unit_required``, by default
    when ``what`` is a ``--flag``) a bare number other than 0 is an error, since ``--startup 2`` is as likely
    meant as minutes. Raises :class:`UserError` naming ``what`` on bad syntax or a value that is not
    positive (zero is accepted when ``allow_zero``).
    """
    if unit_required is None:
        unit_required = what.startswith("--")
    try:
        seconds = parse_seconds(text)
    except ValueError as exc:
        raise UserError(f"{what}: {exc}") from None
    bare = str(text).strip()
    if unit_required and isinstance(text, str) and re.fullmatch(r"\d+(?:\.\d+)?", bare) and seconds != 0:
        raise UserError(f"{what}: {text!r} has no unit; write it with one, e.g. {bare}s, {bare}m or {bare}h")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise UserError(f"{what}: must be {'zero or ' if allow_zero else ''}positive, got {text!r}")
    return pd.Timedelta(seconds=seconds)


def format_seconds(seconds: float) -> str:
    """Format a number of seconds the way :func:`parse_seconds` reads it, without pandas (no overflow).

    Whole seconds read as ``'1h30m'`` or ``'1000000d'``; fractions as ``'0.5s'``; negatives with a ``-``.
    """
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    if not math.isfinite(seconds) or seconds != int(seconds):
        return f"{seconds:g}s"
    total = int(seconds)
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def format_duration(td: pd.Timedelta) -> str:
    """Format a timedelta the way :func:`parse_duration` reads it (``'1h30m'``, ``'7d'``)."""
    exact = pd.Timedelta(td).total_seconds()
    total = round(exact)
    if exact != total and abs(exact) < 60:
        return format_seconds(exact)  # 0.4s, 2.5s: rounding would misstate a short timeout ("after 0s")
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
