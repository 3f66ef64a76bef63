"""Event calendar: holidays, month start, paydays, promotions file, optional chinese-calendar."""

from __future__ import annotations

import datetime as dt
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from forecaster.configbase import parse
from forecaster.errors import ConfigError, UserError
from forecaster.series.calendar import (
    EVENT_COLUMNS,
    CalendarConfig,
    EventCalendar,
    load_promotions,
    parse_uplift,
)


def ts(text: str, tz: str = "UTC") -> pd.Timestamp:
    return pd.Timestamp(text, tz=tz)


def events(config: CalendarConfig, start: str, end: str, tz: str = "UTC") -> pd.DataFrame:
    return EventCalendar(config, tz).events(ts(start, tz), ts(end, tz))


def test_config_builds_from_camel_case_yaml_keys() -> None:
    data = {"country": "US", "subdivision": "CA", "monthStart": False, "paydays": [15, 31],
            "chineseCalendar": False, "promotionsFile": None}
    cfg = parse(CalendarConfig, data, "forecast.calendar")
    assert cfg == CalendarConfig(country="US", subdivision="CA", month_start=False, paydays=[15, 31])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"paydays": [0]}, r"calendar\.paydays\[0\]: must be a day of the month 1\.\.31"),
        ({"paydays": [15, 32]}, r"calendar\.paydays\[1\]"),
        ({"country": "XX"}, r"calendar\.country: 'XX' is not a country code"),
        ({"country": "US", "subdivision": "ZZ"}, r"calendar\.subdivision: 'ZZ' is not a subdivision of US"),
        ({"subdivision": "CA"}, r"calendar\.subdivision: needs calendar\.country"),
        ({"country": "ID", "chineseCalendar": True}, r"calendar\.chineseCalendar: applies to China only"),
        ({"paydys": [1]}, r"paydys: unknown field"),
    ],
    ids=["payday-zero", "payday-32", "country", "subdivision", "subdivision-alone", "chinese-not-cn", "typo"],
)
def test_config_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(CalendarConfig, data, "forecast.calendar")


def test_month_start_and_paydays_including_last_day() -> None:
    ev = events(CalendarConfig(paydays=[15, 30, 31]), "2026-02-01", "2026-03-02", tz="Asia/Jakarta")
    assert list(ev.columns) == EVENT_COLUMNS
    got = [(r.kind, r.start.strftime("%m-%d"), r.name) for r in ev.itertuples()]
    assert got == [
        ("month_start", "02-01", "Month start"),
        ("payday", "02-15", "Payday (15)"),
        ("payday", "02-28", "Payday (30)"),
        ("payday", "02-28", "Payday (last day)"),
        ("month_start", "03-01", "Month start"),
    ]
    first = ev.iloc[0]
    assert first.start == ts("2026-02-01", "Asia/Jakarta") and first.end == ts("2026-02-02", "Asia/Jakarta")
    assert str(ev["start"].dt.tz) == "Asia/Jakarta"
    assert ev["uplift"].isna().all()


def test_no_month_start() -> None:
    assert events(CalendarConfig(month_start=False), "2026-01-01", "2026-12-31").empty


@pytest.mark.parametrize(
    ("country", "subdivision", "day", "name"),
    [
        ("US", None, "2026-07-04", "Independence Day"),
        ("US", "CA", "2026-03-31", "Cesar Chavez Day"),
        ("ID", None, "2026-08-17", "Independence Day"),
        ("IN", None, "2026-01-26", "Republic Day"),
    ],
    ids=["us", "us-ca", "id", "in"],
)
def test_public_holidays(country: str, subdivision: str | None, day: str, name: str) -> None:
    ev = events(CalendarConfig(country=country, subdivision=subdivision, month_start=False),
                "2026-01-01", "2027-01-01")
    hit = ev[ev["start"] == ts(day)]
    assert list(hit["kind"]) == ["holiday"] and name in hit["name"].iloc[0]


def test_events_overlap_the_window_only() -> None:
    cal = EventCalendar(CalendarConfig(country="US"), "America/New_York")
    ev = cal.events(ts("2026-07-04 12:00", "America/New_York"), ts("2026-07-04 13:00", "America/New_York"))
    assert list(ev["name"]) == ["Independence Day"]
    assert cal.events(ts("2026-07-05 01:00"), ts("2026-07-04 01:00")).empty


PROMOS = """\
promotions:
  - name: Bonus Friday
    start: 2026-12-04
    end: 2026-12-04
    uplift: "+50%"
  - name: Flash sale
    start: 2026-12-10T18:00
    end: 2026-12-10T22:00+07:00
    uplift: 2
  - name: Unknown effect
    start: "2026-12-20 00:00"
    end: "2026-12-21 00:00"
"""


def test_promotions_file_and_calendar(tmp_path: Path) -> None:
    path = tmp_path / "promos.yaml"
    path.write_text(PROMOS)
    frame = load_promotions(path, timezone="Asia/Jakarta")
    assert list(frame["name"]) == ["Bonus Friday", "Flash sale", "Unknown effect"]
    assert frame["start"].iloc[0] == ts("2026-12-04", "Asia/Jakarta")
    assert frame["end"].iloc[0] == ts("2026-12-05", "Asia/Jakarta")  # a date-only end includes that day
    assert frame["end"].iloc[1] == ts("2026-12-10 15:00")
    assert frame["uplift"].iloc[:2].tolist() == [1.5, 2.0] and pd.isna(frame["uplift"].iloc[2])
    cal = EventCalendar(CalendarConfig(month_start=False, promotions_file=str(path)), "Asia/Jakarta")
    ev = cal.events(ts("2026-12-10 20:00", "Asia/Jakarta"), ts("2026-12-11", "Asia/Jakarta"))
    assert list(ev["name"]) == ["Flash sale"] and list(ev["kind"]) == ["promotion"]


def test_promotions_as_a_plain_list(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("- {name: A, start: 2026-01-01, end: 2026-01-02, uplift: 1.2}\n")
    assert load_promotions(path)["uplift"].tolist() == [1.2]


A = r"p\.yaml: promotions\[0\] \('A'\)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, r"p\.yaml: promotions file not found"),
        ("[oops", r"p\.yaml: not valid YAML at line"),
        ("name: A", r"p\.yaml: unknown top-level key 'name'"),
        ("promotions: 5", r"p\.yaml: expected a list of promotions"),
        ("- 5", r"p\.yaml: promotions\[0\]: expected a mapping"),
        ("- {start: 2026-01-01, end: 2026-01-02}", r"promotions\[0\]\.name: required"),
        ("- {name: A, end: 2026-01-02}", A + r"\.start: required"),
        ("- {name: A, start: soon, end: 2026-01-02}", A + r"\.start: cannot parse 'soon'"),
        ("- {name: A, start: 2026-01-03, end: 2026-01-02}", A + r"\.end: must be after start"),
        ("- {name: A, start: 2026-01-01, end: 2026-01-02, uplift: lots}", A + r"\.uplift: expected a multi"),
        ("- {name: A, start: 2026-01-01, end: 2026-01-02, uplift: 0}", A + r"\.uplift: uplift must be a"),
        ("- {name: A, start: 2026-01-01, end: 2026-01-02}\n- {name: B, start: 2026-01-01, end: 2026-01-02, "
         "upflit: 2}", r"promotions\[1\] \('B'\)\.upflit: unknown field"),
    ],
    ids=["missing", "yaml", "top-key", "not-list", "entry-not-mapping", "no-name", "no-start", "bad-start",
         "end-before-start", "bad-uplift", "zero-uplift", "unknown-field-second-entry"],
)
def test_promotions_errors_name_file_entry_and_field(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "p.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_promotions(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (2, 2.0), ("+50%", 1.5), ("50%", 1.5), ("-20%", 0.8), ("1.25", 1.25), (None, None)],
    ids=["float", "int", "plus-percent", "percent", "minus-percent", "numeric-text", "unset"],
)
def test_parse_uplift(value: object, expected: float | None) -> None:
    got = parse_uplift(value, "x")
    assert (pd.isna(got) if expected is None else got == pytest.approx(expected))


def _fake_chinese_calendar() -> types.ModuleType:
    mod = types.ModuleType("chinese_calendar")

    def get_holidays(start: dt.date, end: dt.date, include_weekends: bool = True) -> list[dt.date]:
        if start.year > 2026:
            raise NotImplementedError("no available data")
        return [dt.date(start.year, 10, d) for d in range(1, 9)]

    def get_holiday_detail(day: dt.date) -> tuple[bool, str]:
        return True, "National Day"

    mod.get_holidays = get_holidays  # type: ignore[attr-defined]
    mod.get_holiday_detail = get_holiday_detail  # type: ignore[attr-defined]
    return mod


def test_chinese_calendar_is_used_for_cn_and_falls_back_outside_its_years(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "chinese_calendar", _fake_chinese_calendar())
    cfg = CalendarConfig(chinese_calendar=True, month_start=False)
    ev = events(cfg, "2026-09-25", "2026-10-15", tz="Asia/Shanghai")
    assert len(ev) == 8 and set(ev["name"]) == {"National Day"}  # the official 8-day 2026 break
    assert ev["start"].iloc[-1] == ts("2026-10-08", "Asia/Shanghai")
    later = events(cfg, "2030-09-25", "2030-10-15", tz="Asia/Shanghai")  # rule-based CN holidays
    assert ts("2030-10-01", "Asia/Shanghai") in set(later["start"])


def test_chinese_calendar_not_installed_is_a_clear_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chinese_calendar", None)  # import now raises ImportError
    with pytest.raises(UserError, match=r"chineseCalendar needs the chinese-calendar package: pip install"):
        EventCalendar(CalendarConfig(chinese_calendar=True), "Asia/Shanghai")


def test_real_chinese_calendar_when_installed() -> None:
    pytest.importorskip("chinese_calendar", reason="optional 'chinese' extra is not installed")
    ev = events(CalendarConfig(country="CN", chinese_calendar=True, month_start=False),
                "2025-10-01", "2025-10-09", tz="Asia/Shanghai")
    assert len(ev) == 8 and (ev["kind"] == "holiday").all()
