"""The ConfigMap forecast store against the real kube-apiserver: create, replace, conflicts, limits.

409s come from a concurrent writer let in by the fault proxy just before our write, 403s from a
ServiceAccount whose Role lacks the verb, 500s from the proxy. The 1 MiB limit is the server's own.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from forecaster.adapters.configmap_store import MAX_BYTES, ConfigMapStore
from forecaster.artifact import ForecastArtifact, Interval
from forecaster.errors import StoreError
from tests.support.kube_testbed import KubeTestbed

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


def store(kube: KubeTestbed, client: Any, **kw: Any) -> ConfigMapStore:
    from kubernetes import client as k8s

    return ConfigMapStore(
        k8s.CoreV1Api(client), kube.namespace, "recharge-forecast", sleep=lambda s: None, **kw
    )


def concurrent_writer(kube: KubeTestbed) -> Any:
    counter = iter(range(1, 1000))
    return lambda: kube.patch("v1", "ConfigMap", "recharge-forecast", {"data": {"other": str(next(counter))}})


def test_read_absent_is_none(kube: KubeTestbed, kube_client: Any) -> None:
    assert store(kube, kube_client).read() is None


def test_write_creates_then_replaces_keeping_other_keys(kube: KubeTestbed, kube_client: Any) -> None:
    s = store(kube, kube_client)
    s.write(artifact(level=100))
    cm = kube.configmap("recharge-forecast")
    assert (
        cm is not None and cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "recharge-autoscaler"
    )
    first_rv = cm["metadata"]["resourceVersion"]
    kube.patch("v1", "ConfigMap", "recharge-forecast", {"data": {"note": "x"}})  # someone adds a key by hand
    s.write(artifact(level=250))
    cm = kube.configmap("recharge-forecast")
    assert cm is not None
    assert cm["data"]["note"] == "x"
    assert int(cm["metadata"]["resourceVersion"]) > int(first_rv)
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 250
    puts = kube.proxy.calls("PUT")
    assert len(puts) == 1 and puts[0].body["metadata"]["resourceVersion"]  # compare-and-swap, not blind


def test_conflict_is_reread_and_retried(kube: KubeTestbed, kube_client: Any) -> None:
    s = store(kube, kube_client)
    s.write(artifact(level=100))
    writer = kube.proxy.before(concurrent_writer(kube), count=2, method="PUT")
    s.write(artifact(level=300))
    assert writer.hits == 2 and writer.errors == []
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 300
    assert [r.status for r in kube.proxy.calls("PUT")] == [409, 409, 200]
    cm = kube.configmap("recharge-forecast")
    assert cm is not None and cm["data"]["other"] == "2"  # the other writer's key survived


def test_two_jobs_writing_at_once_both_land_in_turn(kube: KubeTestbed) -> None:
    """Two stores with their own clients write concurrently; every write is either applied or retried."""
    from concurrent.futures import ThreadPoolExecutor

    with kube.client() as c1, kube.client() as c2:
        stores = [store(kube, c1), store(kube, c2)]
        stores[0].write(artifact(level=1))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda i: [stores[i].write(artifact(level=10 * i + k)) for k in range(5)], (0, 1)))
        got = stores[0].read()
    assert got is not None and got.intervals[0].yhat in (4, 14)
    puts = kube.proxy.calls("PUT")
    assert [r.status for r in puts].count(200) == 10
    assert {r.status for r in puts} <= {200, 409}


def test_persistent_conflict_keeps_previous(kube: KubeTestbed, kube_client: Any) -> None:
    s = store(kube, kube_client, conflict_retries=1)
    s.write(artifact(level=100))
    kube.proxy.before(concurrent_writer(kube), count=5, method="PUT")
    with pytest.raises(StoreError, match=r"still conflicting after 2 attempts.*previous forecast was kept"):
        s.write(artifact(level=300))
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 100


def test_oversized_artifact_is_refused_before_any_request(kube: KubeTestbed, kube_client: Any) -> None:
    big = artifact(n=9000)
    assert len(big.to_json()) > MAX_BYTES
    with pytest.raises(StoreError, match=r"at most 1048576 bytes; shorten forecast.horizon"):
        store(kube, kube_client).write(big)
    assert kube.proxy.requests == []


def test_max_bytes_is_the_servers_limit(kube: KubeTestbed) -> None:
    """kube-apiserver accepts ConfigMap values of MAX_BYTES in total and refuses one byte more.

    The server counts values only; the store also counts keys, so it refuses a few bytes early, never late.
    """
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "at-limit"},
            "data": {"a": "x" * (MAX_BYTES - 10), "b": "y" * 10},
        }
    )
    with pytest.raises(AssertionError, match=r"HTTP 422 .*Too long: may not be more than 1048576 bytes"):
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "over-limit"},
                "data": {"a": "x" * (MAX_BYTES - 10), "b": "y" * 11},
            }
        )


def test_other_keys_pushing_past_the_limit_are_refused_without_writing(
    kube: KubeTestbed, kube_client: Any
) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "recharge-forecast"},
            "data": {"bulk": "x" * (MAX_BYTES - 1000)},
        }
    )
    with pytest.raises(
        StoreError, match=r"would hold \d+ bytes \(limit 1048576\) with its other keys \['bulk'\]"
    ):
        store(kube, kube_client).write(artifact(n=24))
    assert [r.method for r in kube.proxy.requests] == ["GET"]


def test_invalid_artifact_is_refused(kube: KubeTestbed, kube_client: Any) -> None:
    bad = artifact()
    bad = ForecastArtifact(**{**bad.__dict__, "intervals": ()})
    with pytest.raises(StoreError, match="refusing to write an invalid forecast"):
        store(kube, kube_client).write(bad)
    assert kube.proxy.requests == []


READ_ONLY = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
NO_UPDATE = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create"]}]


@pytest.mark.parametrize(
    ("rules", "match"),
    [
        ([], "needs 'get' on 'configmaps' in namespace {ns}"),
        (NO_UPDATE, "needs 'update' on 'configmaps' in namespace {ns}"),
    ],
    ids=["forbidden-read", "forbidden-update"],
)
def test_forbidden_is_a_store_error_and_keeps_previous(
    kube: KubeTestbed, kube_client: Any, rules: list[dict[str, Any]], match: str
) -> None:
    store(kube, kube_client).write(artifact(level=100))
    token = kube.identity(rules)
    with kube.client(token) as limited, pytest.raises(StoreError, match=match.format(ns=kube.namespace)):
        store(kube, limited).write(artifact(level=300))
    got = store(kube, kube_client).read()
    assert got is not None and got.intervals[0].yhat == 100


def test_server_errors_are_retried_then_a_store_error(kube: KubeTestbed, kube_client: Any) -> None:
    s = store(kube, kube_client)
    s.write(artifact(level=100))
    kube.proxy.fail(500, count=4, method="GET")
    with pytest.raises(
        StoreError,
        match=f"get configmaps {kube.namespace}/recharge-forecast failed after 4 attempts .*HTTP 500",
    ):
        s.write(artifact(level=300))
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 100
    kube.proxy.fail(503, count=2, method="PUT")
    s.write(artifact(level=400))  # two 503s on the write are retried
    got = s.read()
    assert got is not None and got.intervals[0].yhat == 400


def test_garbage_in_configmap_is_a_store_error(kube: KubeTestbed, kube_client: Any) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "recharge-forecast"},
            "data": {"forecast.json": "{not json"},
        }
    )
    with pytest.raises(
        StoreError, match=f"configmap {kube.namespace}/recharge-forecast key forecast.json: not valid JSON"
    ):
        store(kube, kube_client).read()


def test_configmap_without_key_reads_none(kube: KubeTestbed, kube_client: Any) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "recharge-forecast"},
            "data": {"x": "y"},
        }
    )
    assert store(kube, kube_client).read() is None


def test_labels_its_reader_selects_on_are_added_to_an_existing_configmap(
    kube: KubeTestbed, kube_client: Any
) -> None:
    kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "recharge-forecast", "labels": {"team": "a"}}})
    store(kube, kube_client, labels={"app.kubernetes.io/managed-by": "recharge-autoscaler"}).write(artifact())
    cm = kube.configmap("recharge-forecast")
    assert cm is not None and cm["metadata"]["labels"] == {
        "team": "a", "app.kubernetes.io/managed-by": "recharge-autoscaler"
    }


def test_a_configmap_another_tool_manages_is_refused(kube: KubeTestbed, kube_client: Any) -> None:
    meta = {"name": "recharge-forecast", "labels": {"app.kubernetes.io/managed-by": "Helm"}}
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                 "data": {"forecast.json": "previous"}})
    s = store(kube, kube_client, labels={"app.kubernetes.io/managed-by": "recharge-autoscaler"})
    with pytest.raises(StoreError, match=r"labelled app\.kubernetes\.io/managed-by=Helm, but its reader"):
        s.write(artifact())
    cm = kube.configmap("recharge-forecast")
    assert cm is not None and cm["data"] == {"forecast.json": "previous"}
    assert cm["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}
