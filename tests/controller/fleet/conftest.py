"""A real API server with the PredictiveScaler CRD installed, and builders for scalers and their targets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from controller.fleet.spec import API_VERSION, GROUP, KIND, PLURAL, VERSION, crd
from controller.ports import ObservedLoad
from forecaster.adapters.configmap_store import ConfigMapStore
from forecaster.artifact import ForecastArtifact, Interval
from tests.support.kube_envtest import KubeEnvtest

if TYPE_CHECKING:
    from controller.fleet.reconciler import FleetController


@pytest.fixture(scope="session")
def crd_installed(kube_apiserver: KubeEnvtest) -> KubeEnvtest:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ext = client.ApiextensionsV1Api(kube_apiserver.api_client())
    try:
        ext.create_custom_resource_definition(crd())
    except ApiException as exc:
        if exc.status != 409:
            raise
    name = f"{PLURAL}.{GROUP}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conds = ext.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conds):
            return kube_apiserver
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not established")


class FakeLoad:
    """The live load of a scaler: a fixed rate sampled now."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def describe(self) -> str:
        return "fake"

    def current(self, now: pd.Timestamp) -> ObservedLoad:
        return ObservedLoad(self.rate, now)


def artifact(
    now: pd.Timestamp, level: float, *, hours: int = 3, peak_at: int | None = None
) -> ForecastArtifact:
    """5-minute intervals from just before ``now`` at ``level`` req/s (band +-10%, peak band +20%); with
    ``peak_at``, that interval is 10% higher (a distinct next peak)."""
    step = pd.Timedelta("5min")
    start = now.floor("5min") - step
    n = hours * 12
    lv = [level * (1.1 if i == peak_at else 1.0) for i in range(n)]
    ivs = tuple(Interval(start + i * step, v, v * 0.9, v * 1.1, v * 1.2) for i, v in enumerate(lv))
    return ForecastArtifact(
        created_at=now, model="seasonal_median", timezone="UTC", interval_seconds=300, band_level=0.9,
        history_start=start - pd.Timedelta(days=14), history_end=start, history_points=4032, source="test",
        horizon_seconds=300 * n, intervals=ivs, backtest={"wape": 0.042, "mape": 0.05, "bias": 0.0,
                                                          "coverage": 0.9, "folds": 14.0},
    )


class Cluster:
    """Builders against the real API server, for one namespace."""

    def __init__(self, env: KubeEnvtest, namespace: str) -> None:
        from kubernetes import client

        self.env, self.ns = env, namespace
        self.api = env.api_client()
        self.apps = client.AppsV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def deployment(self, name: str, replicas: int = 3) -> None:
        self.apps.create_namespaced_deployment(self.ns, {
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "recharge:1"}]}}},
        })

    def hpa(self, name: str, lo: int = 2, hi: int = 60) -> None:
        self.autoscaling.create_namespaced_horizontal_pod_autoscaler(self.ns, {
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": lo, "maxReplicas": hi,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
        })

    def forecast(self, scaler: str, art: ForecastArtifact) -> None:
        ConfigMapStore(self.core, self.ns, f"{scaler}-forecast").write(art)

    def scaler(self, name: str, target: str, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name},
                "spec": {"scaleTargetRef": {"name": target}, "capacityPerReplica": 50,
                         "minReplicas": 2, "maxReplicas": 60, **spec}}
        return dict(self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body))

    def get_scaler(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name))

    def patch_scaler(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec})

    def delete_scaler(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def hpa_floor(self, name: str) -> int:
        hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, self.ns)
        return int(hpa.spec.min_replicas)

    def replicas(self, name: str) -> int:
        return int(self.apps.read_namespaced_deployment(name, self.ns).spec.replicas)


def caught_up(fleet: FleetController) -> bool:
    """Every status, HPA floor and replica count the controller wrote is back in its informer caches."""
    for (ns, name), rt in list(fleet._runtimes.items()):
        obj = fleet.scalers.get(ns, name)
        if rt.written is not None and (obj is None or obj.get("status") != rt.written):
            return False
        target = rt.loop.deps.target if rt.loop is not None else None
        applied = getattr(target, "last_applied", None)
        if target is None or applied is None:
            continue
        if target.mode == "hpa":
            hpa = fleet.hpas.get(ns, target.hpa_name) or {}
            if (hpa.get("spec") or {}).get("minReplicas") != applied:
                return False
        else:
            dep = fleet.deployments.get(ns, target.name) or {}
            if (dep.get("spec") or {}).get("replicas") != applied:
                return False
    return True


@pytest.fixture
def cluster(crd_installed: KubeEnvtest) -> Iterator[Cluster]:
    yield Cluster(crd_installed, crd_installed.create_namespace("fleet"))
