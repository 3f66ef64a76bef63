"""Every kind of unusable history file gives ONE line naming file/column/row, directly and through the CLI.

Through ``recharge-autoscaler forecast`` the same mistakes must exit with code 2, print one line on stderr
and never a traceback; a horizon that is not positive is rejected the same way.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.cli import main
from controller.cli.args import load_clean_history
from forecaster.errors import InputError

HOURS = [f"2026-01-01 {h:02d}:00:00" for h in range(24)]


def rows(values: list[str], stamps: list[str] = HOURS) -> str:
    return "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(stamps, values, strict=False))


GOOD = rows([str(10 + i) for i in range(24)])

# (id, file name, content or None for "do not create", extra flags, expected message regex after the path)
CASES: list[tuple[str, str, str | bytes | None, list[str], str]] = [
    ("missing-file", "nope.csv", None, [], r": file not found"),
    ("empty-file", "h.csv", "", [], r": file is empty"),
    ("header-only", "h.csv", "timestamp,value\n", [], r": has a header but no data rows"),
    ("no-time-column", "h.csv", GOOD.replace("timestamp", "when", 1), [],
     r": no time column \(looked for ds, timestamp, time, date_time\); columns found: when, value; "
     r"name it with --time-column"),
    ("no-value-column", "h.csv", GOOD.replace("value", "count", 1), [],
     r": no value column .*columns found: timestamp, count; name it with --value-column"),
    ("named-column-absent", "h.csv", GOOD, ["--value-column", "hits"],
     r": no column 'hits' \(--value-column\); columns found: timestamp, value"),
    ("unparseable-timestamp", "h.csv", GOOD.replace(HOURS[1], "yesterday"), [],
     r": column 'timestamp' row 2: cannot parse timestamp 'yesterday'"),
    ("mixed-offsets", "h.csv", GOOD.replace(HOURS[4], HOURS[4] + "+07:00"), [],
     r": column 'timestamp' mixes stamps with and without a UTC offset \(row 5"),
    ("non-numeric-value", "h.csv", rows(["1", "2", "abc"] + ["3"] * 21), [],
     r": column 'value' row 3: 'abc' is not a finite number"),
    ("negative-value", "h.csv", rows(["1", "-5"] + ["3"] * 22), [],
     r": column 'value' row 2: negative value -5"),
    ("meaningless-scale", "h.csv", rows(["5", "1e300"] + ["3"] * 22), [],
     r": column 'value' row 2: 1e\+300 is too large .*at most 1e\+12"),
    ("all-nan", "h.csv", rows([""] * 12 + ["NaN"] * 12), [], r": column 'value' has no values"),
    ("single-row", "h.csv", rows(["5"]), [], r": has a single data row"),
    ("irregular-stamps", "h.csv",
     rows(["1"] * 5, ["2026-01-01 00:00", "2026-01-01 00:30", "2026-01-01 01:00", "2026-01-01 01:17",
                      "2026-01-01 01:30"]), [],
     r": irregular timestamps: row 4 \(2026-01-01T01:17:00\+00:00\) is 17m after the previous stamp"),
    ("duplicate-different-values", "h.csv",
     rows(["1", "2", "7", "3"], [HOURS[0], HOURS[1], HOURS[1], HOURS[2]]), [],
     r": timestamp 2026-01-01T01:00:00\+00:00 appears more than once with different values "
     r"\(row 2: 2, row 3: 7\)"),
    ("corrupt-parquet", "h.parquet", b"PAR1 this is not parquet", [], r": not a readable Parquet file"),
]
IDS = [c[0] for c in CASES]


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[str, str | bytes | None], Path]:
    def _make(name: str, content: str | bytes | None) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content, encoding="utf-8")
        return path

    return _make


def _args(path: Path, extra: list[str]) -> argparse.Namespace:
    ns = argparse.Namespace(history=str(path), time_column=None, value_column=None, timezone="UTC")
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        setattr(ns, flag.lstrip("-").replace("-", "_"), value)
    return ns


@pytest.mark.parametrize(("case", "name", "content", "extra", "message"), CASES, ids=IDS)
def test_bad_history_is_one_line_naming_the_file(make_file, case, name, content, extra, message) -> None:
    path = make_file(name, content)
    with pytest.raises(InputError) as info:
        load_clean_history(_args(path, extra))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(path))
    assert re.search(message, text), text


def test_good_file_is_accepted(make_file) -> None:
    cs = load_clean_history(_args(make_file("h.csv", GOOD), []))
    assert len(cs.y) == 24


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(("case", "name", "content", "extra", "message"), CASES, ids=IDS)
def test_bad_history_through_the_cli_exits_2_with_one_line(
    make_file, tmp_path: Path, capsys: pytest.CaptureFixture[str], case, name, content, extra, message
) -> None:
    path = make_file(name, content)
    out = tmp_path / "forecast.csv"
    argv = ["forecast", "--history", str(path), "--horizon", "24h", "--output", str(out), *extra]
    code, err = _run_cli(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(path) in lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


@pytest.mark.parametrize("horizon", ["--horizon=0h", "--horizon=-1h"], ids=["zero", "negative"])
def test_horizon_not_positive_through_the_cli(
    make_file, tmp_path: Path, capsys: pytest.CaptureFixture[str], horizon: str
) -> None:
    path = make_file("h.csv", GOOD)
    out = tmp_path / "forecast.csv"
    code, err = _run_cli(["forecast", "--history", str(path), horizon, "--output", str(out)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "horizon" in lines[0].lower()
    assert not out.exists()


@pytest.mark.parametrize("horizon", [["--horizon", "0h"], ["--horizon", "-1h"]], ids=["zero", "negative"])
def test_horizon_not_positive_as_separate_argument(
    make_file, tmp_path: Path, capsys: pytest.CaptureFixture[str], horizon: list[str]
) -> None:
    # "-1h" as its own argument looks like an option to argparse; either way the exit code is 2, no traceback.
    path = make_file("h.csv", GOOD)
    out = tmp_path / "forecast.csv"
    try:
        code = main(["forecast", "--history", str(path), *horizon, "--output", str(out)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and "horizon" in err.strip().splitlines()[-1]
    assert not out.exists()



def test_the_error_line_never_shows_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10, item 6: the CLI's one error line is redacted, whatever the message quotes."""
    from controller.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(
        "controller:\n  capacityPerReplica: 10\n  target: {name: api}\n  load: {kind: file, path: x.csv}\n"
        "  warmup: {enabled: true, url: 'ftp://svc:s3cretpw@warm.example/x'}\n"
    )
    assert main(["run", "--config", str(config), "--once"]) == 2
    err = capsys.readouterr().err
    assert "controller.warmup.url" in err and "s3cretpw" not in err, err
