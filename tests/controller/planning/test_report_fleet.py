"""Tests of `report --fleet`: the page's numbers are its CSVs, the totals add up, each service's plan is the
plan `plan` makes, who hits max and the calendar follow the plans, and a broken scaler is left out alone."""

from __future__ import annotations

import contextlib
import html
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from controller import cli
from controller.cli.fleet_report import history_file, read_scalers
from forecaster.errors import UserError
from tests.controller.planning.test_report import parse

API = "autoscaling.recharge-autoscaler.io/v1alpha1"
# (namespace, name): base req/s, evening amplitude, peak hour, max replicas. At 10 req/s per replica the
# recharge API's peak band needs ~25 replicas: its max of 20 holds it back every evening.
SERVICES = {
    ("payments", "recharge-api"): (100.0, 120.0, 19, 20),
    ("payments", "topup-worker"): (40.0, 30.0, 12, 40),
    ("billing", "invoices"): (20.0, 60.0, 9, 40),
}


def scaler(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PredictiveScaler", "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"name": name}, "capacityPerReplica": 10, "minReplicas": 2, **spec}}


def write_fleet(tmp: Path) -> tuple[Path, Path]:
    idx = pd.date_range("2026-10-19T00:00:00Z", periods=28 * 24 * 4, freq="15min")
    hours = np.asarray(idx.hour + idx.minute / 60)
    rng = np.random.default_rng(11)
    items = []
    for (ns, name), (base, amp, peak, hi) in SERVICES.items():
        y = base + amp * np.exp(-((hours - peak) ** 2) / 6) + rng.normal(0, 3, len(idx))
        path = tmp / "hist" / (f"{ns}/{name}.csv" if ns == "payments" else f"{name}.csv")  # both layouts
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "value": y.round(2)})
        frame.to_csv(path, index=False)
        items.append(scaler(ns, name, maxReplicas=hi))
    items.append(scaler("billing", "no-history"))
    items.append(scaler("billing", "inverted", minReplicas=5, maxReplicas=2))
    doc = tmp / "scalers.yaml"
    doc.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}), encoding="utf-8")
    return doc, tmp / "hist"


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, Path]:
    tmp = tmp_path_factory.mktemp("fleet-report")
    doc, hist = write_fleet(tmp)
    out = tmp / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.report",))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            rc = cli.main(["report", "--fleet", str(doc), "--history-dir", str(hist), "--output", str(out),
                           "--horizon", "3d", "--model", "seasonal_median", "--price-per-replica-hour", "0.5",
                           "--currency", "EUR", "--quiet"])
    finally:
        mp.undo()
    return out, rc, err.getvalue(), hist


def csv(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name)


@pytest.mark.slow
def test_numbers_on_the_page_are_the_csvs(fleet_dir: tuple[Path, int, str, Path]) -> None:
    out = fleet_dir[0]
    page = parse(out / "index.html")
    linked = {name: rows for name, rows in page.tables if name}
    assert set(linked) == {"days.csv", "services.csv", "at_max.csv", "calendar.csv"}
    for name, rows in linked.items():
        frame = pd.read_csv(out / name, dtype=str, keep_default_na=False)
        assert rows[0] == list(frame.columns), name
        assert rows[1:] == frame.to_numpy().tolist(), name
    assert {"total.csv", "plans.csv", "peaks.csv"} <= set(page.links)
    text = (out / "index.html").read_text()
    cards = [(html.unescape(label), html.unescape(value)) for value, label in
             re.findall(r'<div class="v">([^<]*)</div><div class="l">([^<]*)</div>', text)]
    totals = pd.read_csv(out / "totals.csv", dtype=str, keep_default_na=False)
    assert cards == list(totals.itertuples(index=False, name=None))  # every card is a row of totals.csv
    assert set(page.charts) == {"fleet"}
    assert any(i.startswith("fleet-xlabel-") and t for i, t in page.ids.items())


@pytest.mark.slow
def test_the_totals_add_up(fleet_dir: tuple[Path, int, str, Path]) -> None:
    out = fleet_dir[0]
    totals = dict(pd.read_csv(out / "totals.csv", dtype=str).itertuples(index=False, name=None))
    names = ("plans.csv", "services.csv", "total.csv", "days.csv")
    plans, services, total, days = (csv(out, n) for n in names)
    assert totals["services"] == "3" and len(services) == 3
    rh = plans["replica_hours"].sum()
    assert float(totals["replica-hours over 3d"]) == pytest.approx(rh, abs=0.06)
    assert float(totals["cost (EUR) over 3d"]) == pytest.approx(rh * 0.5, abs=0.01)
    assert services["replica-hours"].sum() == pytest.approx(rh, abs=0.2)
    assert days["replica-hours"].sum() == pytest.approx(rh, abs=0.2)
    # The fleet at each instant is the sum of every service's current interval (a step function each).
    for _, row in total.sample(25, random_state=1).iterrows():
        at = pd.Timestamp(row["ds"])
        current = [g[pd.to_datetime(g["ds"], utc=True) <= at].tail(1) for _, g in plans.groupby("service")]
        assert row["replicas planned"] == sum(int(c["replicas"].iloc[0]) for c in current if len(c))
    peak = int(totals["fleet peak replicas (all services at once)"])
    assert peak == total["replicas planned"].max() == days["fleet peak replicas"].max()
    own = int(totals["sum of each service's peak replicas"])
    assert own == services["most replicas planned"].sum() and peak <= own
    assert list(services["replica-hours"]) == sorted(services["replica-hours"], reverse=True)


@pytest.mark.slow
def test_each_service_is_planned_as_plan_plans_it(fleet_dir: tuple[Path, int, str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out, hist = fleet_dir[0], fleet_dir[3]
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.plan",))
    rc = cli.main(["plan", "--history", str(hist / "payments" / "recharge-api.csv"), "--capacity-per-replica",
                   "10", "--min-replicas", "2", "--max-replicas", "20", "--horizon", "3d", "--model",
                   "seasonal_median", "--output", str(tmp_path / "plan.csv"), "--quiet"])
    assert rc == 0
    single = pd.read_csv(tmp_path / "plan.csv")
    mine = csv(out, "plans.csv").query("service == 'payments/recharge-api'").reset_index(drop=True)
    assert list(mine["ds"]) == list(single["ds"])
    assert list(mine["replicas"]) == list(single["replicas"]) and list(mine["need"]) == list(single["need"])


@pytest.mark.slow
def test_who_hits_max_and_the_calendar_follow_the_plans(fleet_dir: tuple[Path, int, str, Path]) -> None:
    out = fleet_dir[0]
    at_max, services, peaks, cal = (csv(out, n) for n in ("at_max.csv", "services.csv", "peaks.csv",
                                                          "calendar.csv"))
    assert set(at_max["service"]) == {"payments/recharge-api"}  # its max of 20 < the ~25 its peaks need
    assert len(at_max) == 3 and (at_max["replicas needed"] > at_max["max replicas"]).all()
    held = services.set_index("service")["hours at max"]
    assert held["payments/recharge-api"] == pytest.approx(at_max["hours"].sum(), abs=0.2)
    assert held.drop("payments/recharge-api").eq(0).all()
    first = pd.read_csv(out / "totals.csv").set_index("item")["value"]["first time a service is held at max"]
    assert first == at_max["from"].iloc[0]
    assert list(cal["service"]) == list(services["service"])  # same order as the services table
    for _, p in peaks.iterrows():
        cell = cal.set_index("service").loc[p["service"], f"{p['day'][:3]} {p['day'][9:]}"]
        assert cell == f"{p['peak at']} {p['replicas needed']}" + (" max" if p["at max"] == "yes" else "")
    evenings = peaks[peaks["service"] == "payments/recharge-api"]["peak at"]
    assert evenings.str[:2].astype(int).between(18, 20).all()  # its peaks are in the evening


@pytest.mark.slow
def test_a_broken_scaler_is_left_out_alone(fleet_dir: tuple[Path, int, str, Path]) -> None:
    out, rc, err, _ = fleet_dir
    assert rc == 1
    assert "billing/no-history: no history file" in err
    assert "billing/inverted: " in err and "must be >= minReplicas" in err
    page = (out / "index.html").read_text()
    assert "Not included" in page and "billing/no-history" in page
    assert "billing/inverted" not in set(csv(out, "services.csv")["service"])


def test_scalers_come_from_kubectl_output_or_documents(tmp_path: Path) -> None:
    docs = tmp_path / "docs.yaml"
    docs.write_text(yaml.safe_dump_all([scaler("a", "x"), {"apiVersion": "v1", "kind": "ConfigMap"},
                                        {**scaler("b", "y"), "metadata": {"name": "y"}}]), encoding="utf-8")
    assert [(ns, n) for ns, n, _ in read_scalers(str(docs))] == [("a", "x"), ("default", "y")]
    (tmp_path / "h" / "a").mkdir(parents=True)
    (tmp_path / "h" / "x.csv").write_text("t,v\n")
    assert history_file(tmp_path / "h", "a", "x") == tmp_path / "h" / "x.csv"
    (tmp_path / "h" / "a" / "x.parquet").write_text("")
    assert history_file(tmp_path / "h", "a", "x") == tmp_path / "h" / "a" / "x.parquet"  # namespace first
    with pytest.raises(UserError, match="no PredictiveScaler found"):
        (tmp_path / "none.yaml").write_text("kind: ConfigMap\n")
        read_scalers(str(tmp_path / "none.yaml"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fleet", "S", "--history-dir", "H", "--capacity-per-replica", "5"],
         "--capacity-per-replica: not used with --fleet"),
        (["--fleet", "S"], "--history-dir: required with --fleet"),
        ([], "--history: required (or --fleet"),
        (["--history", "h.csv", "--history-dir", "H"], "--history-dir: only with --fleet"),
    ],
    ids=["replica-flag", "no-history-dir", "neither", "dir-without-fleet"],
)
def test_bad_flags_fail_fast_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], argv: list[str],
                                           message: str) -> None:
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.report",))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--output", "out", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "out" / "index.html").exists()


@pytest.mark.slow
def test_a_fleet_report_that_fails_midway_leaves_the_previous_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import controller.planning.report_fleet as fleet_mod

    doc, hist = write_fleet(tmp_path)
    out = tmp_path / "rep"
    out.mkdir()
    previous = {"index.html": "previous report", "services.csv": "previous services"}
    for name, text in previous.items():
        (out / name).write_text(text)

    def broken(*args: object, **kwargs: object) -> str:
        raise UserError("rendering failed")

    monkeypatch.setattr(fleet_mod, "render", broken)
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.report",))
    rc = cli.main(["report", "--fleet", str(doc), "--history-dir", str(hist), "--output", str(out),
                   "--horizon", "1d", "--model", "snaive", "--quiet"])
    assert rc == 2 and "rendering failed" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
