"""Extreme and odd input through every command (issue 10, items 11 and 12): refused with one clear line,
never a traceback, and an existing output is never replaced by an incomplete one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.cli import main


def history(path: Path, value: float | None = None, days: int = 21) -> Path:
    idx = pd.date_range("2015-01-01", periods=24 * days, freq="h")
    wave = 100 + 50 * np.sin(np.arange(len(idx)) / 24 * 6.28)
    values = np.full(len(idx), value) if value is not None else wave
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": values}).to_csv(path, index=False)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


COMMANDS = {
    "forecast": ["forecast", "--history", "{h}", "--horizon", "24h", "--freq", "1h", "--output", "{o}"],
    "backtest": ["backtest", "--history", "{h}", "--horizon", "24h", "--folds", "2"],
    "plan": [
        "plan", "--history", "{h}", "--horizon", "24h", "--capacity-per-replica", "1", "--output", "{o}"
    ],
    "whatif": ["whatif", "--history", "{h}", "--capacity-per-replica", "1"],
    "simulate": ["simulate", "--trace", "{h}", "--capacity-per-replica", "1", "--start", "14d"],
    "report": ["report", "--history", "{h}", "--capacity-per-replica", "1", "--output", "{d}"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_meaningless_scale_is_refused_and_keeps_the_previous_output(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = history(tmp_path / "big.csv", 1e300)
    out = tmp_path / "out.csv"
    out.write_text("previous,output\n1,2\n")
    report_dir = tmp_path / "rep"
    report_dir.mkdir()
    (report_dir / "index.html").write_text("previous report")
    argv = [a.format(h=h, o=out, d=report_dir) for a in COMMANDS[command]]
    code, stdout, err = run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "big.csv: column 'value' row 1: 1e+300 is too large" in err
    assert len(stdout) < 2000  # no 300-digit numbers either
    assert out.read_text() == "previous,output\n1,2\n"
    assert (report_dir / "index.html").read_text() == "previous report"


def test_an_incomplete_forecast_never_replaces_the_output(tmp_path: Path) -> None:
    """write_frame checks the frame before the rename: NaN band columns are refused, the old file stays."""
    from forecaster.errors import UserError
    from forecaster.series.io import write_frame

    out = tmp_path / "forecast.csv"
    out.write_text("previous\n")
    frame = pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC"),
                          "yhat": [1.0, 2.0, 3.0], "yhat_lower": [np.nan] * 3})
    match = r"forecast.csv: not written: column 'yhat_lower' row 1 is not a finite number"
    with pytest.raises(UserError, match=match):
        write_frame(frame, str(out), finite=("yhat", "yhat_lower"))
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["forecast.csv"]  # no temp file left


@pytest.mark.parametrize("capacity", ["1e-320", "1e300", "inf"])
def test_capacity_outside_a_meaningful_range_is_refused(
    capacity: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = history(tmp_path / "ok.csv")
    code, _, err = run(["plan", "--history", str(h), "--horizon", "24h", "--capacity-per-replica", capacity,
                        "--output", str(tmp_path / "p.csv")], capsys)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert "capacity" in err.lower()


def test_a_report_that_fails_midway_leaves_the_previous_report_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report writes several files: they replace the previous ones together or not at all."""
    import controller.planning.report as report_mod
    from forecaster.errors import UserError

    h = history(tmp_path / "ok.csv")
    out = tmp_path / "rep"
    out.mkdir()
    previous = {"index.html": "previous report", "plan.csv": "previous plan"}
    for name, text in previous.items():
        (out / name).write_text(text)

    def broken(*args: object, **kwargs: object) -> str:
        raise UserError("rendering failed")

    monkeypatch.setattr(report_mod, "render", broken)
    code, _, err = run(["report", "--history", str(h), "--capacity-per-replica", "1", "--simulate-days", "0",
                        "--output", str(out)], capsys)
    assert code == 2 and "rendering failed" in err
    assert {p.name: p.read_text() for p in out.iterdir()} == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- item 12: odd input names the right culprit -------------------------------------------------------


def test_simulate_start_zero_blames_start_not_the_cron_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    h = history(tmp_path / "ok.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning is a failure too
        code, _, err = run(["simulate", "--trace", str(h), "--capacity-per-replica", "1", "--start", "0s"],
                           capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "error: --start: 0s leaves no history" in err and "replica counts must be" not in err, err


@pytest.mark.parametrize("flag", ["--startup", "--warmup-time", "--horizon"])
def test_a_duration_flag_without_a_unit_is_an_error(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = history(tmp_path / "ok.csv")
    argv = ["plan", "--history", str(h), "--capacity-per-replica", "1", "--output", str(tmp_path / "p.csv")]
    code, _, err = run([*argv, flag, "2"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{flag}: '2' has no unit" in err and "2s" in err, err


def test_zero_needs_no_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = history(tmp_path / "ok.csv")
    argv = ["plan", "--history", str(h), "--capacity-per-replica", "1", "--output", str(tmp_path / "p.csv")]
    code, _, err = run([*argv, "--warmup-time", "0", "--quiet"], capsys)
    assert code == 0, err


def test_a_missing_trace_names_the_trace_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["simulate", "--trace", str(tmp_path / "nope.csv"), "--capacity-per-replica", "1"],
                       capsys)
    assert code == 2 and "check the --trace path" in err and "--history" not in err, err


@pytest.mark.parametrize(
    ("change", "field"),
    [({"timezone": "Mars/Olympus"}, "source.file.timezone"), ({"path": "nope.csv"}, "source.file.path")],
    ids=["timezone", "path"],
)
def test_the_job_names_its_config_fields_not_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str], field: str
) -> None:
    import yaml

    history(tmp_path / "h.csv")
    cfg = tmp_path / "config.yaml"
    source = {"path": "h.csv", **change}
    cfg.write_text(yaml.safe_dump({
        "source": {"kind": "file", "file": source},
        "store": {"kind": "file", "file": {"path": "f.json"}},
        "forecast": {"horizon": "6h", "interval": "1h", "history": "14d", "model": "seasonal_median"},
    }))
    code, _, err = run(["forecast-job", "--config", str(cfg), "--once"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert field in err and "--timezone" not in err and "--history" not in err, err


def test_stale_temp_files_of_csv_outputs_and_reports_are_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 13, for the other atomic writers: CSV outputs and the report's staging directory."""
    import os

    from forecaster.series.io import write_frame

    stale_csv = tmp_path / ".out.csv.k1ll3d00.tmp"
    stale_csv.write_text("half")
    stale_dir = tmp_path / ".rep.k1ll3d00.tmp"
    stale_dir.mkdir()
    (stale_dir / "plan.csv").write_text("half")
    for p in (stale_csv, stale_dir):
        os.utime(p, (0, 0))
    write_frame(pd.DataFrame({"a": [1.0]}), str(tmp_path / "out.csv"))
    assert not stale_csv.exists()
    h = history(tmp_path / "ok.csv")
    code, _, err = run(["report", "--history", str(h), "--capacity-per-replica", "1", "--simulate-days", "0",
                        "--output", str(tmp_path / "rep")], capsys)
    assert code == 0, err
    assert not stale_dir.exists() and (tmp_path / "rep" / "index.html").exists()
