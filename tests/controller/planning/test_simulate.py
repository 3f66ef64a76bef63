"""Tests of the simulator core: trace building, readiness, metrics and the `simulate` command."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from controller import cli
from controller.planning.policies import CronPolicy, OraclePolicy, ReactivePolicy
from controller.planning.simulate import (
    PolicyRun,
    SimParams,
    Trace,
    Warmup,
    compare,
    make_trace,
    ready_replicas,
    replay_recorded,
    simulate,
)
from forecaster.errors import UserError

T0 = pd.Timestamp("2026-11-02T00:00:00Z")


def rate_series(values: list[float], minutes: int = 1, start: pd.Timestamp = T0) -> pd.Series:
    return pd.Series(
        values, index=pd.date_range(start, periods=len(values), freq=f"{minutes}min"), dtype=float
    )


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        cli, "SUBCOMMAND_MODULES",
        ("controller.cli.simulate", "controller.cli.whatif", "controller.cli.report"),
    )
    return cli.main


@pytest.mark.parametrize(
    ("requested", "lead", "initial", "expected"),
    [
        ([2, 2, 5, 5, 5, 5], 2, 2, [2, 2, 2, 2, 5, 5]),
        ([5, 5, 2, 2, 5, 5], 2, 5, [5, 5, 2, 2, 2, 2]),
        ([3, 4, 5, 6], 0, 3, [3, 4, 5, 6]),
        ([1, 1, 1], 1, 4, [1, 1, 1]),
    ],
    ids=["scale-up-waits-lead", "scale-down-immediate-and-new-pods-not-ready", "no-lead", "initial-above"],
)
def test_ready_replicas(requested: list[int], lead: int, initial: int, expected: list[int]) -> None:
    assert ready_replicas(np.array(requested), lead, initial).tolist() == expected


def test_make_trace_upsamples_and_fills_gaps() -> None:
    s = rate_series([10.0, np.nan, 30.0], minutes=1)
    tr = make_trace(s)
    assert tr.step == pd.Timedelta(seconds=15) and tr.interval == pd.Timedelta(minutes=1)
    assert tr.rate.tolist() == [10.0] * 4 + [10.0] * 4 + [30.0] * 4  # a gap is never zero demand


@pytest.mark.parametrize(
    ("series", "message"),
    [
        (
            pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2026-01-01T00:00Z", "2026-01-01T00:00:50Z"])),
            "step",
        ),
        (rate_series([1.0, -2.0, 3.0]), "negative"),
        (rate_series([]), "empty"),
    ],
    ids=["interval-not-multiple-of-15s-grid", "negative-rate", "empty"],
)
def test_make_trace_rejects(series: pd.Series, message: str) -> None:
    if message == "step":
        tr = make_trace(series)  # 50 s interval: grid step 5 s is fine
        assert tr.step == pd.Timedelta(seconds=5)
        with pytest.raises(UserError, match="must divide"):
            make_trace(series, step=pd.Timedelta(seconds=15))
        return
    with pytest.raises(UserError, match=message):
        make_trace(series)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity_per_replica": 0}, "capacity per replica"),
        ({"capacity_per_replica": -3}, "capacity per replica"),
        ({"capacity_per_replica": 1, "max_replicas": 0}, "max replicas"),
        ({"capacity_per_replica": 1, "price_per_replica_hour": -1}, "price"),
    ],
    ids=["zero-capacity", "negative-capacity", "zero-max", "negative-price"],
)
def test_params_reject(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        SimParams(**kwargs)


def test_trace_shorter_than_startup_is_an_error() -> None:
    tr = make_trace(rate_series([5.0], minutes=1), step=pd.Timedelta(seconds=15))
    with pytest.raises(UserError, match="start-up delay"):
        simulate(tr, OraclePolicy(), SimParams(capacity_per_replica=1, startup=pd.Timedelta(minutes=5)))


class FixedPolicy:
    name = "fixed"

    def __init__(self, requested: list[int], warmups: list[Warmup] | None = None) -> None:
        self.requested, self.warmups = requested, warmups or []

    def run(self, trace: Trace, params: SimParams) -> PolicyRun:
        return PolicyRun(np.array(self.requested), self.warmups)


def test_metrics_hand_computed() -> None:
    # 4 steps of 15 s, capacity 10 req/s, lead 15 s; demand 10, 30, 30, 10; requested 1, 3, 3, 1.
    tr = Trace.of_steps(T0, pd.Timedelta(seconds=15), pd.Timedelta(seconds=30), np.array([10, 30, 30, 10.0]))
    params = SimParams(
        capacity_per_replica=10,
        startup=pd.Timedelta(seconds=15),
        warmup_time=pd.Timedelta(0),
        price_per_replica_hour=3.6,
        initial_replicas=1,
    )
    w = [
        Warmup(T0, 3, ramp_at=T0 + pd.Timedelta(seconds=15)),
        Warmup(T0 + pd.Timedelta(seconds=30), 3, ramp_at=T0),
    ]
    res = simulate(tr, FixedPolicy([1, 3, 3, 1], w), params)
    assert res.ready.tolist() == [1, 1, 3, 1]
    m = res.metrics
    assert m.short_time_share == pytest.approx(0.25)  # step 1: 30 demand vs 10 capacity
    assert m.short_interval_share == pytest.approx(0.5)  # first 30 s interval has a short step
    assert m.short_request_share == pytest.approx(20 * 15 / (80 * 15))
    assert (m.worst_shortfall_rps, m.worst_shortfall_pct) == (pytest.approx(20.0), pytest.approx(2 / 3))
    assert m.replica_hours == pytest.approx(8 * 15 / 3600)
    assert m.cost == pytest.approx(8 * 15 / 3600 * 3.6)
    assert (m.scaling_actions, m.peak_replicas, m.warmups_issued, m.warmups_before_ramp) == (2, 3, 2, 1)


def step_trace(low: float = 10.0, high: float = 50.0, minutes: int = 120) -> Trace:
    values = [low] * (minutes // 2) + [high] * (minutes // 2)
    return make_trace(rate_series(values, minutes=1))


@pytest.mark.parametrize("lead_s", [0, 60, 120, 600], ids=["no-lead", "1m", "2m", "10m"])
def test_oracle_is_never_short_and_minimal(lead_s: int) -> None:
    tr = step_trace()
    params = SimParams(
        capacity_per_replica=10, startup=pd.Timedelta(seconds=lead_s), warmup_time=pd.Timedelta(0)
    )
    res = simulate(tr, OraclePolicy(), params)
    assert res.metrics.short_time_share == 0
    steps_early = int(np.ceil(lead_s / 15))
    assert int((res.requested == 5).sum()) == len(tr.rate) // 2 + steps_early  # raised exactly lead ahead
    assert set(res.requested.tolist()) == {1, 5}


def test_reactive_lags_by_the_lead_on_a_step() -> None:
    tr = step_trace()
    params = SimParams(
        capacity_per_replica=10, startup=pd.Timedelta(seconds=90), warmup_time=pd.Timedelta(seconds=30)
    )
    res = simulate(tr, ReactivePolicy(), params)
    short = res.frame()["shortfall"] > 0
    # observes the step one 15 s step late, then pods need 120 s: 9 short steps of 15 s.
    assert int(short.sum()) == 9
    assert res.requested[-1] == 8  # ceil(50 / (10 * 0.7))
    assert res.metrics.short_time_share > 0


def test_cron_follows_local_hours() -> None:
    start = pd.Timestamp("2026-11-02T00:00:00", tz="Asia/Jakarta")
    tr = make_trace(rate_series([1.0] * 180, start=start))
    hourly = [2] * 24
    hourly[1] = 7
    res = simulate(tr, CronPolicy(hourly=hourly), SimParams(capacity_per_replica=10))
    by_hour = (
        pd.Series(res.requested, index=tr.times.tz_convert("Asia/Jakarta")).groupby(lambda t: t.hour).max()
    )
    assert by_hour.to_dict() == {0: 2, 1: 7, 2: 2}
    fixed = simulate(tr, CronPolicy(fixed=4), SimParams(capacity_per_replica=10))
    assert set(fixed.requested.tolist()) == {4}


def test_compare_relative_to_oracle() -> None:
    tr = step_trace()
    params = SimParams(capacity_per_replica=10)
    table = compare([simulate(tr, p, params) for p in (ReactivePolicy(), OraclePolicy())])
    assert table.loc["oracle", "vs_oracle_replica_hours"] == 1.0
    assert table.loc["reactive", "vs_oracle_replica_hours"] > 1.0


def test_recorded_replicas_are_measured_as_they_ran() -> None:
    """The replicas actually run (a step series of counts) are ready as recorded and billed as they ran."""
    tr = make_trace(rate_series([10.0] * 30 + [40.0] * 30))  # 1-min intervals, 15-s steps
    ran = pd.Series([1, 4, 4], index=[T0 - pd.Timedelta("5min"), T0 + pd.Timedelta("32min"),
                                      T0 + pd.Timedelta("59min")])
    res = replay_recorded(tr, ran, SimParams(capacity_per_replica=10, price_per_replica_hour=2.0))
    assert res.policy == "as run" and not res.issues_warmups
    assert res.ready.tolist() == [1] * 128 + [4] * 112
    m = res.metrics
    assert m.short_interval_share == pytest.approx(2 / 60)  # 40 req/s at 30 and 31 min with one replica
    assert m.replica_hours == pytest.approx((1 * 32 + 4 * 28) / 60)
    assert m.cost == pytest.approx(2 * m.replica_hours)
    assert res.notes == []
    with pytest.raises(UserError, match=r"starts .* after the replayed window starts"):
        late = pd.Series([3], index=[T0 + pd.Timedelta("1min")])
        replay_recorded(tr, late, SimParams(capacity_per_replica=10))
    early = replay_recorded(tr, pd.Series([3], index=[T0]), SimParams(capacity_per_replica=10))
    assert "its last count is carried" in early.notes[0]


def write_trace(tmp_path, values: list[float], minutes: int = 1) -> str:
    path = tmp_path / "trace.csv"
    s = rate_series(values, minutes=minutes)
    pd.DataFrame({"timestamp": s.index.strftime("%Y-%m-%dT%H:%M:%S%z"), "value": s.values}).to_csv(
        path, index=False
    )
    return str(path)


def test_cli_json_table(tmp_path, run_cli, capsys) -> None:
    path = write_trace(tmp_path, [10.0] * 600 + [40.0] * 600 + [10.0] * 240)
    rc = run_cli(
        [
            "simulate",
            "--trace",
            path,
            "--capacity-per-replica",
            "10",
            "--policy",
            "reactive,cron,oracle",
            "--start",
            "6h",
            "--json",
            "--price-per-replica-hour",
            "2",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["policies"]) == {"reactive", "cron", "oracle"}
    assert doc["policies"]["oracle"]["short_time_share"] == 0
    assert doc["policies"]["reactive"]["cost"] == pytest.approx(
        2 * doc["policies"]["reactive"]["replica_hours"]
    )
    rc = run_cli(["simulate", "--trace", path, "--capacity-per-replica", "10", "--policy", "oracle"])
    assert rc == 0 and "replica-hours vs oracle" in capsys.readouterr().out


def test_cli_table_says_what_it_does_not_know(tmp_path, run_cli, capsys) -> None:
    """No price: cost n/a, not 0.0. A policy that makes no warm-up calls shows '-' and a note says why.
    Durations read like the flags (1d, 15s), never as pandas reprs."""
    path = write_trace(tmp_path, [10.0] * 600 + [40.0] * 600 + [10.0] * 240)
    argv = ["simulate", "--trace", path, "--capacity-per-replica", "10", "--policy", "reactive,oracle",
            "--start", "6h"]
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in out.splitlines()[3:] if "  " in line}
    assert rows["cost"] == ["n/a", "n/a"]
    assert rows["warm-ups issued"] == ["-", "-"]
    assert "note: warm-ups: reactive, oracle show '-': they are baselines replayed without warm-up" in out
    assert not re.search(r"\d days|\d\d:\d\d:\d\d ", out) and "(18h in 4,320 steps of 15s)" in out
    assert run_cli([*argv, "--price-per-replica-hour", "1.5", "--currency", "USD"]) == 0
    priced = capsys.readouterr().out
    (cost,) = [line for line in priced.splitlines() if line.startswith("cost (USD)")]
    assert all(c != "n/a" and float(c.replace(",", "")) > 0 for c in cost.split()[-2:])


def test_cli_coarser_step_ticks_less_often(tmp_path, run_cli, capsys) -> None:
    path = write_trace(tmp_path, [10.0] * 600 + [40.0] * 600 + [10.0] * 240, minutes=5)
    base = ["simulate", "--trace", path, "--capacity-per-replica", "10", "--policy", "reactive,oracle"]
    docs = {}
    for step in (None, "5m"):
        assert run_cli([*base, "--start", "2d", "--json", *(["--step", step] if step else [])]) == 0
        docs[step] = json.loads(capsys.readouterr().out)
    assert docs[None]["step_seconds"] == 15 and docs["5m"]["step_seconds"] == 300
    assert docs["5m"]["policies"]["oracle"]["short_time_share"] == 0
    assert docs["5m"]["policies"]["reactive"]["replica_hours"] == pytest.approx(
        docs[None]["policies"]["reactive"]["replica_hours"], rel=0.2
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "magic"], "unknown policy magic"),
        (["--capacity-per-replica", "0"], "--capacity-per-replica: must be a positive rate"),
        (["--startup", "2d"], "--startup: must be between 0s and 1h, got 2d"),
        (["--cron", "1,2,3"], "24 hourly"),
        (["--start", "90d"], "leaves nothing"),
        (["--step", "7s"], "must divide the trace interval"),
        (["--workers", "-1", "--policy", "predictive"], "--workers: must be 0 or more, got -1"),
    ],
    ids=[
        "unknown-policy",
        "zero-capacity",
        "startup-out-of-range",
        "bad-cron",
        "start-beyond-trace",
        "step-not-dividing-interval",
        "negative-workers",
    ],
)
def test_cli_bad_input_exit_2(tmp_path, run_cli, capsys, argv: list[str], message: str) -> None:
    path = write_trace(tmp_path, [10.0] * 240)
    base = ["simulate", "--trace", path, "--capacity-per-replica", "10", "--policy", "cron,oracle"]
    rc = run_cli(base + argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err


def test_cli_trace_shorter_than_startup_exits_2(tmp_path, run_cli, capsys) -> None:
    path = write_trace(tmp_path, [10.0] * 30)
    argv = ["simulate", "--trace", path, "--capacity-per-replica", "10", "--policy", "cron"]
    assert run_cli([*argv, "--startup", "45m"]) == 2
    err = capsys.readouterr().err
    assert "start-up delay" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_predictive_uses_the_real_pipeline(tmp_path, run_cli, capsys) -> None:
    idx = pd.date_range(T0, periods=10 * 24 * 6, freq="10min")
    hours = np.asarray(idx.hour + idx.minute / 60)
    values = (100 + 80 * ((hours >= 8) & (hours < 20))).tolist()
    path = tmp_path / "wave.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "value": values}).to_csv(path, index=False)
    rc = run_cli(
        [
            "simulate",
            "--trace",
            str(path),
            "--capacity-per-replica",
            "10",
            "--policy",
            "predictive,reactive",
            "--start",
            "8d",
            "--refit",
            "12h",
            "--json",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    pred, reac = doc["policies"]["predictive"], doc["policies"]["reactive"]
    assert pred["short_time_share"] == 0.0 < reac["short_time_share"]
    assert any("forecastMaxAge raised to 13h to cover the 12h refit cadence" in n for n in pred["notes"])
    # Warm-ups are planned as in `plan` (one definition), and only the predictive policy issues them.
    assert pred["issues_warmups"] and pred["warmups_issued"] > 0 and not reac["issues_warmups"]
    assert pred["cost"] is None  # no price given
    assert run_cli([*argv_of(path), "--no-warmup", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policies"]["predictive"]["warmups_issued"] == 0


def argv_of(path) -> list[str]:
    return ["simulate", "--trace", str(path), "--capacity-per-replica", "10", "--policy", "predictive",
            "--start", "8d", "--refit", "12h"]


@pytest.mark.slow
def test_cli_workers_change_the_time_not_the_result(tmp_path, run_cli, capsys) -> None:
    """With worker processes (refits ahead, baselines beside) the JSON is the one made in this process."""
    idx = pd.date_range(T0, periods=10 * 24 * 6, freq="10min")
    hours = np.asarray(idx.hour + idx.minute / 60)
    path = tmp_path / "wave.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in idx],
                  "value": (100 + 80 * ((hours >= 8) & (hours < 20))).tolist()}).to_csv(path, index=False)
    argv = [*argv_of(path)[:-5], "all", "--start", "8d", "--refit", "12h", "--json"]
    docs = []
    for workers in ("0", "2"):
        assert run_cli([*argv, "--workers", workers]) == 0
        doc = json.loads(capsys.readouterr().out)
        for policy in doc["policies"].values():
            policy.pop("seconds")
        docs.append(doc)
    assert docs[0] == docs[1]
    assert list(docs[0]["policies"]) == ["predictive", "reactive", "cron", "oracle"]
