"""The event calendar: days when recharge traffic does not follow the usual daily/weekly shape.

Recharge volume jumps at month start, on paydays, around public holidays and during operator promotions.
Daily and weekly seasonality cannot learn these, so models receive them as events from :class:`EventCalendar`.
Sources:

- public holidays from the ``holidays`` package (country and optional subdivision),
- Chinese official holidays from ``chinese-calendar`` when asked for (optional extra ``chinese``; it knows the
  State Council's yearly adjusted schedule, which rule-based calendars cannot),
- the first day of each month, configurable paydays (31 means the last day of every month),
- declared promotions from a YAML file: a window and an expected uplift.

Every event is a window in the calendar's timezone: ``start`` inclusive, ``end`` exclusive, both tz-aware.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import re
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Self

import pandas as pd
from pydantic import Field, model_validator

from forecaster.configbase import ConfigModel, Explain, FieldError, check, read_yaml
from forecaster.errors import ConfigError

EVENT_COLUMNS = ["name", "kind", "start", "end", "uplift"]
EVENT_KINDS = ("holiday", "month_start", "payday", "promotion")
_PROMO_FIELDS = ("name", "start", "end", "uplift")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PERCENT = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*%$")


class CalendarConfig(ConfigModel):
    """Which events the forecast should know about."""

    config_path = "forecast.calendar"

    country: str | None = Field(None, description=(
        "Public holidays of this country: ISO 3166 code known to the holidays package (ID, IN, US, ...)."))
    subdivision: str | None = Field(None, description=(
        "Region of the country for regional holidays (e.g. US state CA, India state MH); needs country."))
    chinese_calendar: bool = Field(False, description=(
        "Use chinese-calendar for China's official holidays (install the 'chinese' extra)."))
    month_start: bool = Field(True, description=(
        "Mark the first day of every month as an event (recharges peak when monthly bundles renew)."))
    paydays: Annotated[list[Annotated[int, Field(ge=1, le=31)]],
                       Explain("must be a day of the month 1..31 (31 = last day)")] = Field(
        default_factory=list,
        description="Days of the month that are paydays, 1..31; 31 means the last day of every month.",
        json_schema_extra={"unit": "day of month"})
    promotions_file: str | None = Field(None, description=(
        "YAML file of declared promotions: list of {name, start, end, uplift}; uplift 1.5 or '+50%'."))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check(self.subdivision is None or bool(self.country), "subdivision", "needs calendar.country")
        check(not self.chinese_calendar or (self.country or "CN").upper() == "CN", "chineseCalendar",
              f"applies to China only (country CN or unset), but country is {self.country!r}")
        if self.country:
            try:
                _country_holidays(self.country, self.subdivision, [], what="calendar")
            except ConfigError as exc:  # "calendar.country: ..." -> relative to this section
                key, _, message = str(exc).partition(": ")
                raise FieldError(key.removeprefix("calendar."), message) from None
        return self


def _country_holidays(country: str, subdivision: str | None, years: list[int], *, what: str) -> Any:
    import holidays

    try:
        return holidays.country_holidays(country, subdiv=subdivision, years=years)
    except NotImplementedError:
        if country.upper() not in holidays.list_supported_countries():
            raise ConfigError(
                f"{what}.country: {country!r} is not a country code the holidays package knows "
                "(use ISO 3166 alpha-2, e.g. ID, IN, US)"
            ) from None
        subs = holidays.list_supported_countries()[country.upper()]
        raise ConfigError(
            f"{what}.subdivision: {subdivision!r} is not a subdivision of {country.upper()} "
            f"(known: {', '.join(subs[:20])}{' ...' if len(subs) > 20 else ''})"
        ) from None


def _import_chinese_calendar() -> ModuleType:
    try:
        return importlib.import_module("chinese_calendar")
    except ImportError:
        raise ConfigError(
            "calendar.chineseCalendar needs the chinese-calendar package: "
            "pip install 'recharge-autoscaler[chinese]'"
        ) from None


class EventCalendar:
    """Events between two instants, in one timezone. Cheap to build; holiday tables are computed per query."""

    def __init__(self, config: CalendarConfig, timezone: str) -> None:
        self.config = config
        self.timezone = timezone
        self._promotions: pd.DataFrame | None = None
        self._chinese = _import_chinese_calendar() if config.chinese_calendar else None
        if config.promotions_file:
            self._promotions = load_promotions(config.promotions_file, timezone=timezone)

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Events overlapping ``[start, end)``: name, kind, start, end (tz-aware), uplift (NaN = unknown)."""
        start = _aware(start, self.timezone)
        end = _aware(end, self.timezone)
        if end <= start:
            return _empty()
        first = start.tz_convert(self.timezone).date() - dt.timedelta(days=1)
        last = end.tz_convert(self.timezone).date()
        rows: list[tuple[str, str, dt.date]] = []
        rows.extend(self._holidays(first, last))
        months = pd.date_range(pd.Timestamp(first).replace(day=1), pd.Timestamp(last), freq="MS")
        if self.config.month_start:
            rows.extend(("Month start", "month_start", m.date()) for m in months)
        for day in sorted(set(self.config.paydays)):
            for m in months:
                d = min(day, m.days_in_month)
                label = "Payday (last day)" if day == 31 else f"Payday ({day})"
                rows.append((label, "payday", m.replace(day=d).date()))
        frame = self._day_events(rows)
        if self._promotions is not None and len(self._promotions):
            parts = [frame, self._promotions] if len(frame) else [self._promotions]
            frame = pd.concat(parts, ignore_index=True)
        if not len(frame):
            return _empty()
        keep = (frame["end"] > start) & (frame["start"] < end)
        out = frame[keep].sort_values(["start", "kind", "name"], kind="stable").reset_index(drop=True)
        return out[EVENT_COLUMNS]

    def _holidays(self, first: dt.date, last: dt.date) -> list[tuple[str, str, dt.date]]:
        years = list(range(first.year, last.year + 1))
        rows: list[tuple[str, str, dt.date]] = []
        rule_years = years
        if self._chinese is not None:
            rule_years = []
            for year in years:
                try:
                    days = self._chinese.get_holidays(dt.date(year, 1, 1), dt.date(year, 12, 31),
                                                      include_weekends=False)
                except NotImplementedError:  # year outside the package's published schedule: rule-based CN
                    rule_years.append(year)
                    continue
                for d in days:
                    _, name = self._chinese.get_holiday_detail(d)
                    rows.append((str(name or "Holiday"), "holiday", d))
        country = self.config.country or ("CN" if self._chinese is not None else None)
        if country and rule_years:
            table = _country_holidays(country, self.config.subdivision, rule_years, what="calendar")
            rows.extend((str(name), "holiday", d) for d, name in sorted(table.items()))
        return [r for r in rows if first <= r[2] <= last]

    def _day_events(self, rows: list[tuple[str, str, dt.date]]) -> pd.DataFrame:
        if not rows:
            return _empty()
        days = pd.DatetimeIndex([pd.Timestamp(d) for _, _, d in rows])
        starts = days.tz_localize(self.timezone, ambiguous="NaT", nonexistent="shift_forward")
        ends = (days + pd.Timedelta(days=1)).tz_localize(self.timezone, ambiguous="NaT",
                                                          nonexistent="shift_forward")
        return pd.DataFrame({
            "name": [n for n, _, _ in rows],
            "kind": [k for _, k, _ in rows],
            "start": starts.as_unit("ns"),
            "end": ends.as_unit("ns"),
            "uplift": float("nan"),
        })


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "name": pd.Series(dtype=object), "kind": pd.Series(dtype=object),
        "start": pd.Series(dtype="datetime64[ns, UTC]"), "end": pd.Series(dtype="datetime64[ns, UTC]"),
        "uplift": pd.Series(dtype="float64"),
    })


def _aware(ts: pd.Timestamp | str, timezone: str) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize(timezone) if t.tzinfo is None else t


def parse_uplift(value: Any, where: str) -> float:
    """A multiplier (``1.5``) or a percentage string (``'+50%'``, ``'-10%'``) as a positive multiplier."""
    if value is None:
        return float("nan")
    if isinstance(value, bool):
        raise ConfigError(
            f"{where}: expected a multiplier like 1.5 or a percentage like '+50%', got {value!r}"
        )
    if isinstance(value, int | float):
        out = float(value)
    else:
        m = _PERCENT.match(str(value).strip())
        if m:
            out = 1.0 + float(m.group(1)) / 100.0
        else:
            try:
                out = float(str(value).strip())
            except ValueError:
                raise ConfigError(
                    f"{where}: expected a multiplier like 1.5 or a percentage like '+50%', got {value!r}"
                ) from None
    if not math.isfinite(out) or out <= 0:
        raise ConfigError(f"{where}: uplift must be a positive multiplier (1.5 = +50%), got {value!r}")
    return out


def _promo_time(value: Any, where: str, timezone: str, *, is_end: bool) -> pd.Timestamp:
    if isinstance(value, dt.datetime):
        t = pd.Timestamp(value)
    elif isinstance(value, dt.date):
        t = pd.Timestamp(value) + (pd.Timedelta(days=1) if is_end else pd.Timedelta(0))
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            t = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{where}: cannot parse {value!r}; use an ISO date or datetime like 2026-12-01 or "
                "2026-12-01T18:00:00+07:00"
            ) from None
        if _DATE_ONLY.match(text) and is_end:
            t = t + pd.Timedelta(days=1)  # a date-only end means "through the end of that day"
    else:
        raise ConfigError(f"{where}: required; use an ISO date or datetime like 2026-12-01T18:00")
    if pd.isna(t):
        raise ConfigError(f"{where}: cannot parse {value!r}")
    if t.tzinfo is None:
        t = t.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
        if pd.isna(t):
            raise ConfigError(f"{where}: {value!r} is ambiguous in {timezone} (DST change); add a UTC offset")
    return t.tz_convert(timezone).as_unit("ns")


def load_promotions(path: str | Path, *, timezone: str = "UTC") -> pd.DataFrame:
    """Read a promotions YAML file into event rows (kind ``promotion``).

    The file is a list, or a mapping with key ``promotions`` holding the list, of entries
    ``{name, start, end, uplift}``. A date-only ``end`` includes that whole day; zone-less times are in
    ``timezone``. Errors name the file, the entry index and the field.
    """
    p = Path(path)
    data = read_yaml(p, what="promotions file")
    if data is None:
        data = []
    if isinstance(data, dict):
        extra = sorted(set(map(str, data)) - {"promotions"})
        if extra:
            raise ConfigError(
                f"{p}: unknown top-level key {extra[0]!r}; expected 'promotions' holding a list"
            )
        data = data.get("promotions") or []
    if not isinstance(data, list):
        raise ConfigError(f"{p}: expected a list of promotions (or 'promotions:' with a list)")
    rows = []
    for i, entry in enumerate(data):
        where = f"{p}: promotions[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with name, start, end, uplift")
        label = f"{where} ({entry['name']!r})" if isinstance(entry.get("name"), str) else where
        unknown = sorted(set(map(str, entry)) - set(_PROMO_FIELDS))
        if unknown:
            raise ConfigError(f"{label}.{unknown[0]}: unknown field; allowed: {', '.join(_PROMO_FIELDS)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name: required; give the promotion a name")
        start = _promo_time(entry.get("start"), f"{label}.start", timezone, is_end=False)
        end = _promo_time(entry.get("end"), f"{label}.end", timezone, is_end=True)
        if end <= start:
            raise ConfigError(f"{label}.end: must be after start ({start.isoformat()})")
        uplift = parse_uplift(entry.get("uplift"), f"{label}.uplift")
        rows.append({"name": name.strip(), "kind": "promotion", "start": start, "end": end, "uplift": uplift})
    if not rows:
        return _empty()
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    frame["start"] = pd.DatetimeIndex(frame["start"]).as_unit("ns")
    frame["end"] = pd.DatetimeIndex(frame["end"]).as_unit("ns")
    return frame
