"""The controller's state in a ConfigMap: round trip, other keys kept, unreadable state refused, 403 named."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from controller.adapters.statestore import ConfigMapStateStore, MemoryStateStore
from controller.core.state import ControllerState
from forecaster.errors import StoreError
from tests.support.kubeapi.fixtures import NAMESPACE
from tests.support.kubeapi.server import KubeApiServer

T0 = pd.Timestamp("2026-11-26T12:00:00+00:00")
STATE = ControllerState(
    replicas=7,
    recommendations=((T0, 7), (T0 + pd.Timedelta("30s"), 6)),
    scale_events=((T0, 2),),
    issued_warmups=(("ramp-2026-11-26T18:00", T0 + pd.Timedelta("1h")),),
)


def _store(kube_client: Any) -> ConfigMapStateStore:
    return ConfigMapStateStore(kube_client, namespace=NAMESPACE, name="recharge-state")


@pytest.fixture
def ns(kube_api: KubeApiServer) -> KubeApiServer:
    kube_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    return kube_api


def test_missing_configmap_is_no_state(ns: KubeApiServer, kube_client: Any) -> None:
    assert _store(kube_client).load() is None


def test_round_trip_creates_then_replaces(ns: KubeApiServer, kube_client: Any) -> None:
    store = _store(kube_client)
    store.save(STATE)
    assert store.load() == STATE
    later = ControllerState(replicas=9, recommendations=((T0 + pd.Timedelta("1m"), 9),))
    store.save(later)
    assert store.load() == later
    cm = ns.configmap(NAMESPACE, "recharge-state")
    assert cm is not None
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "recharge-autoscaler"


def test_other_keys_of_the_configmap_are_kept(ns: KubeApiServer, kube_client: Any) -> None:
    ns.create({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "recharge-state", "namespace": NAMESPACE}, "data": {"note": "keep me"}})
    _store(kube_client).save(STATE)
    cm = ns.configmap(NAMESPACE, "recharge-state")
    assert cm is not None and cm["data"]["note"] == "keep me" and "state.json" in cm["data"]


def test_unreadable_state_is_a_store_error_naming_the_configmap(ns: KubeApiServer, kube_client: Any) -> None:
    meta = {"name": "recharge-state", "namespace": NAMESPACE}
    ns.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"state.json": "{oops"}})
    with pytest.raises(StoreError, match=f"configmap {NAMESPACE}/recharge-state: state is not valid JSON"):
        _store(kube_client).load()


def test_forbidden_is_a_store_error_naming_the_verb(ns: KubeApiServer, kube_client: Any) -> None:
    ns.fail(403, 5, method="PUT", path="/api/v1/namespaces/payments/configmaps/recharge-state")
    store = _store(kube_client)
    store.save(STATE)  # created: the PUT is only used once the ConfigMap exists
    with pytest.raises(StoreError, match=r"update.*configmaps"):
        store.save(STATE)
    assert store.load() == STATE  # the previous state was kept


def test_memory_store_round_trip() -> None:
    store = MemoryStateStore()
    assert store.load() is None
    store.save(STATE)
    assert store.load() is STATE
