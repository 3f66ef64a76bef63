"""The fleet's /metrics: every per-scaler series carries ``namespace`` and ``scaler``, the exposition passes
``promtool check metrics``, and what the dashboard and the alerts read is there per scaler: the forecast's
backtest error, the live load's need, the Ready condition."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from controller.adapters.health import HealthServer
from controller.adapters.informer import wait_for
from controller.fleet.reconciler import FleetController, FleetDeps
from tests.controller.fleet.conftest import Cluster, FakeLoad, artifact
from tests.support.tools import require_tool

pytestmark = pytest.mark.kube

PROCESS_WIDE = {"recharge_autoscaler_leader", "recharge_autoscaler_dry_run"}


def test_fleet_metrics_of_two_scalers(cluster: Cluster) -> None:
    now = pd.Timestamp.now(tz="UTC")
    for name, mode in (("alpha", "hpa"), ("beta", "scale")):
        cluster.deployment(name, replicas=3)
        if mode == "hpa":
            cluster.hpa(name)
        cluster.forecast(name, artifact(now, level=1000.0))
        cluster.scaler(name, name, mode=mode, load={"query": "q"})
    cluster.scaler("broken", "missing", load={"query": "q"})  # no such Deployment: not Ready
    fleet = FleetController(FleetDeps(api_client=cluster.api, namespaces=[cluster.ns],
                                      load_for=lambda cfg: FakeLoad(400.0))).start(wait=30)
    server = HealthServer(fleet.deps.health, fleet.deps.metrics, host="127.0.0.1", health_port=0,
                          metrics_port=0).start()
    try:
        assert wait_for(lambda: len(fleet.scalers) == 3, 20)
        assert fleet.tick(now).scalers == 3
        body = requests.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).content
    finally:
        server.stop()
        fleet.stop()
    check = subprocess.run([require_tool("promtool"), "check", "metrics"], input=body, capture_output=True,
                           timeout=60, check=False)
    assert check.returncode == 0, (check.stdout + check.stderr).decode()

    samples = [s for fam in text_string_to_metric_families(body.decode()) for s in fam.samples
               if s.name.startswith("recharge_autoscaler_")]
    scoped = [s for s in samples if s.name not in PROCESS_WIDE]
    assert scoped
    unlabelled = sorted({s.name for s in scoped if not {"namespace", "scaler"} <= set(s.labels)})
    assert unlabelled == []
    assert {s.labels["scaler"] for s in scoped} == {"alpha", "beta", "broken"}
    assert {s.labels["namespace"] for s in scoped} == {cluster.ns}

    def value(name: str, scaler: str) -> float:
        return next(s.value for s in scoped if s.name == name and s.labels["scaler"] == scaler)

    ready = {(s.labels["scaler"], s.labels["reason"]): s.value for s in scoped
             if s.name == "recharge_autoscaler_scaler_ready"}
    assert ready == {("alpha", "Reconciled"): 1, ("beta", "Reconciled"): 1, ("broken", "TargetNotFound"): 0}
    for scaler in ("alpha", "beta"):
        assert value("recharge_autoscaler_forecast_backtest_wape", scaler) == pytest.approx(0.042)
        # 400 req/s live x 1.1 headroom / 50 req/s per replica
        assert value("recharge_autoscaler_needed_replicas", scaler) == 9
        assert value("recharge_autoscaler_desired_replicas", scaler) >= 6
