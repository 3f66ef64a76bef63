"""Shared command-line flags, so every subcommand spells them alike and means the same by them.

- History: :func:`add_history_arguments` and :func:`history_spec` (read by the one loader,
  :mod:`forecaster.series.load`).
- Event calendar: :func:`add_calendar_arguments` and :func:`calendar_from_args`.
- The replicas: :func:`add_controller_arguments` and :func:`controller_config`, the ONE place where
  ``--config`` and the capacity/limit flags become a :class:`~controller.config.ControllerConfig`. Flags
  that are not given take the config file's value, else the config model's default, so ``plan``,
  ``simulate``, ``whatif``, ``report``, the config file and the Helm chart share one set of defaults.

Bad flag values raise :class:`~forecaster.errors.UserError` naming the flag.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from controller.config import MAX_TARGET, ControllerConfig
from controller.configfile import load_controller_config
from forecaster.configbase import Duration
from forecaster.durations import parse_duration
from forecaster.errors import ConfigError, UserError
from forecaster.series.calendar import CalendarConfig, EventCalendar
from forecaster.series.cleaning import CleanSeries
from forecaster.series.io import TIME_CANDIDATES, VALUE_CANDIDATES, check_timezone
from forecaster.series.load import HistorySpec, load_series

DEFAULT_HISTORY_HELP = (
    "history file: CSV (.csv, .csv.gz) or Parquet (.parquet) with one row per interval; "
    "values are request rates per second, or counts per interval with --counts (non-negative)"
)


def add_history_arguments(
    parser: argparse.ArgumentParser,
    *,
    required: bool = True,
    flag: str = "--history",
    help: str = DEFAULT_HISTORY_HELP,
    timezone_default: str | None = "UTC",
) -> None:
    """``--history FILE`` (or ``flag``), ``--counts``, the column flags and ``--timezone``."""
    group = parser.add_argument_group("history")
    group.add_argument(flag, metavar="FILE", required=required, dest="history", help=help)
    parser.set_defaults(history_flag=flag)  # messages about the file name the flag it came from
    group.add_argument(
        "--counts", action="store_true",
        help="values are request counts per interval, not per-second rates (divided by the interval)",
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
        "--timezone", metavar="ZONE", default=timezone_default,
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


def history_spec(args: argparse.Namespace) -> HistorySpec:
    """The :class:`HistorySpec` the history flags describe."""
    return HistorySpec(
        path=getattr(args, "history", None) or "",
        time_column=getattr(args, "time_column", None),
        value_column=getattr(args, "value_column", None),
        timezone=getattr(args, "timezone", None) or "UTC",
        counts=bool(getattr(args, "counts", False)),
        flag=getattr(args, "history_flag", None) or "--history",
    )


def load_clean_history(args: argparse.Namespace) -> CleanSeries:
    """Load ``--history`` with the history flags and clean it (see :mod:`forecaster.series.load`)."""
    return load_series(history_spec(args))


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
    "forecast.calendar.country": "--country",
    "forecast.calendar.subdivision": "--subdivision",
    "forecast.calendar.chineseCalendar": "--chinese-calendar",
    "forecast.calendar.paydays": "--paydays",
}


def _as_flag(message: str) -> str:
    """Name the command-line flag instead of the config field in a calendar error."""
    for key, flag in _FLAGS.items():
        if message.startswith(key):
            return flag + message[len(key):]
    return message


def parse_fraction(text: str, *, what: str) -> float:
    """``'10%'`` or ``'0.1'`` -> 0.1; UserError naming ``what`` otherwise (negative values too)."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        raise UserError(f"{what}: expected a fraction like 0.1 or a percentage like 10%, got {text!r}") \
            from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{what}: must be zero or positive, got {text!r}")
    return value


def _default(name: str) -> Any:
    """The config model's default of ``name``: the one default every subcommand and the chart share."""
    return ControllerConfig.model_fields[name].get_default(call_default_factory=True)


def _show(name: str) -> str:
    value = _default(name)
    if isinstance(value, Duration):
        return f"{value:g}s"
    if name == "headroom":
        return f"{value:.0%}".replace("%", "%%")
    return str(value)


# Flags that describe the replicas, the config field each overrides, and (for scenario comparisons) the
# names of the flags whose values belong to the scenario rather than the baseline.
CLUSTER_FLAGS = ("capacity_per_replica", "startup", "warmup_time", "min_replicas", "max_replicas", "headroom",
                 "availability_target")


def parse_target(text: str, *, what: str = "--availability-target") -> float:
    """``'99.5%'`` or ``'0.995'`` -> 0.995; UserError naming ``what`` outside 50%..99.9%."""
    s = str(text).strip()
    try:
        value = round(float(s[:-1]) / 100.0 if s.endswith("%") else float(s), 9)
    except ValueError:
        raise UserError(f"{what}: expected a share like 0.995 or a percentage like 99.5%, got {text!r}") \
            from None
    if not (math.isfinite(value) and 0.5 <= value <= MAX_TARGET):
        hint = f" (write {s}% or {value / 100:g})" if 50 <= value <= 100 * MAX_TARGET else ""
        raise UserError(f"{what}: must be between 50% and {MAX_TARGET:.1%}, got {text!r}{hint}")
    return value


def add_controller_arguments(parser: argparse.ArgumentParser, *, price: bool = False) -> None:
    """``--config`` and the flags that override its controller section: capacity, start-up, limits ..."""
    group = parser.add_argument_group("replicas (override the config file's controller section)")
    group.add_argument("--config", default=None, metavar="FILE",
                       help="YAML config whose controller section supplies the defaults of the flags below")
    group.add_argument("--capacity-per-replica", type=float, default=None, metavar="REQ_PER_S",
                       help="request rate one warm replica serves within its SLO, req/s "
                            "(required unless --config)")
    group.add_argument("--startup", default=None, metavar="DURATION",
                       help=f"pod start-up until ready, e.g. 90s (default: config or {_show('startup')})")
    group.add_argument("--warmup-time", default=None, metavar="DURATION",
                       help=f"cache warm-up of a ready pod (default: config or {_show('warmup_time')})")
    group.add_argument("--min-replicas", type=int, default=None, metavar="N",
                       help=f"fewest replicas (default: config or {_show('min_replicas')})")
    group.add_argument("--max-replicas", type=int, default=None, metavar="N",
                       help=f"most replicas (default: config or {_show('max_replicas')})")
    group.add_argument("--headroom", default=None, metavar="FRACTION",
                       help="margin over the forecast mean, e.g. 10%% or 0.1 (default: config or "
                            f"{_show('headroom')}); the need is the larger of the peak upper band and "
                            "mean x (1 + headroom)")
    group.add_argument("--availability-target", default=None, metavar="SHARE",
                       help="instead of the band and --headroom: the share of intervals whose capacity must "
                            "cover the demand, e.g. 99.5%% or 0.995 (default: config or off); each interval "
                            "is sized at the forecast's backtest error quantile at its lead time")
    if price:
        group.add_argument("--price-per-replica-hour", type=float, default=None, metavar="PRICE",
                           help="cost of one replica for one hour, in --currency (default: none; costs "
                                "are shown as n/a)")
        group.add_argument("--currency", default=None, metavar="CODE",
                           help="currency of --price-per-replica-hour, shown with every cost, e.g. USD, "
                                "EUR, IDR (default: none)")


def controller_config(args: argparse.Namespace, *, ignore: tuple[str, ...] = ()) -> ControllerConfig:
    """The ControllerConfig from ``--config`` (optional) overridden by the flags; errors name the flag.

    ``ignore`` lists flags (dest names) to leave out, e.g. to build a baseline beside a scenario. When
    ``args`` has ``no_warmup``, warm-ups are planned unless it is set (the config's ``enabled`` is for
    ``run``, which needs a URL to call).
    """
    def flag(name: str) -> Any:
        return None if name in ignore else getattr(args, name, None)

    base = load_controller_config(args.config) if getattr(args, "config", None) else None
    cap = flag("capacity_per_replica")
    if cap is None and base is None:
        raise UserError("--capacity-per-replica is required (requests per second one replica serves), "
                        "or give --config with controller.capacityPerReplica")
    if cap is not None and not (math.isfinite(cap) and cap > 0):
        raise UserError(f"--capacity-per-replica: must be a positive rate in req/s, got {cap:g}")
    changes: dict[str, Any] = {}
    if cap is not None:
        changes["capacity_per_replica"] = float(cap)
    for name in ("startup", "warmup_time"):
        value = flag(name)
        if value is not None:
            td = parse_duration(value, what=f"--{name.replace('_', '-')}", allow_zero=True)
            changes[name] = Duration(td.total_seconds())
    if flag("headroom") is not None:
        changes["headroom"] = parse_fraction(flag("headroom"), what="--headroom")
        changes["availability_target"] = None  # the flag asks for headroom sizing
    if flag("availability_target") is not None:
        if "headroom" in changes:
            raise UserError("--availability-target: give either it or --headroom, not both (the target sizes "
                            "the forecast need from its error quantiles instead of a margin)")
        changes["availability_target"] = parse_target(flag("availability_target"))
    for name in ("min_replicas", "max_replicas"):
        value = flag(name)
        if value is not None:
            least = 1 if name == "max_replicas" else 0
            if value < least:
                raise UserError(f"--{name.replace('_', '-')}: must be >= {least}, got {value}")
            changes[name] = value
    lo = changes.get("min_replicas", base.min_replicas if base else _default("min_replicas"))
    hi = changes.get("max_replicas", base.max_replicas if base else _default("max_replicas"))
    if hi < lo:
        raise UserError(f"--max-replicas ({hi}) must be >= --min-replicas ({lo})")
    if hasattr(args, "no_warmup"):
        warm = base.warmup if base else ControllerConfig(capacity_per_replica=1.0).warmup
        changes["warmup"] = warm.evolve(enabled=not args.no_warmup)
    try:
        return base.evolve(**changes) if base else ControllerConfig(**changes)
    except UserError as exc:
        text = str(exc)
        for name in changes:  # a flag's value out of the config field's range: name the flag
            key = f"controller.{ControllerConfig.model_fields[name].alias}: "
            if text.startswith(key):
                raise UserError(f"--{name.replace('_', '-')}: {text.removeprefix(key)}") from None
        raise UserError(f"{text} (from the command-line flags)") from None


def price_from_args(args: argparse.Namespace) -> float | None:
    """``--price-per-replica-hour`` checked (finite, zero or positive); None when not given."""
    price = getattr(args, "price_per_replica_hour", None)
    if price is None:
        return None
    if not (math.isfinite(price) and price >= 0):
        raise UserError(f"--price-per-replica-hour: must be zero or positive, got {price:g}")
    return float(price)


def cost_label(args: argparse.Namespace, what: str = "cost") -> str:
    """``'cost (USD)'`` with ``--currency``, ``'cost'`` without."""
    currency = (getattr(args, "currency", None) or "").strip()
    return f"{what} ({currency})" if currency else what


def check_initial_replicas(args: argparse.Namespace) -> None:
    value = getattr(args, "initial_replicas", None)
    if value is not None and value < 0:
        raise UserError(f"--initial-replicas: must be >= 0, got {value}")
