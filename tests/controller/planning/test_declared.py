"""plan, simulate, whatif (and their commands) show the declared windows, the intervals each set, and the
availability target's share and cost against the fixed headroom."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller import cli
from controller.planning.declared import plan_hours, target_cost, window_rows
from controller.planning.plan import build_plan
from controller.planning.policies import CronPolicy
from controller.planning.predictive import PredictivePolicy
from controller.planning.simulate import SimParams, make_trace, simulate
from controller.windows import ScalingWindow
from forecaster.artifact import ErrorQuantiles
from tests.support.builders import T0, artifact, config

PROMO = ScalingWindow(name="promo", start="0 11 * * *", duration=3600, min_replicas=25)
TABLE = ErrorQuantiles((0.9, 0.999), (0.0,), ((1.0, 4.0),), (1.0,), (500,), (0.9, 0.998))


def flat(hours: int = 6) -> object:
    return dataclasses.replace(artifact([1000.0] * (hours * 12), yhat=[900.0] * (hours * 12)),
                               error_quantiles=TABLE)


def test_plan_names_the_window_that_set_each_row() -> None:
    cfg = config(scaling_windows=(PROMO,))
    frame, _ = build_plan(flat(), cfg, initial_replicas=10)
    set_rows = frame[frame["window"] == "promo"]
    assert list(set_rows["reason"].unique()) == ["ScheduledFloor"]
    assert set_rows["ds"].min() == pd.Timestamp("2026-11-26T11:00Z")  # ready at the start, not before
    assert set_rows["ds"].max() == pd.Timestamp("2026-11-26T11:55Z") and len(set_rows) == 12
    assert (set_rows["replicas"] == 25).all() and (frame.loc[frame["window"] == "", "replicas"] == 10).all()
    rows = window_rows(cfg, frame["ds"].iloc[0], frame["ds"].iloc[-1], frame)
    assert [(r["window"], r["start"].isoformat(), r["intervals_set"]) for r in rows] == [
        ("promo", "2026-11-26T11:00:00+00:00", 12)]


def test_target_cost_against_the_fixed_headroom() -> None:
    cfg = config(availability_target=0.999)
    art = flat()
    frame, _ = build_plan(art, cfg, initial_replicas=14)
    cost = target_cost(art, cfg, frame, initial_replicas=14)
    assert cost is not None
    fixed, _ = build_plan(art, cfg.evolve(availability_target=None), initial_replicas=14)
    assert cost.replica_hours == plan_hours(frame, art) == 14 * 6  # 900 + 4 x 90 = 1260 req/s -> 13 ... 14
    assert cost.headroom_hours == plan_hours(fixed, art) == 10 * 6  # band 990 (peak 1000) -> 10
    assert cost.backtest_achieved == pytest.approx(0.998) and cost.extra == pytest.approx(0.4)
    assert cost.describe().startswith("availability target 99.90%: backtest achieved 99.80%")
    assert target_cost(art, config(), frame) is None


def test_cron_policy_honours_the_declared_windows() -> None:
    idx = pd.date_range(T0, periods=36, freq="5min")
    trace = make_trace(pd.Series(500.0, index=idx))
    cfg = config(scaling_windows=(ScalingWindow(name="w", start="30 10 * * *", duration=1800, min_replicas=9,
                                                max_replicas=12),))
    params = SimParams(capacity_per_replica=100.0, startup=pd.Timedelta(seconds=60),
                       warmup_time=pd.Timedelta(seconds=30))
    res = simulate(trace, CronPolicy(fixed=3, windows=cfg), params)
    series = pd.Series(res.requested, index=trace.times)
    assert series[:"2026-11-26T10:27:45Z"].max() == 3
    assert (series["2026-11-26T10:28:00Z":"2026-11-26T10:59:45Z"] == 9).all()  # from start - 2 min
    assert series["2026-11-26T11:00:00Z":].max() == 3
    assert res.window_intervals == {"w": 7}  # the 10:25 interval (requested early) and 10:30 .. 10:55
    capped = simulate(trace, CronPolicy(fixed=20, windows=cfg), params)
    open_ = pd.Series(capped.requested, index=trace.times)["2026-11-26T10:30:00Z":"2026-11-26T10:57:45Z"]
    assert open_.max() == 12


def test_predictive_replay_counts_the_intervals_each_window_set() -> None:
    start = T0 - pd.Timedelta(days=1)
    idx = pd.date_range(start, periods=int(30 * 60 / 5), freq="5min")
    history = pd.Series(500.0, index=idx)
    art = dataclasses.replace(artifact([600.0] * 60, yhat=[500.0] * 60), created_at=T0)
    cfg = config(scaling_windows=(PROMO,))
    policy = PredictivePolicy(config=cfg, history=history, forecaster=lambda h, o, hz: art)
    res = simulate(make_trace(history[history.index >= T0]), policy, SimParams(capacity_per_replica=100.0))
    assert res.window_intervals == {"promo": 13}  # 10:55 (requested 2 min early) and 11:00 .. 11:55
    assert res.availability == 1.0


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.plan", "controller.cli.simulate",
                                                    "controller.cli.whatif"))
    return cli.main


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    idx = pd.date_range("2026-11-01T00:00:00Z", periods=28 * 24, freq="1h")
    rng = np.random.default_rng(0)
    y = 100 + 80 * ((idx.hour >= 8) & (idx.hour < 20)) + rng.normal(0, 20, len(idx))
    history = tmp_path / "history.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "value": y}).to_csv(history, index=False)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("controller:\n  capacityPerReplica: 10\n  maxReplicas: 60\n  availabilityTarget: 0.995\n"
                   "  scalingWindows:\n"
                   "    - {name: lunch, start: '0 12 * * *', duration: 2h, minReplicas: 40}\n")
    return str(history), str(cfg)


def test_plan_command_prints_the_windows_and_the_target(run_cli, files, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    history, cfg = files
    out = tmp_path / "plan.csv"
    assert run_cli(["plan", "--history", history, "--config", cfg, "--model", "seasonal_median",
                    "--horizon", "24h", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "plan: availability target 99.50%: backtest achieved " in err
    assert "with the fixed headroom 10%" in err
    assert "1 scaling window)" in err  # its cache warm-up is counted with the others
    assert "plan:   lunch ('0 12 * * *' for 7200s UTC, min 40): 1 opening(s) in the span" in err
    assert "plan:     2026-11-29T12:00:00+00:00 .. 2026-11-29T14:00:00+00:00: set 2 interval(s)" in err
    frame = pd.read_csv(out)
    assert list(frame.loc[frame["window"] == "lunch", "replicas"]) == [40, 40]
    assert set(frame["reason"]) >= {"AvailabilityTarget", "ScheduledFloor"}


@pytest.mark.slow
def test_simulate_command_compares_the_target_with_the_fixed_headroom(run_cli, files, capsys) -> None:  # type: ignore[no-untyped-def]
    history, cfg = files
    assert run_cli(["simulate", "--trace", history, "--config", cfg, "--start", "21d", "--policy",
                    "predictive,cron", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pols = doc["policies"]
    assert set(pols) == {"predictive", "predictive (headroom 10%)", "cron"}
    assert doc["availability_target"] == 0.995
    # 7 openings of 2 hourly intervals, each also requested (lead + interval) early in the 11:00 interval
    assert pols["predictive"]["window_intervals"] == {"lunch": 21} == pols["cron"]["window_intervals"]
    assert pols["predictive"]["replica_hours"] > pols["predictive (headroom 10%)"]["replica_hours"]
    starts = [w["start"] for w in doc["windows"]]
    assert starts[:2] == ["2026-11-22T12:00:00+00:00", "2026-11-23T12:00:00+00:00"]
    assert run_cli(["simulate", "--trace", history, "--config", cfg, "--start", "21d", "--policy",
                    "predictive"]) == 0
    text = capsys.readouterr().out
    assert "availability target 99.50%: met in replay" in text
    assert "lunch ('0 12 * * *' for 7200s UTC, min 40): 7 opening(s)" in text


def test_whatif_compares_two_targets(run_cli, files, capsys) -> None:  # type: ignore[no-untyped-def]
    history, _ = files
    argv = ["whatif", "--history", history, "--capacity-per-replica", "10", "--model", "seasonal_median",
            "--availability-target", "99.9%", "--baseline-availability-target", "99%", "--json"]
    assert run_cli(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    base, scen = doc["baseline"]["summary"], doc["scenario"]["summary"]
    assert (base["availability_target"], scen["availability_target"]) == ("99.00%", "99.90%")
    assert scen["replica_hours"] > base["replica_hours"]
    assert run_cli([*argv[:-3], "--baseline-availability-target", "off"]) == 0
    text = capsys.readouterr().out
    assert next(w for w in text.splitlines() if w.startswith("availability target")).split() == \
        ["availability", "target", "off", "99.90%"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--availability-target", "99.99%"],
     "--availability-target: must be between 50% and 99.9%, got '99.99%'"),
    (["--availability-target", "99.5"], "got '99.5' (write 99.5% or 0.995)"),
    (["--availability-target", "high"], "--availability-target: expected a share like 0.995"),
    (["--availability-target", "99%", "--headroom", "20%"], "--availability-target: give either it or "
                                                            "--headroom, not both"),
])
def test_bad_target_flags_exit_2_with_one_line(run_cli, files, capsys, flags, message) -> None:  # type: ignore[no-untyped-def]
    history, _ = files
    assert run_cli(["plan", "--history", history, "--capacity-per-replica", "10", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
