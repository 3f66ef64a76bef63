"""The ConfigMap forecast store against the stand-in API server: create, replace, conflicts, limits."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from forecaster.adapters.configmap_store import MAX_BYTES, ConfigMapStore
from forecaster.artifact import ForecastArtifact, Interval
from forecaster.errors import StoreError
from tests.support.kubeapi import fixtures as kube_fixtures
from tests.support.kubeapi.fixtures import NAMESPACE
from tests.support.kubeapi.server import KubeApiServer

kube_api = kube_fixtures.kube_api
kube_client = kube_fixtures.kube_client

T0 = pd.Timestamp("2026-11-26T00:00:00+00:00")


def artifact(n: int = 3, level: float = 100.0, created: pd.Timestamp = T0) -> ForecastArtifact:
    step = pd.Timedelta("1h")
    return ForecastArtifact(
        created_at=created,
        model="seasonal_median",
        timezone="UTC",
        interval_seconds=3600,
        band_level=0.9,
        history_start=T0 - pd.Timedelta("14D"),
        history_end=T0,
        history_points=336,
        source="test",
        horizon_seconds=3600 * n,
        intervals=tuple(
            Interval(T0 + i * step, level, level * 0.9, level * 1.1, level * 1.3) for i in range(n)
        ),
    )


def store(client: Any, **kw: Any) -> ConfigMapStore:
    from kubernetes import client as k8s

    return ConfigMapStore(k8s.CoreV1Api(client), NAMESPACE, "recharge-forecast", sleep=lambda s: None, **kw)


def test_read_absent_is_none(kube_api: KubeApiServer, kube_client: Any) -> None:
    assert store(kube_client).read() is None


def test_write_creates_then_replaces_keeping_other_keys(kube_api: KubeApiServer, kube_client: Any) -> None:
    s = store(kube_client)
    s.write(artifact(level=100))
    cm = kube_api.configmap(NAMESPACE, "recharge-forecast")
    assert (
        cm is not None and cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "recharge-autoscaler"
    )
    first_rv = cm["metadata"]["resourceVersion"]
    kube_api.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": NAMESPACE}}
    )
    # someone adds a key by hand; the store must keep it
    from kubernetes import client as k8s

    k8s.CoreV1Api(kube_client).patch_namespaced_config_map(
        "recharge-forecast", NAMESPACE, {"data": {"note": "x"}}
    )
    s.write(artifact(level=250))
    cm = kube_api.configmap(NAMESPACE, "recharge-forecast")
    assert cm is not None
    assert cm["data"]["note"] == "x"
    assert int(cm["metadata"]["resourceVersion"]) > int(first_rv)
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 250
    puts = [r for r in kube_api.requests if r.method == "PUT"]
    assert puts and puts[-1].body["metadata"]["resourceVersion"]  # compare-and-swap, not a blind overwrite


def test_conflict_is_reread_and_retried(kube_api: KubeApiServer, kube_client: Any) -> None:
    s = store(kube_client)
    s.write(artifact(level=100))
    kube_api.fail(409, count=2, method="PUT")
    s.write(artifact(level=300))
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 300
    assert sum(r.method == "PUT" for r in kube_api.requests) == 3


def test_persistent_conflict_keeps_previous(kube_api: KubeApiServer, kube_client: Any) -> None:
    s = store(kube_client, conflict_retries=1)
    s.write(artifact(level=100))
    kube_api.fail(409, count=5, method="PUT")
    with pytest.raises(StoreError, match=r"still conflicting after 2 attempts.*previous forecast was kept"):
        s.write(artifact(level=300))
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 100


def test_oversized_artifact_is_refused_before_any_request(kube_api: KubeApiServer, kube_client: Any) -> None:
    big = artifact(n=9000)
    assert len(big.to_json()) > MAX_BYTES
    with pytest.raises(StoreError, match=r"at most 1048576 bytes; shorten forecast.horizon"):
        store(kube_client).write(big)
    assert kube_api.requests == []


def test_invalid_artifact_is_refused(kube_api: KubeApiServer, kube_client: Any) -> None:
    bad = artifact()
    bad = ForecastArtifact(**{**bad.__dict__, "intervals": ()})
    with pytest.raises(StoreError, match="refusing to write an invalid forecast"):
        store(kube_client).write(bad)
    assert kube_api.requests == []


@pytest.mark.parametrize(
    ("code", "method", "match"),
    [
        (403, "GET", "needs 'get' on 'configmaps' in namespace payments"),
        (403, "PUT", "needs 'update' on 'configmaps' in namespace payments"),
        (500, "GET", "get configmaps payments/recharge-forecast failed after 4 attempts .*HTTP 500"),
    ],
    ids=["forbidden-read", "forbidden-update", "server-error"],
)
def test_api_failures_are_store_errors_and_keep_previous(
    kube_api: KubeApiServer,
    kube_client: Any,
    code: int,
    method: str,
    match: str,
) -> None:
    s = store(kube_client)
    s.write(artifact(level=100))
    kube_api.fail(code, count=4, method=method)
    with pytest.raises(StoreError, match=match):
        s.write(artifact(level=300))
    kube_api.clear_faults()
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 100


def test_garbage_in_configmap_is_a_store_error(kube_api: KubeApiServer, kube_client: Any) -> None:
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "recharge-forecast", "namespace": NAMESPACE},
            "data": {"forecast.json": "{not json"},
        }
    )
    with pytest.raises(
        StoreError, match=r"configmap payments/recharge-forecast key forecast.json: not valid JSON"
    ):
        store(kube_client).read()


def test_configmap_without_key_reads_none(kube_api: KubeApiServer, kube_client: Any) -> None:
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "recharge-forecast", "namespace": NAMESPACE},
            "data": {"x": "y"},
        }
    )
    assert store(kube_client).read() is None
