"""Tests of what-if planning: scenario parsing, scenario maths, the capacity plan and the `whatif` command."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from controller import cli
from controller.config import BehaviorConfig, ControllerConfig, ScalingPolicy, ScalingRules
from controller.planning.whatif import (
    Scenario,
    apply_scenario,
    artifact_from_frame,
    capacity_plan,
    parse_event,
    parse_growth,
    scenario_artifact,
)
from forecaster.configbase import Duration
from forecaster.errors import UserError

H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2026-12-01T00:00:00Z")


def forecast(values: list[float]) -> pd.DataFrame:
    v = np.asarray(values, dtype=float)
    ds = pd.date_range(T0, periods=len(v), freq="1h")
    return pd.DataFrame(
        {"ds": ds, "yhat": v, "yhat_lower": 0.9 * v, "yhat_upper": 1.1 * v, "peak_upper": 1.2 * v}
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20%", 0.2), ("+20%", 0.2), ("-10%", -0.1), ("0%", 0.0), ("-100%", -1.0), ("12.5%", 0.125)],
    ids=["plain", "plus", "minus", "zero", "minus-100", "decimal"],
)
def test_parse_growth(text: str, expected: float) -> None:
    assert parse_growth(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [("-150%", "below -100%"), ("20", "percentage"), ("lots", "percentage")],
    ids=["below-minus-100", "no-percent-sign", "words"],
)
def test_parse_growth_rejects(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_growth(text)


def test_parse_event_forms() -> None:
    ev = parse_event("2026-12-01T06:00+07:00/6h x3", timezone=None)
    assert ev.start == pd.Timestamp("2026-11-30T23:00Z") and ev.end - ev.start == 6 * H and ev.factor == 3
    assert parse_event("2026-12-01T00:00Z/90m +50%", timezone=None).factor == pytest.approx(1.5)
    local = parse_event("2026-12-01T06:00/1h x2", timezone="Asia/Jakarta")
    assert local.start == pd.Timestamp("2026-11-30T23:00Z")


@pytest.mark.parametrize(
    ("text", "tz", "message"),
    [
        ("2026-12-01T00:00Z 6h x3", None, "expected 'START/DURATION xFACTOR'"),
        ("yesterday/6h x3", None, "start 'yesterday' is not an ISO date-time"),
        ("2026-12-01T00:00Z/6 hours x3", None, "expected 'START/DURATION xFACTOR'"),
        ("2026-12-01T00:00Z/6q x3", None, "duration '6q'"),
        ("2026-12-01T00:00Z/6h times3", None, "factor 'times3'"),
        ("2026-12-01T00:00/6h x3", None, "has no UTC offset"),
    ],
    ids=[
        "no-slash",
        "bad-start",
        "too-many-parts",
        "bad-duration",
        "bad-factor",
        "zone-less-without-timezone",
    ],
)
def test_parse_event_rejects_naming_the_part(text: str, tz: str | None, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as info:
        parse_event(text, timezone=tz)
    assert text in str(info.value)


def test_apply_scenario_growth_and_events() -> None:
    f = forecast([100.0] * 6)
    ev = parse_event("2026-12-01T02:30Z/1h x3", timezone=None)
    out = apply_scenario(f, H, Scenario("s", growth=0.2, events=(ev,)))
    # 02:00 and 03:00 intervals overlap the window [02:30, 03:30): 100 * 1.2 * 3.
    assert out["yhat"].tolist() == pytest.approx([120, 120, 360, 360, 120, 120])
    assert out["peak_upper"].tolist() == pytest.approx([144, 144, 432, 432, 144, 144])
    assert f["yhat"].tolist() == [100.0] * 6  # input untouched


def cfg(**overrides: Any) -> ControllerConfig:
    """10 req/s per replica, no headroom unless given, replicas 2..20, lead 2 min (90 s + 30 s)."""
    base: dict[str, Any] = {
        "capacity_per_replica": 10.0, "headroom": 0.0, "min_replicas": 2, "max_replicas": 20,
        "startup": Duration(90), "warmup_time": Duration(30),
    }
    return ControllerConfig(**{**base, **overrides})


def test_capacity_plan_hand_computed() -> None:
    f = forecast([50.0, 50.0, 100.0, 300.0, 100.0])  # peak_upper 60, 60, 120, 360, 120
    plan = capacity_plan(f, cfg(), interval=H, quota_tps=200, price_per_replica_hour=2.0)
    assert plan.frame["need"].tolist() == [6, 6, 12, 36, 12]
    assert plan.frame["replicas"].tolist() == [6, 6, 12, 20, 12]
    s = plan.summary
    assert (s["max_replicas_needed"], s["hours_at_max"], s["hours_over_quota"]) == (36, 1.0, 1.0)
    assert [r["kind"] for r in plan.risks] == ["max_replicas", "quota"]
    at_max = plan.risks[0]
    assert (at_max["start"], at_max["end"]) == ("2026-12-01T03:00:00+00:00", "2026-12-01T04:00:00+00:00")
    assert (at_max["replicas_needed"], at_max["replicas_ready"], at_max["reason"]) == (
        36, 20, "MaxCapacityExceeded"
    )
    assert [(x["from"], x["to"]) for x in plan.schedule] == [(6, 12), (12, 20)]
    first = plan.schedule[0]  # requested one lead (start-up + warm-up) before the row that needs it
    assert (first["request_at"], first["needed_at"], first["ahead"]) == (
        "2026-12-01T01:58:00+00:00", "2026-12-01T02:00:00+00:00", "2m",
    )
    assert set(first) == {"request_at", "needed_at", "ahead", "from", "to"}  # no column that repeats another
    # Billed from the request: 6 replicas for 58 min then 12 for 2 min, and so on.
    rh = plan.frame["replica_hours"].tolist()
    assert rh[:4] == pytest.approx([6, (6 * 58 + 12 * 2) / 60, (12 * 58 + 20 * 2) / 60, 20])
    assert 12 < rh[4] < (20 * 6 + 12 * 54) / 60  # scale-down after the 5-min stabilisation window
    assert s["replica_hours"] == pytest.approx(sum(rh)) and s["cost"] == pytest.approx(2 * sum(rh))


def test_headroom_is_not_stacked_on_the_band() -> None:
    # need = max(ceil(peak_upper / capacity), ceil(yhat x 1.1 / capacity)) = max(12, 11),
    # not ceil(120 x 1.1 / 10) = 14
    plan = capacity_plan(forecast([100.0] * 4), cfg(headroom=0.1), interval=H)
    assert plan.frame["need"].tolist() == [12] * 4 and plan.frame["replicas"].tolist() == [12] * 4
    # A band no wider than the mean: now the mean + 10% headroom needs more.
    flat_band = forecast([100.0] * 4).assign(peak_upper=100.0, yhat_upper=100.0)
    assert capacity_plan(flat_band, cfg(headroom=0.1), interval=H).frame["need"].tolist() == [11] * 4


@pytest.mark.parametrize(
    ("growth", "replicas"),
    [(0.0, 12), (0.5, 18), (-0.5, 6), (1.0, 20)],
    ids=["none", "plus-50pct", "minus-50pct", "double-hits-max"],
)
def test_growth_scales_the_plan(growth: float, replicas: int) -> None:
    base = capacity_plan(forecast([100.0] * 6), cfg(), interval=H)
    art = scenario_artifact(artifact_from_frame(forecast([100.0] * 6), H), Scenario("s", growth=growth))
    scen = capacity_plan(art, cfg(), scenario="s")
    assert base.frame["replicas"].tolist() == [12] * 6
    assert scen.frame["replicas"].tolist() == [replicas] * 6  # ceil(120 x (1 + growth) / 10), max 20
    assert scen.summary["hours_at_max"] == (6.0 if growth == 1.0 else 0.0)


@pytest.mark.parametrize(
    ("overrides", "replicas", "hours_at_max"),
    [
        ({"max_replicas": 40}, [12, 12, 36, 36, 12, 12], 0.0),
        ({"max_replicas": 30}, [12, 12, 30, 30, 12, 12], 2.0),
        ({"max_replicas": 30, "max_capacity": "exceed", "burst_buffer": 10}, [12, 12, 36, 36, 12, 12], 0.0),
        ({"max_replicas": 30, "max_capacity": "exceed", "burst_buffer": 4}, [12, 12, 34, 34, 12, 12], 2.0),
    ],
    ids=["fits", "capped-at-max", "exceed-mode-burst-covers", "exceed-mode-burst-short"],
)
def test_event_window_plan(overrides: dict[str, Any], replicas: list[int], hours_at_max: float) -> None:
    ev = parse_event("2026-12-01T02:00Z/2h x3", timezone=None)  # 100 -> 300 req/s, band 120 -> 360
    art = scenario_artifact(artifact_from_frame(forecast([100.0] * 6), H), Scenario("s", events=(ev,)))
    assert [e.kind for e in art.events] == ["promotion"]  # declared, so the warm-up planner sees it
    plan = capacity_plan(art, cfg(**overrides), scenario="event")
    assert plan.frame["need"].tolist() == [12, 12, 36, 36, 12, 12]
    assert plan.frame["replicas"].tolist() == replicas
    assert plan.summary["hours_at_max"] == hours_at_max
    up = plan.schedule[0]
    assert (up["request_at"], up["needed_at"], up["from"], up["to"]) == (
        "2026-12-01T01:58:00+00:00", "2026-12-01T02:00:00+00:00", 12, replicas[2]
    )
    risks = [(r["kind"], r["start"], r["end"], r["replicas_ready"]) for r in plan.risks]
    expected = [("max_replicas", "2026-12-01T02:00:00+00:00", "2026-12-01T04:00:00+00:00", replicas[2])]
    assert risks == (expected if hours_at_max else [])


def test_rate_limited_scale_up_is_a_short_window() -> None:
    # One pod per 10 minutes from 6 replicas: even climbing from the start, 36 cannot be ready at 01:00.
    slow = BehaviorConfig(
        scale_up=ScalingRules(policies=(ScalingPolicy("Pods", 1, 600),), select_policy="Max")
    )
    plan = capacity_plan(forecast([50.0, 300.0, 300.0]), cfg(max_replicas=40, behavior=slow), interval=H,
                         initial_replicas=6)
    short = [r for r in plan.risks if r["kind"] == "short"]
    assert short and short[0]["start"] == "2026-12-01T01:00:00+00:00" and short[0]["replicas_needed"] == 36
    assert plan.summary["hours_short"] > 0 and plan.summary["hours_at_max"] == 0


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        cli, "SUBCOMMAND_MODULES",
        ("controller.cli.simulate", "controller.cli.whatif", "controller.cli.report"),
    )
    return cli.main


@pytest.fixture
def history_file(tmp_path) -> str:
    idx = pd.date_range("2026-11-01T00:00:00Z", periods=28 * 24, freq="1h")
    hours = np.asarray(idx.hour)
    y = 100 + 80 * ((hours >= 8) & (hours < 20))
    path = tmp_path / "history.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "value": y}).to_csv(path, index=False)
    return str(path)


def test_whatif_cli_compares_with_baseline(run_cli, history_file, capsys) -> None:
    argv = [
        "whatif",
        "--history",
        history_file,
        "--capacity-per-replica",
        "10",
        "--max-replicas",
        "40",
        "--growth",
        "20%",
        "--event",
        "2026-11-30T09:00:00+00:00/3h x3",
        "--quota-tps",
        "400",
        "--horizon",
        "2d",
        "--model",
        "seasonal_median",
        "--price-per-replica-hour",
        "1",
        "--json",
    ]
    assert run_cli(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    base, scen = doc["baseline"]["summary"], doc["scenario"]["summary"]
    assert scen["peak_demand"] == pytest.approx(base["peak_demand"] * 1.2 * 3, rel=1e-6)
    assert base["risk_windows"] == 0 and base["hours_at_max"] == 0
    kinds = {r["kind"] for r in doc["scenario"]["risks"]}
    assert kinds == {"max_replicas", "quota"}
    assert scen["cost"] > base["cost"] and scen["cost"] == pytest.approx(scen["replica_hours"])
    assert len(doc["scenario"]["hourly"]) == 48
    assert run_cli(argv[:-1]) == 0
    text = capsys.readouterr().out
    assert "Risk windows (scenario)" in text and "baseline" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--growth", "-120%"], "below -100%"),
        (["--capacity-per-replica", "0"], "--capacity-per-replica: must be a positive rate"),
        (["--capacity-per-replica", "-5"], "--capacity-per-replica: must be a positive rate"),
        (["--event", "2026-11-30T09:00/3h x3"], "has no UTC offset"),
        (["--event", "2026-11-30T09:00Z/3h triple"], "factor 'triple'"),
        (["--quota-tps", "0"], "--quota-tps"),
    ],
    ids=[
        "growth-below-minus-100",
        "zero-capacity",
        "negative-capacity",
        "zone-less-event",
        "bad-factor",
        "zero-quota",
    ],
)
def test_whatif_cli_bad_input_exit_2(run_cli, history_file, capsys, extra: list[str], message: str) -> None:
    argv = ["whatif", "--history", history_file, "--capacity-per-replica", "10", "--model", "seasonal_median"]
    assert run_cli(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_whatif_text_is_short_and_says_only_what_was_asked(run_cli, history_file, capsys) -> None:
    """Default text: the comparison and a few lines; no quota row without --quota-tps, cost n/a without a
    price, no duplicate schedule columns; --details adds every scale-up and the replicas per hour."""
    argv = ["whatif", "--history", history_file, "--capacity-per-replica", "10", "--model", "seasonal_median",
            "--growth", "20%", "--horizon", "2d"]
    assert run_cli(argv) == 0
    short = capsys.readouterr().out
    assert len(short.splitlines()) < 30
    assert "quota" not in short and "Scenario replicas per hour:" not in short
    (cost,) = [line for line in short.splitlines() if line.startswith("cost")]
    assert cost.split()[1:] == ["n/a", "n/a"]
    assert run_cli([*argv, "--details", "--quota-tps", "150", "--price-per-replica-hour", "0.5",
                    "--currency", "EUR"]) == 0
    long = capsys.readouterr().out
    assert "hours over quota 150 req/s" in long and "cost (EUR)" in long
    hourly = long.split("Scenario replicas per hour:")[1].strip().splitlines()
    assert len(hourly) == 48
    ups = long.split("Scenario scale-ups (request at -> needed at, ahead: replicas):")[1].split("\n\n")[0]
    assert "->" in ups and "ready by" not in long


def test_event_outside_the_horizon_is_an_error(run_cli, history_file, capsys) -> None:
    argv = ["whatif", "--history", history_file, "--capacity-per-replica", "10", "--model", "seasonal_median",
            "--horizon", "1d", "--event", "2026-12-05T00:00Z/6h x3"]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert "outside the planned horizon" in err and "--horizon" in err


def test_zone_less_event_read_in_timezone(run_cli, history_file, capsys) -> None:
    argv = [
        "whatif",
        "--history",
        history_file,
        "--capacity-per-replica",
        "10",
        "--model",
        "seasonal_median",
        "--horizon",
        "1d",
        "--timezone",
        "Asia/Jakarta",
        "--event",
        "2026-11-29T16:00/1h x5",
        "--json",
    ]
    assert run_cli(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    hourly = pd.DataFrame(doc["scenario"]["hourly"])
    top = hourly.loc[hourly["peak_rate"].idxmax(), "ds"]
    assert pd.Timestamp(top) == pd.Timestamp("2026-11-29T09:00:00Z")  # 16:00 in Jakarta (UTC+7)


def test_cluster_flags_change_only_the_scenario_with_config(run_cli, history_file, tmp_path, capsys) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("controller:\n  capacityPerReplica: 10\n  maxReplicas: 100\n  startup: 60s\n")
    argv = [
        "whatif",
        "--history",
        history_file,
        "--config",
        str(config),
        "--capacity-per-replica",
        "20",
        "--startup",
        "5m",
        "--horizon",
        "1d",
        "--model",
        "seasonal_median",
        "--json",
    ]
    assert run_cli(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    base, scen = doc["baseline"]["summary"], doc["scenario"]["summary"]
    assert (base["capacity_per_replica"], scen["capacity_per_replica"]) == (10, 20)
    assert (base["startup"], scen["startup"]) == ("1m", "5m")
    assert scen["max_replicas_needed"] == pytest.approx(base["max_replicas_needed"] / 2, abs=1)
    assert scen["peak_demand"] == base["peak_demand"]


@pytest.mark.slow
def test_whatif_baseline_is_the_plan_command(run_cli, history_file, tmp_path, capsys) -> None:
    """One decision core: the baseline replicas equal `recharge-autoscaler plan` for the same inputs."""
    flags = ["--history", history_file, "--capacity-per-replica", "10", "--startup", "90s", "--warmup-time",
             "30s", "--min-replicas", "1", "--max-replicas", "25", "--horizon", "1d", "--model",
             "seasonal_median"]
    monkey = pytest.MonkeyPatch()
    monkey.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.whatif", "controller.cli.plan"))
    try:
        out = tmp_path / "plan.csv"
        assert cli.main(["plan", *flags, "--output", str(out)]) == 0
        assert cli.main(["whatif", *flags, "--growth", "30%", "--json"]) == 0
    finally:
        monkey.undo()
    plan = pd.read_csv(out)
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    # One warm-up definition and count: the calls decide() issues, as `plan` reports them on stderr.
    (said,) = re.findall(r"warm-ups (\d+)", captured.err)
    summary = doc["baseline"]["summary"]
    assert int(said) == summary["warmups"] == len(doc["baseline"]["warmups"]) > 0
    assert sum(summary["warmups_by_reason"].values()) == summary["warmups"]
    base = pd.DataFrame(doc["baseline"]["intervals"])
    assert len(base) == len(plan) == 24
    assert base["ds"].tolist() == [pd.Timestamp(t).isoformat() for t in plan["ds"]]
    assert base["replicas"].tolist() == plan["replicas"].tolist()
    assert base["need"].tolist() == plan["need"].tolist()
    assert base["reason"].tolist() == plan["reason"].tolist()
    scen = pd.DataFrame(doc["scenario"]["intervals"])
    assert (scen["replicas"] >= base["replicas"]).all() and scen["replicas"].sum() > base["replicas"].sum()
