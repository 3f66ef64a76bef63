"""The offline plan: decide() replayed on a simulated clock, and the `plan` command's output contract."""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from controller.cli import main
from controller.cli.args import controller_config as config_from_args
from controller.cli.args import parse_fraction
from controller.config import WarmupConfig
from controller.core.behavior import forecast_need
from controller.core.decision import replicas_for
from controller.planning.plan import PLAN_COLUMNS, build_plan, tick_for
from forecaster.configbase import Duration
from forecaster.errors import UserError
from tests.support.builders import T0, artifact, config

SHAPES = [
    ("flat", [1000.0] * 24),
    ("step-up", [500.0] * 8 + [3000.0] * 16),
    ("step-down", [3000.0] * 8 + [500.0] * 16),
    ("spike", [500.0] * 10 + [4000.0] + [500.0] * 13),
    ("big-ramp-from-min", [50.0] * 6 + [4500.0] * 18),
]


@pytest.mark.parametrize("peaks", [s[1] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_plan_has_every_row_ready_for_its_peak(peaks: list[float]) -> None:
    cfg = config(max_replicas=60, warmup=WarmupConfig(enabled=True))
    art = artifact(peaks, step=300)
    frame, decisions = build_plan(art, cfg)  # the first decision is not rate-limited
    assert list(frame.columns) == PLAN_COLUMNS
    assert list(frame["ds"]) == [i.ds for i in art.intervals]
    # the builder's mean is peak / 1.2, so mean + 10% headroom stays below the band: the band is the need
    need = [min(max(forecast_need(p, p / 1.2, 100.0, 0.1), 1), 60) for p in peaks]
    assert need == [min(max(replicas_for(p, 100.0), 1), 60) for p in peaks]
    assert list(frame["need"]) == [forecast_need(p, p / 1.2, 100.0, 0.1) for p in peaks]
    rows = zip(frame["ds"], frame["replicas"], need, strict=True)
    shortfall = [(str(ds), r, n) for ds, r, n in rows if r < n]
    assert not shortfall, shortfall
    assert frame["replicas"].between(1, 60).all()
    assert decisions[0].at == T0 - pd.Timedelta(seconds=90)  # lead before the first row


def test_plan_scales_up_lead_before_the_row_and_down_after() -> None:
    cfg = config()
    art = artifact([500.0] * 6 + [3000.0] * 6 + [500.0] * 12)
    frame, decisions = build_plan(art, cfg, initial_replicas=6)
    rise, fall = T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(minutes=60)
    first_30 = next(d.at for d in decisions if d.replicas >= 30)  # the band of 3000 req/s
    assert rise - cfg.lead - 3 * cfg.interval_td <= first_30 <= rise - cfg.lead
    by_ds = frame.set_index("ds")["replicas"]
    assert by_ds[rise - pd.Timedelta(minutes=5)] == 5  # the extra pods are not ready before they start
    assert by_ds[rise] == 30
    # Scale-down waits for the peak to end, then the 5-minute stabilisation window.
    first_down = next(d.at for d in decisions if d.at > rise and d.replicas < 30)
    assert fall + pd.Timedelta(minutes=4) <= first_down <= fall + pd.Timedelta(minutes=6)
    assert by_ds[fall + pd.Timedelta(minutes=10)] == 5  # the band of 500 req/s


def test_plan_warmup_columns() -> None:
    cfg = config(warmup=WarmupConfig(enabled=True, lead=Duration(600)))
    frame, _ = build_plan(artifact([500.0] * 6 + [3000.0] * 6), cfg, initial_replicas=6)
    rows = frame[frame["warmup_key"] != ""]
    ramp = rows[rows["warmup_reason"].str.contains("RampAhead")]
    assert list(ramp["ds"]) == [T0 + pd.Timedelta(minutes=20)]  # 10 min before the 10:30 rise
    assert ramp["warmup_at"].iloc[0].startswith("2026-11-26T10:20:00")
    assert frame["warmup_key"].str.len().gt(0).sum() >= 2  # the ramp and the new replicas


@pytest.mark.parametrize(
    ("interval", "resolution", "want"),
    [(30, 300, 30), (45, 300, 15), (30, 3600, 30), (60, 30, 30), (7, 300, 1)],
    ids=["divides", "gcd", "hourly", "coarser-than-history", "coprime"],
)
def test_tick_divides_the_resolution(interval: int, resolution: int, want: int) -> None:
    tick = tick_for(config(interval=Duration(interval)), pd.Timedelta(seconds=resolution))
    assert tick == pd.Timedelta(seconds=want)


@pytest.mark.parametrize(
    ("text", "want"),
    [("10%", 0.1), ("0.1", 0.1), ("0", 0.0), ("150%", 1.5), (" 5% ", 0.05)],
    ids=["percent", "fraction", "zero", "above-100", "spaces"],
)
def test_parse_fraction(text: str, want: float) -> None:
    assert math.isclose(parse_fraction(text, what="--headroom"), want)


@pytest.mark.parametrize("text", ["ten", "-5%", "nan", "%"], ids=["word", "negative", "nan", "bare-percent"])
def test_parse_fraction_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--headroom"):
        parse_fraction(text, what="--headroom")


def _history(path: Path, days: int = 14, step_min: int = 30) -> Path:
    idx = pd.date_range("2026-10-01", periods=days * 24 * 60 // step_min, freq=f"{step_min}min", tz="UTC")
    hours = np.asarray(idx.hour + idx.minute / 60)
    rate = 400 + 300 * np.sin((hours - 6) / 24 * 2 * np.pi).clip(0) + 50 * np.asarray(idx.day_of_week >= 5)
    frame = pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": rate.round(2)})
    frame.to_csv(path, index=False)
    return path


BAD_FLAGS = [
    ("capacity-zero", ["--capacity-per-replica", "0"], "--capacity-per-replica"),
    ("capacity-missing", [], "--capacity-per-replica is required"),
    ("min-above-max", ["--capacity-per-replica", "50", "--min-replicas", "5", "--max-replicas", "3"],
     "--max-replicas (3) must be >= --min-replicas (5)"),
    ("bad-headroom", ["--capacity-per-replica", "50", "--headroom", "lots"], "--headroom"),
    ("bad-horizon", ["--capacity-per-replica", "50", "--horizon", "tomorrow"], "--horizon"),
    ("bad-startup", ["--capacity-per-replica", "50", "--startup=-1m"], "--startup"),
    ("missing-history-file", ["--capacity-per-replica", "50", "--history", "/nonexistent/h.csv"], "h.csv"),
]


@pytest.mark.parametrize(("flags", "message"), [b[1:] for b in BAD_FLAGS], ids=[b[0] for b in BAD_FLAGS])
def test_plan_cli_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    hist = _history(tmp_path / "h.csv", days=2)
    args = ["plan", "--history", str(hist), "--output", str(tmp_path / "plan.csv"), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "plan.csv").exists()


@pytest.mark.slow
def test_plan_cli_writes_the_contract_at_the_history_resolution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hist = _history(tmp_path / "h.csv")
    out = tmp_path / "plan.csv"
    code = main(["plan", "--history", str(hist), "--horizon", "24h", "--capacity-per-replica", "50",
                 "--startup", "2m", "--warmup-time", "1m", "--min-replicas", "2", "--max-replicas", "40",
                 "--headroom", "10%", "--model", "seasonal_median", "--output", str(out)])
    assert code == 0
    plan = pd.read_csv(out)
    assert list(plan.columns[:2]) == ["ds", "replicas"]
    assert {"yhat", "yhat_upper", "peak_upper", "warmup_at", "warmup_key"} <= set(plan.columns)
    ds = pd.to_datetime(plan["ds"], utc=True)
    assert len(plan) == 48 and (ds.diff().dropna() == pd.Timedelta(minutes=30)).all()
    assert ds.iloc[0] == pd.Timestamp("2026-10-15T00:00:00Z")  # right after the history
    assert plan["replicas"].between(2, 40).all()
    need = np.ceil(plan["peak_upper"] * 1.1 / 50 - 1e-9).clip(2, 40)
    assert (plan["replicas"] >= need).all()
    capsys.readouterr()
    assert main(["plan", "--history", str(hist), "--horizon", "6h", "--capacity-per-replica", "50",
                 "--model", "seasonal_median", "--output", "-"]) == 0
    text = capsys.readouterr().out
    assert len(pd.read_csv(io.StringIO(text))) == 12


def _ns(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
            "config": None, "capacity_per_replica": None, "startup": None, "warmup_time": None,
            "headroom": None, "min_replicas": None, "max_replicas": None, "initial_replicas": None,
            "no_warmup": False}
    base.update(kw)
    return argparse.Namespace(**base)


def test_plan_flags_override_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    section = {"capacityPerReplica": 80, "minReplicas": 4, "maxReplicas": 30, "startup": "3m",
               "warmup": {"lead": "15m"}}
    path.write_text(yaml.safe_dump({"controller": section}))
    cfg = config_from_args(_ns(config=str(path), max_replicas=20, headroom="25%", warmup_time="2m"))
    assert (cfg.capacity_per_replica, cfg.min_replicas, cfg.max_replicas, cfg.headroom) == (80.0, 4, 20, 0.25)
    assert (float(cfg.startup), float(cfg.warmup_time)) == (180.0, 120.0)
    assert cfg.warmup.enabled and float(cfg.warmup.lead) == 900
    with pytest.raises(UserError, match=r"--max-replicas \(3\) must be >= --min-replicas \(4\)"):
        config_from_args(_ns(config=str(path), max_replicas=3))
    assert not config_from_args(_ns(capacity_per_replica=10.0, no_warmup=True)).warmup.enabled


@pytest.mark.parametrize("quiet", [False, True], ids=["summary", "quiet"])
def test_plan_cli_reports_the_forecast_and_its_warnings_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quiet: bool
) -> None:
    hist = _history(tmp_path / "h.csv", days=5)  # under two weeks: an honest warning is owed
    args = ["plan", "--history", str(hist), "--horizon", "6h", "--capacity-per-replica", "50",
            "--model", "seasonal_median", "--output", str(tmp_path / "plan.csv"), *(["-q"] if quiet else [])]
    assert main(args) == 0
    err = capsys.readouterr().err
    if quiet:
        assert err == ""
    else:
        assert "model: seasonal_median" in err
        assert "warning: short_history" in err
        rows = pd.read_csv(tmp_path / "plan.csv")
        assert f"plan: {len(rows)} rows, replicas {rows['replicas'].min()}..{rows['replicas'].max()}" in err
