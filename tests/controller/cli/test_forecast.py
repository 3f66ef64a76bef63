"""The ``forecast`` and ``backtest`` subcommands: output contract, stdout, --freq, --model, errors, help."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.cli import build_parser, main

CONTRACT = ["ds", "yhat", "yhat_lower", "yhat_upper", "peak_upper"]


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    idx = pd.date_range("2026-02-01", periods=21 * 24, freq="h")
    y = 300 + 200 * np.sin(2 * np.pi * (idx.hour - 6) / 24) ** 2 + 80 * (idx.day_of_week >= 5)
    y = y * np.random.default_rng(5).lognormal(0, 0.05, len(idx))
    path = tmp_path_factory.mktemp("hist") / "history.csv"
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": y.round(2)}).to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize(
    ("extra", "rows", "step"),
    [
        ([], 24, "1h"),
        (["--freq", "2h"], 12, "2h"),
        (["--model", "snaive", "--horizon", "6h"], 6, "1h"),
        (["--candidates", "snaive,seasonal_median", "--folds", "3"], 24, "1h"),
    ],
    ids=["default", "freq-2h", "model-snaive", "candidates"],
)
def test_forecast_writes_contract_rows(
    history_csv: Path, tmp_path: Path, extra: list[str], rows: int, step: str
) -> None:
    out = tmp_path / "out.csv"
    code = main(
        [
            "forecast",
            "--history",
            str(history_csv),
            "--horizon",
            "24h",
            "--output",
            str(out),
            "--quiet",
            *extra,
        ]
    )
    assert code == 0
    f = pd.read_csv(out)
    assert list(f.columns) == CONTRACT
    assert len(f) == rows
    ds = pd.to_datetime(f["ds"])
    assert ds.iloc[0] == pd.Timestamp("2026-02-22T00:00:00+00:00")  # right after the last history stamp
    assert (ds.diff().iloc[1:] == pd.Timedelta(step)).all()
    assert (f["yhat_lower"] <= f["yhat"]).all() and (f["yhat"] <= f["yhat_upper"]).all()
    assert (f["yhat_upper"] <= f["peak_upper"]).all()


def test_forecast_to_stdout_with_summary(history_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "--history", str(history_csv), "--horizon", "3h", "--output", "-"]) == 0
    cap = capsys.readouterr()
    f = pd.read_csv(io.StringIO(cap.out))
    assert list(f.columns) == CONTRACT and len(f) == 3
    assert "model:" in cap.err and "backtest" in cap.err and "coverage" in cap.err


def test_unknown_model_is_exit_2_listing_aliases(
    history_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["forecast", "--history", str(history_csv), "--model", "nope", "--output", "-"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "seasonal_median" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--horizon", "soon"), ("--freq", "-1h"), ("--folds", "-2")],
    ids=["bad-horizon", "bad-freq", "negative-folds"],
)
def test_bad_flags_exit_2(
    history_csv: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    assert main(["forecast", "--history", str(history_csv), flag + "=" + value, "--output", "-"]) == 2
    assert flag in capsys.readouterr().err


def test_backtest_json_reports_every_model_and_the_choice(
    history_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["backtest", "--history", str(history_csv), "--horizon", "24h", "--folds", "4", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["chosen"]
    assert {"wape", "mape", "bias", "coverage", "folds", "seconds"} <= set(report["models"]["snaive"])
    assert report["chosen_scores"]["folds"] == 4
    assert 0 <= report["chosen_scores"]["wape"] < 0.2


def test_backtest_table_without_tty_has_no_progress_bar(
    history_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--history", str(history_csv), "--folds", "2", "--model", "snaive"]) == 0
    cap = capsys.readouterr()
    assert "chosen: snaive" in cap.out and "WAPE" in cap.out
    assert "\r" not in cap.err


@pytest.mark.parametrize("command", ["forecast", "backtest"])
def test_help_explains_flags_with_units(command: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    choices = sub.choices
    assert isinstance(choices, dict)
    text = choices[command].format_help()
    for needle in (
        "--horizon",
        "30m, 24h, 7d",
        "--freq",
        "--model",
        "--band-level",
        "--folds",
        "--history",
        "--country",
        "--timezone",
    ):
        assert needle in text


def test_forecast_values_are_rounded_by_default(history_csv: Path, tmp_path: Path) -> None:
    """4 significant digits of the peak by default (at least one decimal); --digits 0 keeps every digit."""
    out, raw = tmp_path / "out.csv", tmp_path / "raw.csv"
    base = ["forecast", "--history", str(history_csv), "--horizon", "6h", "--model", "snaive", "--quiet"]
    assert main([*base, "--output", str(out)]) == 0
    assert main([*base, "--output", str(raw), "--digits", "0"]) == 0
    text = out.read_text().splitlines()[1:]
    decimals = {len(cell.split(".")[1]) for line in text for cell in line.split(",")[1:]}
    assert decimals <= {1}  # peaks of a few hundred: one decimal (e.g. 512.3)
    f, r = pd.read_csv(out), pd.read_csv(raw)
    assert max(len(c.split(".")[1]) for c in raw.read_text().split()[1].split(",")[1:]) > 1
    for col in CONTRACT[1:]:
        assert (f[col] - r[col]).abs().max() <= 0.05 + 1e-9


def test_backtest_lists_models_not_run_and_sorts_by_error(
    history_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--history", str(history_csv), "--folds", "3", "--horizon", "6h"]) == 0
    lines = capsys.readouterr().out.splitlines()
    run = [line for line in lines[1:] if "%" in line and not line.startswith("chosen")]
    wapes = [float(line.split()[1].rstrip("%")) for line in run]
    assert wapes == sorted(wapes) and len(run) == 6  # the auto candidates, best first
    skipped = {line.split()[0]: line for line in lines if "not run:" in line}
    assert set(skipped) == {"mstl_ets", "prophet", "prophet_default", "lgbm", "lgbm_direct", "ridge",
                            "ridge_recursive"}
    assert all("--candidates all" in line for line in skipped.values())
    assert main(["backtest", "--history", str(history_csv), "--folds", "2", "--horizon", "6h", "--model",
                 "snaive", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["models"]) == {"snaive"} and "--model snaive" in doc["not_run"]["seasonal_median"]


@pytest.mark.slow
def test_backtest_candidates_all_runs_every_model(
    history_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from forecaster.models import available_models

    argv = ["backtest", "--history", str(history_csv), "--folds", "2", "--horizon", "6h", "--candidates",
            "all", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["models"]) | set(doc["not_run"]) == set(available_models())
    assert all(why.startswith("failed:") for why in doc["not_run"].values())  # only a failure skips one
    assert {"prophet", "mstl_ets"} <= set(doc["models"])
