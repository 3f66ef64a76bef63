"""The controller's state in a ConfigMap on the real kube-apiserver: round trip, other keys kept, unreadable
state refused, 403 (a Role without update) named, a concurrent writer's 409 retried."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from controller.adapters.statestore import ConfigMapStateStore, MemoryStateStore
from controller.core.state import ControllerState
from forecaster.errors import StoreError
from tests.support.kube_testbed import KubeTestbed

T0 = pd.Timestamp("2026-11-26T12:00:00+00:00")
STATE = ControllerState(
    replicas=7,
    recommendations=((T0, 7), (T0 + pd.Timedelta("30s"), 6)),
    scale_events=((T0, 2),),
    issued_warmups=(("ramp-2026-11-26T18:00", T0 + pd.Timedelta("1h")),),
)


def _store(kube: KubeTestbed, client: Any) -> ConfigMapStateStore:
    return ConfigMapStateStore(client, namespace=kube.namespace, name="recharge-state")


def test_missing_configmap_is_no_state(kube: KubeTestbed, kube_client: Any) -> None:
    assert _store(kube, kube_client).load() is None


def test_round_trip_creates_then_replaces(kube: KubeTestbed, kube_client: Any) -> None:
    store = _store(kube, kube_client)
    store.save(STATE)
    assert store.load() == STATE
    later = ControllerState(replicas=9, recommendations=((T0 + pd.Timedelta("1m"), 9),))
    store.save(later)
    assert store.load() == later
    cm = kube.configmap("recharge-state")
    assert cm is not None
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "recharge-autoscaler"
    assert [r.method for r in kube.proxy.calls() if r.method != "GET"] == ["POST", "PUT"]


def test_other_keys_of_the_configmap_are_kept(kube: KubeTestbed, kube_client: Any) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "recharge-state"},
            "data": {"note": "keep me"},
        }
    )
    _store(kube, kube_client).save(STATE)
    cm = kube.configmap("recharge-state")
    assert cm is not None and cm["data"]["note"] == "keep me" and "state.json" in cm["data"]


def test_a_concurrent_writer_is_retried_and_its_keys_kept(kube: KubeTestbed, kube_client: Any) -> None:
    store = _store(kube, kube_client)
    store.save(STATE)
    writer = kube.proxy.before(
        lambda: kube.patch("v1", "ConfigMap", "recharge-state", {"data": {"by-hand": "edited"}}), method="PUT"
    )
    later = ControllerState(replicas=4)
    store.save(later)
    assert writer.hits == 1
    assert [r.status for r in kube.proxy.calls("PUT")] == [409, 200]
    cm = kube.configmap("recharge-state")
    assert cm is not None and cm["data"]["by-hand"] == "edited"
    assert store.load() == later


def test_unreadable_state_is_a_store_error_naming_the_configmap(kube: KubeTestbed, kube_client: Any) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "recharge-state"},
            "data": {"state.json": "{oops"},
        }
    )
    with pytest.raises(
        StoreError, match=f"configmap {kube.namespace}/recharge-state: state is not valid JSON"
    ):
        _store(kube, kube_client).load()


def test_forbidden_is_a_store_error_naming_the_verb(kube: KubeTestbed) -> None:
    token = kube.identity([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create"]}])
    with kube.client(token) as client:
        store = _store(kube, client)
        store.save(STATE)  # created: the PUT is only used once the ConfigMap exists
        with pytest.raises(StoreError, match=r"needs 'update' on 'configmaps'.*cannot update resource"):
            store.save(ControllerState(replicas=1))
        assert store.load() == STATE  # the previous state was kept
    assert [r.status for r in kube.proxy.calls("PUT")] == [403]


def test_memory_store_round_trip() -> None:
    store = MemoryStateStore()
    assert store.load() is None
    store.save(STATE)
    assert store.load() is STATE
