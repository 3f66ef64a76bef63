"""The CRD the chart ships is the one the models generate, and kubectl reads a scaler like an HPA."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.controller.fleet.conftest import Cluster, artifact
from tests.support.tools import REPO_ROOT, require_tool

pytestmark = pytest.mark.kube


def test_committed_crd_matches_the_models() -> None:
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gen-crd.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_kubectl_get_shows_the_printer_columns(cluster: Cluster) -> None:
    import pandas as pd

    from controller.fleet.reconciler import FleetController, FleetDeps
    from tests.controller.fleet.conftest import FakeLoad

    now = pd.Timestamp.now(tz="UTC")
    cluster.deployment("recharge", replicas=3)
    cluster.hpa("recharge")
    cluster.forecast("recharge", artifact(now, level=1000.0, peak_at=20))
    cluster.scaler("recharge", "recharge", load={"query": "q"})
    fleet = FleetController(FleetDeps(api_client=cluster.api, namespaces=[cluster.ns],
                                      load_for=lambda cfg: FakeLoad(400.0))).start(wait=30)
    try:
        from controller.adapters.informer import wait_for

        assert wait_for(lambda: fleet.scalers.get(cluster.ns, "recharge") is not None, 20)
        fleet.tick(now)
    finally:
        fleet.stop()
    out = subprocess.run([require_tool("kubectl"), "get", "predictivescalers", "-n", cluster.ns],
                         capture_output=True, text=True, env=cluster.env.env(), timeout=60, check=True).stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "TARGET", "MODE", "MIN", "MAX", "REPLICAS", "DESIRED", "NEXT", "PEAK",
                              "REASON", "READY", "AGE"]
    cells = row.split()
    assert cells[:5] == ["recharge", "recharge", "hpa", "2", "60"]
    assert cells[-2] == "True"
    short = subprocess.run([require_tool("kubectl"), "get", "psc", "recharge", "-n", cluster.ns, "-o",
                            "jsonpath={.status.conditions[?(@.type=='Ready')].reason}"],
                           capture_output=True, text=True, env=cluster.env.env(), timeout=60, check=True)
    assert short.stdout == "Reconciled"
