"""``forecast`` and ``backtest`` on long history files (many series): the output with the id column and the
failed series, equality with the one-series command, and clear exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.cli import main

CONTRACT = ["ds", "yhat", "yhat_lower", "yhat_upper", "peak_upper"]


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


def test_forecast_long_file_writes_id_rows_and_failed_series(
    long_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fc.csv"
    code = main(["forecast", "--history", str(long_csv), "--workers", "1", "--folds", "3", "-o", str(out)])
    assert code == 1  # one series failed, the others are written
    f = pd.read_csv(out, keep_default_na=False)
    assert list(f.columns) == ["series", *CONTRACT, "error"]
    assert list(dict.fromkeys(f["series"])) == ["north", "south", "broken", "east"]
    assert f.groupby("series").size().to_dict() == {"north": 24, "south": 24, "broken": 1, "east": 24}
    broken = f[f["series"] == "broken"].iloc[0]
    assert broken["yhat"] == "" and "negative value" in broken["error"]
    assert (f[f["series"] != "broken"]["error"] == "").all()
    err = capsys.readouterr().err
    assert "series: 3 ok, 1 failed" in err and "error: " in err and "'broken'" in err


def test_long_forecast_equals_the_one_series_forecast(long_csv: Path, tmp_path: Path) -> None:
    single = tmp_path / "north.csv"
    one(1).to_csv(single, index=False)
    assert (
        main(["forecast", "--history", str(single), "--folds", "3", "-q", "-o", str(tmp_path / "a.csv")]) == 0
    )
    main(["forecast", "--history", str(long_csv), "--folds", "3", "-q", "-o", str(tmp_path / "b.csv")])
    a = pd.read_csv(tmp_path / "a.csv")
    b = pd.read_csv(tmp_path / "b.csv")
    b = b[b["series"] == "north"].reset_index(drop=True)
    pd.testing.assert_frame_equal(b[CONTRACT], a[CONTRACT])


def test_backtest_long_json_reports_each_series(long_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--history", str(long_csv), "--folds", "3", "--workers", "2", "--json"])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert set(report["series"]) == {"north", "south", "east"}
    assert set(report["failed"]) == {"broken"}
    north = report["series"]["north"]
    assert north["chosen_scores"]["folds"] == 3 and "snaive" in north["models"]


@pytest.mark.parametrize(
    "flags",
    [["forecast", "-o", "-"], ["forecast", "-q", "-o", "-"], ["backtest"]],
    ids=["forecast", "quiet", "backtest"],
)
def test_a_failed_series_is_named_once_on_stderr(
    long_csv: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    assert main([*flags, "--history", str(long_csv), "--folds", "3", "--workers", "1"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].count("'broken'") == 1 and "negative value" in errors[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "0"], "--workers: must be at least 1"),
        (["--id-column", "nope"], "no column 'nope' (--id-column)"),
        (["--model", "nope"], "--model: unknown model 'nope'"),
    ],
    ids=["workers", "id-column", "model"],
)
def test_bad_flags_exit_2_with_one_line(
    long_csv: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["forecast", "--history", str(long_csv), "-o", "-", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_dask_scheduler_needs_a_long_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one(1).to_csv(tmp_path / "h.csv", index=False)
    code = main(["forecast", "--history", str(tmp_path / "h.csv"), "--dask-scheduler", "tcp://127.0.0.1:9"])
    assert code == 2 and "needs a long history file" in capsys.readouterr().err


def test_one_series_long_file_runs_in_process_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one(4).assign(unique_id="only").to_csv(tmp_path / "h.csv", index=False)
    code = main(
        ["forecast", "--history", str(tmp_path / "h.csv"), "--folds", "2", "-o", str(tmp_path / "f.csv")]
    )
    assert code == 0
    assert "engine: in-process" in capsys.readouterr().err
    assert set(pd.read_csv(tmp_path / "f.csv")["unique_id"]) == {"only"}
