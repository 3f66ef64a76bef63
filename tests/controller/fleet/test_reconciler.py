"""The fleet controller against the real API server: scalers reconcile, edits act within a tick, a broken
scaler is isolated, deletions are forgotten, and a steady fleet writes nothing."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

from controller.adapters.informer import wait_for
from controller.fleet.reconciler import FleetController, FleetDeps
from tests.controller.fleet.conftest import Cluster, FakeLoad, artifact

pytestmark = pytest.mark.kube


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def _fleet(cluster: Cluster, rate: float = 400.0) -> FleetController:
    deps = FleetDeps(api_client=cluster.api, namespaces=[cluster.ns], load_for=lambda cfg: FakeLoad(rate))
    return FleetController(deps).start(wait=30)


def _run(fleet: FleetController, start: pd.Timestamp, n: int) -> list[Any]:
    """``n`` ticks 30 s apart, each after the caches have seen the previous tick's writes."""
    out = []
    for i in range(n):
        out.append(fleet.tick(start + pd.Timedelta(seconds=30 * i)))
        time.sleep(0.3)
    return out


def _settle(fleet: FleetController, cluster: Cluster, names: list[str]) -> None:
    """Wait until the scaler cache has seen every named scaler (the API server answered the creates)."""
    assert wait_for(lambda: all(fleet.scalers.get(cluster.ns, n) is not None for n in names), 20)


def test_scalers_reconcile_and_report_status(cluster: Cluster) -> None:
    now = pd.Timestamp.now(tz="UTC")
    for name, mode in (("hpa-mode", "hpa"), ("scale-mode", "scale")):
        cluster.deployment(name, replicas=3)
        if mode == "hpa":
            cluster.hpa(name, lo=2)
        cluster.forecast(name, artifact(now, level=1000.0))
        cluster.scaler(name, name, mode=mode, load={"query": "sum(rate(recharge_requests_total[1m]))"})
    fleet = _fleet(cluster)
    try:
        _settle(fleet, cluster, ["hpa-mode", "scale-mode"])
        ticks = _run(fleet, now, 8)
        assert all((t.scalers, t.failed, t.invalid) == (2, 0, 0) for t in ticks)
        # 1,000 req/s peak band 1,200 at 50 req/s per replica: 24 replicas needed, set ahead of the load
        # (HPA-style rate limits let it climb over a few ticks).
        assert cluster.hpa_floor("hpa-mode") >= 24
        assert cluster.replicas("scale-mode") >= 24
        for name in ("hpa-mode", "scale-mode"):
            obj = cluster.get_scaler(name)
            conds = _conditions(obj)
            assert conds["Ready"]["status"] == "True", conds
            assert conds["ForecastFresh"]["status"] == "True"
            assert conds["Scaling"]["status"] == "True"
            assert obj["status"]["desiredReplicas"] >= 24
            assert obj["status"]["forecast"]["model"] == "seasonal_median"
            assert obj["status"]["forecast"]["nextPeakRate"] == pytest.approx(1200.0)
            assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    finally:
        fleet.stop()


def test_a_steady_fleet_writes_no_status(cluster: Cluster) -> None:
    now = pd.Timestamp.now(tz="UTC")
    cluster.deployment("steady", replicas=3)
    cluster.hpa("steady")
    cluster.forecast("steady", artifact(now, level=500.0, peak_at=30))
    cluster.scaler("steady", "steady", load={"query": "q"})
    fleet = _fleet(cluster)
    try:
        _settle(fleet, cluster, ["steady"])
        first = fleet.tick(now)
        assert first.status_writes == 1
        _run(fleet, now, 8)  # climb to the forecast's need, then hold
        later = _run(fleet, now + pd.Timedelta(minutes=5), 3)
        assert [t.status_writes for t in later] == [0, 0, 0]
    finally:
        fleet.stop()


def test_spec_edit_acts_on_the_next_tick(cluster: Cluster) -> None:
    now = pd.Timestamp.now(tz="UTC")
    cluster.deployment("edit", replicas=3)
    cluster.hpa("edit", hi=100)
    cluster.forecast("edit", artifact(now, level=1000.0))
    cluster.scaler("edit", "edit", load={"query": "q"})
    fleet = _fleet(cluster)
    try:
        _settle(fleet, cluster, ["edit"])
        _run(fleet, now, 8)
        before = cluster.hpa_floor("edit")
        cluster.patch_scaler("edit", {"capacityPerReplica": 20})  # each replica serves less: more needed
        assert wait_for(lambda: (fleet.scalers.get(cluster.ns, "edit") or {})["metadata"]["generation"] == 2,
                        20)
        fleet.tick(now + pd.Timedelta(seconds=300))
        assert cluster.hpa_floor("edit") > before
        obj = cluster.get_scaler("edit")
        assert obj["status"]["observedGeneration"] == 2
    finally:
        fleet.stop()


def test_a_broken_scaler_is_isolated(cluster: Cluster) -> None:
    now = pd.Timestamp.now(tz="UTC")
    cluster.deployment("good", replicas=3)
    cluster.hpa("good")
    cluster.forecast("good", artifact(now, level=1000.0))
    cluster.scaler("good", "good", load={"query": "q"})
    cluster.scaler("no-target", "missing", load={"query": "q"})
    # Valid for the CRD schema, refused by the controller's own rule (a file load needs a path).
    cluster.scaler("bad-spec", "good", load={"kind": "file"})
    fleet = _fleet(cluster)
    try:
        _settle(fleet, cluster, ["good", "no-target", "bad-spec"])
        ticks = _run(fleet, now, 8)
        assert all(t.scalers == 3 and t.invalid == 1 for t in ticks)
        assert cluster.hpa_floor("good") >= 24
        bad = _conditions(cluster.get_scaler("bad-spec"))["Ready"]
        assert (bad["status"], bad["reason"]) == ("False", "InvalidSpec")
        assert "spec.load.path" in bad["message"], bad
        missing = _conditions(cluster.get_scaler("no-target"))["Ready"]
        assert (missing["status"], missing["reason"]) == ("False", "TargetNotFound")
        assert "missing" in missing["message"]
    finally:
        fleet.stop()


def test_deleted_scaler_is_forgotten(cluster: Cluster) -> None:
    now = pd.Timestamp.now(tz="UTC")
    cluster.deployment("gone", replicas=3)
    cluster.hpa("gone")
    cluster.forecast("gone", artifact(now, level=1000.0))
    cluster.scaler("gone", "gone", load={"query": "q"})
    fleet = _fleet(cluster)
    try:
        _settle(fleet, cluster, ["gone"])
        fleet.tick(now)
        assert b'scaler="gone"' in fleet.deps.metrics.render()
        cluster.delete_scaler("gone")
        assert wait_for(lambda: fleet.scalers.get(cluster.ns, "gone") is None, 20)
        assert fleet.tick(now + pd.Timedelta(seconds=30)).scalers == 0
        assert b'scaler="gone"' not in fleet.deps.metrics.render()
    finally:
        fleet.stop()


def test_the_fleet_command_gives_a_scaler_with_warmups_its_client() -> None:
    from controller.cli.fleet import _warmup_client
    from controller.fleet.spec import controller_config, parse_spec

    base = {"scaleTargetRef": {"name": "recharge"}, "capacityPerReplica": 50, "load": {"query": "q"}}
    off = controller_config(parse_spec(base), namespace="payments")
    assert _warmup_client(off) is None
    on = controller_config(parse_spec({**base, "warmup": {"enabled": True,
                                                          "url": "http://recharge.payments.svc/warmup"}}),
                           namespace="payments")
    client = _warmup_client(on)
    assert client is not None and "recharge.payments.svc/warmup" in client.describe()
