"""Durations are parsed the same way for every flag and config field."""

from __future__ import annotations

import pandas as pd
import pytest

from forecaster.durations import format_duration, parse_duration
from forecaster.errors import UserError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("24h", 86400),
        ("7d", 604800),
        ("90s", 90),
        ("1h30m", 5400),
        ("1w", 604800),
        ("120", 120),
        (45, 45),
        (" 2H ", 7200),
        ("0.5h", 1800),
    ],
    ids=[
        "minutes",
        "hours",
        "days",
        "seconds",
        "compound",
        "week",
        "bare-number",
        "int",
        "case-space",
        "fraction",
    ],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == pd.Timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "10x", "h", "-1h", "0h", "1h-", "5 m", True],
    ids=["empty", "word", "bad-unit", "no-number", "negative", "zero", "trailing", "inner-space", "bool"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--horizon"):
        parse_duration(text, what="--horizon")


def test_zero_allowed_when_asked() -> None:
    assert parse_duration("0s", allow_zero=True) == pd.Timedelta(0)


@pytest.mark.parametrize("text", ["30m", "24h", "7d", "1h30m", "90s", "1d2h3m4s"])
def test_format_round_trips(text: str) -> None:
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_flags_need_a_unit_config_fields_do_not() -> None:
    """Issue 10, item 12: `--startup 2` was read as 2 seconds; on the command line a unit is required."""
    with pytest.raises(UserError, match=r"--startup: '2' has no unit; write it with one, e.g. 2s, 2m or 2h"):
        parse_duration("2", what="--startup")
    assert parse_duration("0", what="--simulate-days", allow_zero=True) == pd.Timedelta(0)  # 0 is 0
    assert parse_duration("2", what="controller.startup") == pd.Timedelta(seconds=2)  # config: seconds


def test_short_durations_keep_their_decimals() -> None:
    assert format_duration(pd.Timedelta(seconds=0.2)) == "0.2s"
    assert format_duration(pd.Timedelta(seconds=2.5)) == "2.5s"
    assert format_duration(pd.Timedelta(seconds=90)) == "1m30s"
