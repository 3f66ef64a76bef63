"""``forecast-job --fleet`` on the real API server and a real Prometheus: one run, one artifact per scaler.

Three scalers share a namespace: one whose query returns the backfilled trace, one whose query returns
nothing (it held a forecast from an earlier run), one without ``spec.history``. The job runs as a service
account holding only the RBAC the chart must grant it (list PredictiveScalers; get, create and update
ConfigMaps), and the fleet controller's own ConfigMap informer then reads what was written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from controller.adapters.cached import CachedForecastStore
from controller.adapters.informer import CONFIGMAPS, Informer
from controller.cli import main
from controller.fleet.reconciler import FORECAST_SELECTOR
from controller.fleet.spec import GROUP, PLURAL
from tests.controller.fleet.conftest import Cluster, artifact
from tests.support.promserver import PromServer, prometheus_server  # noqa: F401

pytestmark = [pytest.mark.kube, pytest.mark.prometheus, pytest.mark.slow]

JOB_RULES = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
]


def job_kubeconfig(cluster: Cluster, tmp_path: Path) -> Path:
    """A kubeconfig for a service account granted only JOB_RULES in the cluster's namespace."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_namespaced_role(cluster.ns, {"metadata": {"name": "fleet-job"}, "rules": JOB_RULES})
    rbac.create_namespaced_role_binding(cluster.ns, {
        "metadata": {"name": "fleet-job"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "fleet-job"},
        "subjects": [{"kind": "ServiceAccount", "name": "fleet-job", "namespace": cluster.ns}],
    })
    token = cluster.env.service_account_token(cluster.ns, "fleet-job")
    return cluster.env.write_kubeconfig(tmp_path / "job.kubeconfig", token=token, namespace=cluster.ns)


def write_config(tmp_path: Path, prom: PromServer, namespace: str) -> Path:
    data = {
        "source": {"kind": "prometheus", "prometheus": {"url": prom.url, "step": "5m", "retries": 0}},
        "forecast": {"horizon": "6h", "interval": "1h", "history": "3d", "model": "seasonal_median"},
        "fleet": {"namespaces": [namespace]},
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def three_scalers(cluster: Cluster, prom: PromServer, now: pd.Timestamp) -> str:
    """good / empty / nohistory; ``empty`` already holds a forecast. Returns that forecast's stored text."""
    cluster.scaler("good", "good", history={"query": prom.metric}, calendar={"monthStart": False})
    cluster.scaler("empty", "empty", history={"query": f'{prom.metric}{{job="nothing-here"}}'})
    cluster.scaler("nohistory", "nohistory")
    cluster.forecast("empty", artifact(now - pd.Timedelta(hours=1), level=123.0))
    return str(cluster.core.read_namespaced_config_map("empty-forecast", cluster.ns).data["forecast.json"])


def read_back(cluster: Cluster, name: str) -> Any:
    """The scaler's forecast as the fleet controller reads it: its labelled-ConfigMap informer."""
    informer = Informer(cluster.api, CONFIGMAPS, namespaces=[cluster.ns], label_selector=FORECAST_SELECTOR)
    informer.start()
    try:
        assert informer.wait_synced(20)
        return CachedForecastStore(informer, namespace=cluster.ns, name=f"{name}-forecast").read()
    finally:
        informer.stop()


def run_job(
    cluster: Cluster, prom: PromServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
) -> tuple[int, pd.Timestamp, str, float]:
    now = prom.trace.index[-1] + pd.Timedelta(seconds=10)
    before = three_scalers(cluster, prom, now)
    config = write_config(tmp_path, prom, cluster.ns)
    kubeconfig = job_kubeconfig(cluster, tmp_path)
    monkeypatch.setattr("controller.cli.fleet_job._now", lambda: now)
    t0 = time.perf_counter()
    code = main(["forecast-job", "--config", str(config), "--once", "--fleet",
                 "--kubeconfig", str(kubeconfig), *flags])
    seconds = time.perf_counter() - t0
    kept = cluster.core.read_namespaced_config_map("empty-forecast", cluster.ns).data["forecast.json"]
    assert kept == before, "a failed scaler's ConfigMap is left exactly as it was"
    return code, now, before, seconds


def check_good(cluster: Cluster, prom: PromServer, now: pd.Timestamp) -> None:
    art = read_back(cluster, "good")
    assert art is not None, "the controller's informer sees the new forecast"
    assert art.created_at == now and art.model == "seasonal_median" and len(art.intervals) == 6
    assert art.source.endswith(f": {prom.metric}")
    first, last = prom.trace.first_valid_index(), prom.trace.last_valid_index()
    assert (art.history_start, art.history_end) == (first, last + prom.step), "the whole 3-day trace"
    assert "month_start" not in [e.kind for e in art.events]  # the scaler's own calendar
    assert 0 < max(i.peak_upper for i in art.intervals) < 10 * float(prom.trace.max())
    old = read_back(cluster, "empty")
    assert old is not None and old.intervals[0].yhat == 123.0, "the failed scaler keeps its last forecast"
    assert read_back(cluster, "nohistory") is None, "a skipped scaler gets no forecast written"


def test_one_run_writes_each_scalers_forecast_and_isolates_failures(
    cluster: Cluster, prom: PromServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, now, _, seconds = run_job(cluster, prom, tmp_path, monkeypatch, "--workers", "1")
    out = capsys.readouterr().out
    assert code == 3, out  # one scaler failed; the others were still written
    assert "3 scalers, 1 succeeded, 1 failed, 1 skipped; engine in-process" in out, out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith(f"  {cluster.ns}/")}
    assert lines[f"{cluster.ns}/good"].split()[1] == "succeeded"
    assert lines[f"{cluster.ns}/empty"].split()[1] == "failed" and "no samples" in out
    assert lines[f"{cluster.ns}/nohistory"].split()[1] == "skipped"
    check_good(cluster, prom, now)
    print(f"fleet job, 3 scalers in-process: {seconds:.1f}s")


def test_the_series_run_on_a_dask_cluster(
    cluster: Cluster, prom: PromServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as dask:
        code, now, _, seconds = run_job(cluster, prom, tmp_path, monkeypatch,
                                        "--dask-scheduler", dask.scheduler_address)
    out = capsys.readouterr().out
    assert code == 3 and "1 succeeded, 1 failed, 1 skipped; engine dask(2 workers, 2 threads)" in out, out
    check_good(cluster, prom, now)
    print(f"fleet job, 3 scalers on Dask: {seconds:.1f}s")
