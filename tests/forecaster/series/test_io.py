"""Reading history files (columns, formats, timezones, DST) and writing result frames."""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import InputError, UserError
from forecaster.series.io import check_timezone, load_history, write_frame


@pytest.mark.parametrize(
    ("header", "kwargs"),
    [
        ("ds,y", {}),
        ("timestamp,value", {}),
        ("time,value", {}),
        ("date_time,y", {}),
        ("Timestamp,Value", {}),
        ("when,requests", {"time_column": "when", "value_column": "requests"}),
        ("timestamp,value,requests", {"value_column": "requests"}),
    ],
    ids=["ds-y", "timestamp-value", "time-value", "date_time-y", "case-insensitive", "override-both",
         "override-value-with-candidate-present"],
)
def test_columns_are_detected_or_named(write_csv, header: str, kwargs: dict[str, str]) -> None:
    extra = ",7" if header.count(",") == 2 else ""
    path = write_csv(header=header, rows=[f"2026-01-01 00:00:00,1{extra}", f"2026-01-01 01:00:00,2{extra}"])
    s = load_history(path, **kwargs)
    assert s.name == "y"
    assert s.index.name == "ds"
    assert s.dtype == np.float64
    expected = [7.0, 7.0] if "requests" in kwargs.get("value_column", "") and extra else [1.0, 2.0]
    assert s.tolist() == expected
    assert str(s.index.tz) == "UTC"


MIDNIGHT_UTC = ["2026-01-01T00:00", "2026-01-01T01:00"]


@pytest.mark.parametrize(
    ("stamps", "timezone", "expected_utc"),
    [
        (["2026-01-01 00:00:00", "2026-01-01 01:00:00"], "UTC", MIDNIGHT_UTC),
        (["2026-01-01 07:00:00", "2026-01-01 08:00:00"], "Asia/Jakarta", MIDNIGHT_UTC),
        (["2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"], "Asia/Jakarta", MIDNIGHT_UTC),
        (["2026-01-01T02:00:00+02:00", "2026-01-01T03:00:00+02:00"], "UTC", MIDNIGHT_UTC),
        (["1767225600", "1767229200"], "Europe/Berlin", MIDNIGHT_UTC),
        (["1767225600000", "1767229200000"], "UTC", MIDNIGHT_UTC),
        (["01/01/2026 00:00", "01/01/2026 01:00"], "UTC", MIDNIGHT_UTC),
        (["20260101", "20260102"], "UTC", ["2026-01-01T00:00", "2026-01-02T00:00"]),
    ],
    ids=["naive-utc", "naive-local", "zulu-converted", "offset-converted", "epoch-seconds", "epoch-millis",
         "us-format", "compact-date"],
)
def test_timestamps_are_read_in_the_right_zone(write_csv, stamps, timezone, expected_utc) -> None:
    path = write_csv(rows=[f"{t},5" for t in stamps])
    s = load_history(path, timezone=timezone)
    assert str(s.index.tz) == timezone
    got = [t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M") for t in s.index]
    assert got == expected_utc


def test_order_is_kept_and_empty_values_are_nan(write_csv) -> None:
    path = write_csv(rows=["2026-01-01 02:00,3", "2026-01-01 00:00,", "2026-01-01 01:00,NaN"])
    s = load_history(path)
    assert [t.hour for t in s.index] == [2, 0, 1]
    assert s.iloc[0] == 3.0
    assert s.iloc[1:].isna().all()


def test_utf8_bom_and_padded_header_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftimestamp, value\n2026-01-01 00:00, 4\n2026-01-01 01:00, 5\n".encode())
    assert load_history(path).tolist() == [4.0, 5.0]


def test_dst_spring_forward_keeps_local_hours(write_csv) -> None:
    # UTC stamps across the Berlin spring-forward (2026-03-29 01:00 UTC): local hours skip 02:00.
    utc = pd.date_range("2026-03-28 22:00", periods=6, freq="h", tz="UTC")
    path = write_csv(rows=[f"{t.isoformat()},1" for t in utc])
    s = load_history(path, timezone="Europe/Berlin")
    assert [t.hour for t in s.index] == [23, 0, 1, 3, 4, 5]
    assert (s.index == utc).all()


def test_dst_fall_back_repeated_wall_clock_hour_is_two_instants(write_csv) -> None:
    rows = ["2026-10-25 01:00,1", "2026-10-25 02:00,2", "2026-10-25 02:00,3", "2026-10-25 03:00,4"]
    s = load_history(write_csv(rows=rows), timezone="Europe/Berlin")
    utc = [t.tz_convert("UTC").hour for t in s.index]
    assert utc == [23, 0, 1, 2]
    assert s.index.is_unique


def test_dst_fall_back_hour_shown_once_leaves_a_gap_not_an_error(write_csv) -> None:
    rows = ["2026-10-25 01:00,1", "2026-10-25 02:00,2", "2026-10-25 03:00,4"]
    s = load_history(write_csv(rows=rows), timezone="Europe/Berlin")
    gaps = np.diff(s.index.asi8) // 3_600_000_000_000
    assert gaps.tolist() == [1, 2]


def test_nonexistent_local_time_is_an_input_error_naming_the_row(write_csv) -> None:
    rows = ["2026-03-29 01:00,1", "2026-03-29 02:30,2", "2026-03-29 03:00,3"]
    with pytest.raises(InputError, match=r"row 2: local time 2026-03-29 02:30:00 does not exist"):
        load_history(write_csv(rows=rows), timezone="Europe/Berlin")


@pytest.mark.parametrize("kind", ["naive", "aware", "text"], ids=["naive-datetime", "aware-datetime", "text"])
def test_parquet_is_read(tmp_path: Path, kind: str) -> None:
    idx = pd.date_range("2026-01-01", periods=3, freq="h")
    cols = {"naive": idx, "aware": idx.tz_localize("UTC"), "text": idx.strftime("%Y-%m-%d %H:%M")}
    col: object = cols[kind]
    path = tmp_path / "h.parquet"
    pd.DataFrame({"ds": col, "y": [1, 2, 3]}).to_parquet(path)
    s = load_history(path, timezone="Asia/Kolkata")
    assert s.tolist() == [1.0, 2.0, 3.0]
    local = [t.strftime("%H:%M") for t in s.index]
    assert local == (["05:30", "06:30", "07:30"] if kind == "aware" else ["00:00", "01:00", "02:00"])


def test_parquet_with_the_time_as_index(tmp_path: Path) -> None:
    path = tmp_path / "h.parquet"
    idx = pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC", name="ds")
    pd.DataFrame({"y": [1.0, 2.0]}, index=idx).to_parquet(path)
    assert load_history(path).index.equals(idx.as_unit("ns"))


def test_gzipped_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "h.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("timestamp,value\n2026-01-01 00:00,1\n2026-01-01 00:30,2\n")
    assert load_history(path).tolist() == [1.0, 2.0]


def test_bundled_sample_loads_fast(nyc_taxi_path: Path) -> None:
    start = time.perf_counter()
    s = load_history(nyc_taxi_path)
    elapsed = time.perf_counter() - start
    assert len(s) == 10320
    assert s.index[0] == pd.Timestamp("2014-07-01", tz="UTC")
    assert elapsed < 1.0


@pytest.mark.parametrize(
    ("name", "ok"), [("UTC", True), ("Asia/Jakarta", True), ("Mars/Olympus", False), ("", False)],
    ids=["utc", "jakarta", "unknown", "empty"],
)
def test_check_timezone(name: str, ok: bool) -> None:
    if ok:
        assert check_timezone(name) == name
    else:
        with pytest.raises(UserError, match="--timezone: unknown timezone"):
            check_timezone(name)


def _frame() -> pd.DataFrame:
    ds = pd.date_range("2026-03-29 00:00", periods=3, freq="h", tz="Europe/Berlin")
    return pd.DataFrame({"ds": ds, "yhat": [1.0, 2.5, 3.0]})


def test_write_frame_uses_iso_with_offset(tmp_path: Path) -> None:
    dest = tmp_path / "out.csv"
    write_frame(_frame(), str(dest))
    lines = dest.read_text().splitlines()
    assert lines[0] == "ds,yhat"
    assert lines[1] == "2026-03-29T00:00:00+01:00,1.0"
    assert lines[3] == "2026-03-29T03:00:00+02:00,3.0"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temp file left behind


def test_write_frame_index_and_naive_stamps(tmp_path: Path) -> None:
    frame = pd.DataFrame({"y": [1]}, index=pd.DatetimeIndex([pd.Timestamp("2026-01-01 05:00")], name="ds"))
    dest = tmp_path / "out.csv"
    write_frame(frame, str(dest))
    assert dest.read_text().splitlines() == ["ds,y", "2026-01-01T05:00:00+00:00,1"]


def test_write_frame_dash_is_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stdout", buf)
    write_frame(_frame(), "-")
    assert buf.getvalue().splitlines()[2] == "2026-03-29T01:00:00+01:00,2.5"


def test_write_frame_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        write_frame(_frame(), str(tmp_path / "nope" / "out.csv"))
