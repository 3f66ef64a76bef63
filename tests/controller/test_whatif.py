"""Tests of what-if planning: scenario parsing, scenario maths, the capacity plan and the `whatif` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from controller import cli
from controller.whatif import (
    Cluster,
    Scenario,
    apply_scenario,
    capacity_plan,
    parse_event,
    parse_growth,
)
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


def test_capacity_plan_hand_computed() -> None:
    f = forecast([50.0, 50.0, 100.0, 300.0, 100.0])  # peak_upper 60, 60, 120, 360, 120
    cluster = Cluster(
        capacity_per_replica=10,
        headroom=0.0,
        min_replicas=2,
        max_replicas=20,
        startup=pd.Timedelta(seconds=90),
        warmup_time=pd.Timedelta(seconds=30),
        price_per_replica_hour=2.0,
    )
    plan = capacity_plan(f, H, cluster, quota_tps=200)
    assert plan.frame["need"].tolist() == [6, 6, 12, 36, 12]
    assert plan.frame["replicas"].tolist() == [6, 6, 12, 20, 12]
    s = plan.summary
    assert (s["max_replicas_needed"], s["hours_at_max"], s["hours_over_quota"]) == (36, 1.0, 1.0)
    assert s["replica_hours"] == 56 and s["cost"] == 112
    assert [r["kind"] for r in plan.risks] == ["max_replicas", "quota"]
    assert (
        plan.risks[0]["start"] == "2026-12-01T03:00:00+00:00"
        and plan.risks[0]["end"] == "2026-12-01T04:00:00+00:00"
    )
    assert [(x["from"], x["to"]) for x in plan.schedule] == [(6, 12), (12, 20)]
    assert plan.schedule[0]["request_at"] == "2026-12-01T01:58:00+00:00"  # 2 min (start-up + warm-up) ahead


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        cli, "SUBCOMMAND_MODULES", ("controller.simcli", "controller.whatif", "controller.report")
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
        (["--capacity-per-replica", "0"], "--capacity-per-replica must be > 0"),
        (["--capacity-per-replica", "-5"], "--capacity-per-replica must be > 0"),
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
