"""Long history files: the id column is found (or named), every series is parsed like a one-series file, and a
bad series' error names the series and the file's data row without stopping the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import InputError
from forecaster.series.longform import find_id_column, load_long_history


def one(seed: int, days: int = 21) -> pd.DataFrame:
    idx = pd.date_range("2026-02-01", periods=days * 24, freq="h")
    y = 300 + 200 * np.sin(2 * np.pi * (idx.hour - 6) / 24) ** 2
    y = y * np.random.default_rng(seed).lognormal(0, 0.05, len(idx))
    return pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": y.round(2)})


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bad = one(9, days=1).iloc[:4].copy()
    bad.loc[bad.index[2], "value"] = -5.0  # file data row 21*24*2 + 3
    parts = [one(1).assign(series="north"), one(2).assign(series="south"), bad.assign(series="broken")]
    parts.append(one(3).assign(series="east"))
    path = tmp_path_factory.mktemp("long") / "fleet.csv"
    pd.concat(parts)[["series", "timestamp", "value"]].to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("columns", "wanted", "expected"),
    [
        (["ds", "y", "unique_id"], None, "unique_id"),
        (["Series", "ds", "y"], None, "Series"),
        (["id", "ds", "y", "unique_id"], None, "unique_id"),  # unique_id wins over id
        (["ds", "y"], None, None),
        (["region", "ds", "y"], "region", "region"),
    ],
    ids=["unique_id", "series-any-case", "priority", "one-series", "override"],
)
def test_id_column_detection(
    tmp_path: Path, columns: list[str], wanted: str | None, expected: str | None
) -> None:
    path = tmp_path / "h.csv"
    path.write_text(",".join(columns) + "\n")
    assert find_id_column(path, wanted) == expected


def test_unknown_id_column_names_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("ds,y\n2026-01-01,1\n")
    with pytest.raises(InputError, match=r"no column 'region' \(--id-column\); columns found: ds, y"):
        find_id_column(path, "region")


def test_bad_series_error_names_series_and_file_row(long_csv: Path) -> None:
    data = load_long_history(long_csv, "series")
    assert [sid for sid, _ in data.series] == ["north", "south", "east"]
    assert data.ids == ["north", "south", "broken", "east"]
    ((sid, message),) = data.errors
    assert sid == "broken"
    assert f"row {21 * 24 * 2 + 3}" in message and "'broken'" in message and "negative value -5" in message


def test_dst_ambiguous_hour_is_resolved_per_series(tmp_path: Path) -> None:
    # Every series repeats 01:00 on the fall-back night: the first is EDT, the repeat EST, in each series.
    stamps = ["2025-11-02 00:00", "2025-11-02 01:00", "2025-11-02 01:00", "2025-11-02 02:00"]
    frame = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 4, "ds": stamps * 2, "y": range(8)})
    frame.to_csv(tmp_path / "h.csv", index=False)
    data = load_long_history(tmp_path / "h.csv", "id", timezone="America/New_York")
    for _, s in data.series:
        assert s.index.is_unique and s.index.is_monotonic_increasing


def test_counts_are_divided_by_each_series_interval(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "a", "b", "b"],
            "ds": ["2026-01-01 00:00", "2026-01-01 01:00"] * 2,
            "y": [3600, 7200, 60, 0],
        }
    )
    frame.to_csv(tmp_path / "h.csv", index=False)
    data = load_long_history(tmp_path / "h.csv", "id", counts=True)
    assert [s.tolist() for _, s in data.series] == [[1.0, 2.0], [60 / 3600, 0.0]]
