"""Shared command-line flags for history files and the event calendar, so every subcommand spells them alike.

Subcommands that read a history (``forecast``, ``backtest``, ``plan`` ...) call :func:`add_history_arguments`
and :func:`load_clean_history`; those that use events call :func:`add_calendar_arguments` and
:func:`calendar_from_args`. Bad flag values raise :class:`~forecaster.errors.UserError` naming the flag.
"""

from __future__ import annotations

import argparse

from forecaster.errors import ConfigError, UserError
from forecaster.series.calendar import CalendarConfig, EventCalendar
from forecaster.series.cleaning import CleanSeries, clean
from forecaster.series.io import TIME_CANDIDATES, VALUE_CANDIDATES, check_timezone, load_history


def add_history_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--history FILE``, ``--time-column``, ``--value-column``, ``--timezone``."""
    group = parser.add_argument_group("history")
    group.add_argument(
        "--history", metavar="FILE", required=required,
        help="history file: CSV (.csv, .csv.gz) or Parquet (.parquet) with one row per interval; "
             "values are request counts or rates per interval (non-negative)",
    )
    group.add_argument(
        "--time-column", metavar="NAME", default=None,
        help=f"column holding the interval start time (default: first of {', '.join(TIME_CANDIDATES)})",
    )
    group.add_argument(
        "--value-column", metavar="NAME", default=None,
        help=f"column holding the value (default: first of {', '.join(VALUE_CANDIDATES)})",
    )
    group.add_argument(
        "--timezone", metavar="ZONE", default="UTC",
        help="IANA zone of the traffic's local day (e.g. Asia/Jakarta): zone-less stamps are read as local "
             "times there, stamps with an offset are converted to it; daily/weekly patterns and calendar "
             "events use it (default: UTC)",
    )


def add_calendar_arguments(parser: argparse.ArgumentParser) -> None:
    """``--country``, ``--subdivision``, ``--chinese-calendar``, ``--paydays``, ``--no-month-start``,
    ``--promotions``."""
    group = parser.add_argument_group("event calendar")
    group.add_argument("--country", metavar="CODE", default=None,
                       help="public holidays of this country (ISO 3166 code, e.g. ID, IN, US; default: none)")
    group.add_argument("--subdivision", metavar="CODE", default=None,
                       help="region for regional holidays (e.g. CA for US California); needs --country")
    group.add_argument("--chinese-calendar", action="store_true",
                       help="China's official holiday schedule from chinese-calendar "
                            "(needs the 'chinese' extra)")
    group.add_argument("--paydays", metavar="DAYS", default="",
                       help="comma-separated days of the month that are paydays, 1..31; 31 means the last "
                            "day of every month (e.g. 1,15,31; default: none)")
    group.add_argument("--no-month-start", dest="month_start", action="store_false",
                       help="do not treat the first day of each month as an event")
    group.add_argument("--promotions", metavar="FILE", default=None,
                       help="YAML list of promotions {name, start, end, uplift} (uplift 1.5 or '+50%%')")


def parse_paydays(text: str | None) -> list[int]:
    """``'1,15,31'`` -> ``[1, 15, 31]``; UserError naming ``--paydays`` otherwise."""
    if not text or not text.strip():
        return []
    days = []
    for part in text.split(","):
        item = part.strip()
        if not item.isdigit() or not 1 <= int(item) <= 31:
            raise UserError(
                f"--paydays: {item!r} is not a day of the month 1..31 (31 = last day); e.g. --paydays 1,15,31"
            )
        days.append(int(item))
    return sorted(set(days))


def load_clean_history(args: argparse.Namespace) -> CleanSeries:
    """Load ``--history`` with the column/zone flags and clean it (see :mod:`forecaster.series.cleaning`)."""
    path = getattr(args, "history", None)
    if not path:
        raise UserError("--history: required; give a CSV or Parquet file of past traffic")
    timezone = check_timezone(getattr(args, "timezone", None) or "UTC")
    raw = load_history(path, time_column=getattr(args, "time_column", None),
                       value_column=getattr(args, "value_column", None), timezone=timezone)
    return clean(raw, where=str(path))


def calendar_from_args(args: argparse.Namespace) -> EventCalendar:
    """The event calendar the calendar flags describe, in the ``--timezone`` zone."""
    timezone = check_timezone(getattr(args, "timezone", None) or "UTC")
    country = getattr(args, "country", None) or None
    subdivision = getattr(args, "subdivision", None) or None
    if subdivision and not country:
        raise UserError("--subdivision: needs --country (e.g. --country US --subdivision CA)")
    try:
        config = CalendarConfig(
            country=country.upper() if country else None,
            subdivision=subdivision,
            chinese_calendar=bool(getattr(args, "chinese_calendar", False)),
            month_start=bool(getattr(args, "month_start", True)),
            paydays=parse_paydays(getattr(args, "paydays", None)),
            promotions_file=getattr(args, "promotions", None) or None,
        )
    except ConfigError as exc:
        raise UserError(_as_flag(str(exc))) from None
    try:
        return EventCalendar(config, timezone)
    except ConfigError as exc:
        raise UserError(_as_flag(str(exc))) from None


_FLAGS = {
    "calendar.country": "--country",
    "calendar.subdivision": "--subdivision",
    "calendar.chineseCalendar": "--chinese-calendar",
    "calendar.paydays": "--paydays",
}


def _as_flag(message: str) -> str:
    """Name the command-line flag instead of the config field in a calendar error."""
    for key, flag in _FLAGS.items():
        if message.startswith(key):
            return flag + message[len(key):]
    return message
