"""Shared history/calendar flags: parsing, defaults, and errors that name the flag."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from controller.cli.args import (
    add_calendar_arguments,
    add_history_arguments,
    calendar_from_args,
    load_clean_history,
    parse_paydays,
)
from forecaster.errors import UserError
from forecaster.series.calendar import EventCalendar


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_history_arguments(parser)
    add_calendar_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = parse(["--history", "h.csv"])
    assert (args.history, args.time_column, args.value_column, args.timezone) == ("h.csv", None, None, "UTC")
    assert (args.country, args.subdivision, args.chinese_calendar) == (None, None, False)
    assert (args.paydays, args.month_start, args.promotions) == ("", True, None)


def test_history_is_required_unless_told_otherwise() -> None:
    parser = argparse.ArgumentParser()
    add_history_arguments(parser, required=False)
    assert parser.parse_args([]).history is None
    with pytest.raises(UserError, match="--history: required"):
        load_clean_history(parser.parse_args([]))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", []), ("1,15,31", [1, 15, 31]), (" 31 , 1 ", [1, 31]), ("15,15", [15])],
    ids=["empty", "three", "spaces-sorted", "dedup"],
)
def test_parse_paydays(text: str, expected: list[int]) -> None:
    assert parse_paydays(text) == expected


@pytest.mark.parametrize(
    "text", ["0", "32", "1,x", "1,,2", "-1"], ids=["zero", "32", "word", "empty-item", "neg"]
)
def test_bad_paydays_name_the_flag(text: str) -> None:
    with pytest.raises(UserError, match=r"--paydays: .* is not a day of the month 1\.\.31"):
        parse_paydays(text)


def test_load_clean_history_uses_the_flags(write_csv) -> None:
    rows = [f"2026-03-01 {h:02d}:00,{h}" for h in range(24)]
    path = write_csv(header="when,hits", rows=rows)
    args = parse(["--history", str(path), "--time-column", "when", "--value-column", "hits",
                  "--timezone", "Asia/Jakarta"])
    cs = load_clean_history(args)
    assert cs.timezone == "Asia/Jakarta" and cs.freq == pd.Timedelta("1h")
    assert cs.y.index[0] == pd.Timestamp("2026-03-01", tz="Asia/Jakarta")
    assert "short_history" in [n.code for n in cs.notes]


def test_calendar_from_args(tmp_path: Path) -> None:
    promos = tmp_path / "p.yaml"
    promos.write_text("- {name: Promo, start: 2026-03-10, end: 2026-03-10, uplift: '+30%'}\n")
    args = parse(["--history", "x", "--timezone", "Asia/Jakarta", "--country", "id", "--paydays", "25,31",
                  "--no-month-start", "--promotions", str(promos)])
    cal = calendar_from_args(args)
    assert isinstance(cal, EventCalendar) and cal.timezone == "Asia/Jakarta"
    assert cal.config.country == "ID" and cal.config.paydays == [25, 31] and not cal.config.month_start
    tz = "Asia/Jakarta"
    ev = cal.events(pd.Timestamp("2026-03-01", tz=tz), pd.Timestamp("2026-04-01", tz=tz))
    assert {"payday", "promotion"} <= set(ev["kind"]) and "month_start" not in set(ev["kind"])
    assert ev.loc[ev["kind"] == "promotion", "uplift"].tolist() == [pytest.approx(1.3)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--country", "XX"], r"^--country: 'XX' is not a country code"),
        (["--country", "US", "--subdivision", "ZZ"], r"^--subdivision: 'ZZ' is not a subdivision of US"),
        (["--subdivision", "CA"], r"^--subdivision: needs --country"),
        (["--country", "ID", "--chinese-calendar"], r"^--chinese-calendar: applies to China only"),
        (["--paydays", "40"], r"^--paydays: '40'"),
        (["--timezone", "Mars/Base"], r"^--timezone: unknown timezone 'Mars/Base'"),
        (["--promotions", "/nonexistent/p.yaml"], r"p\.yaml: promotions file not found"),
    ],
    ids=["country", "subdivision", "subdivision-alone", "chinese-not-cn", "paydays", "timezone",
         "promotions"],
)
def test_calendar_flag_errors_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        calendar_from_args(parse(["--history", "x", *argv]))
    assert "\n" not in str(info.value)
