"""FileSource: the history window, the file's own end, and re-reading a file that changed."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from forecaster.adapters.files import FileSource
from forecaster.errors import InputError, SourceError


def write(path: Path, start: str, n: int, value: float = 1.0) -> None:
    index = pd.date_range(start, periods=n, freq="1h")
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "value": [value] * n}).to_csv(
        path, index=False
    )


def test_window_is_inclusive_and_in_the_file_zone(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    write(path, "2026-01-01 00:00", 48)
    src = FileSource(str(path), timezone="Asia/Jakarta")
    assert src.end_of_data() == pd.Timestamp("2026-01-02 23:00", tz="Asia/Jakarta")
    got = src.history(
        pd.Timestamp("2026-01-01 10:00", tz="Asia/Jakarta"),
        pd.Timestamp("2026-01-01 03:00", tz="UTC"),
        pd.Timedelta("1h"),
    )  # 10:00 WIB
    assert len(got) == 1 and got.name == "y"
    assert src.describe() == f"file {path}"


def test_changed_file_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    write(path, "2026-01-01 00:00", 24)
    src = FileSource(str(path))
    first = src.end_of_data()
    write(path, "2026-01-01 00:00", 30, 2.0)
    os.utime(path, ns=(0, 10**18))
    assert src.end_of_data() == first + pd.Timedelta(hours=6)


@pytest.mark.parametrize(
    ("start", "end", "error", "match"),
    [
        ("2027-01-01", "2027-01-02", SourceError, r"no samples between .* \(the file covers"),
    ],
    ids=["outside"],
)
def test_empty_window_names_what_the_file_covers(
    tmp_path: Path, start: str, end: str, error: type[Exception], match: str
) -> None:
    path = tmp_path / "h.csv"
    write(path, "2026-01-01 00:00", 24)
    with pytest.raises(error, match=match):
        FileSource(str(path)).history(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), None)


def test_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv"):
        FileSource(str(tmp_path / "nope.csv")).end_of_data()
