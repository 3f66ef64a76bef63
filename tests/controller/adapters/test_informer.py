"""The informer against the real API server: list, then watch adds, updates and deletes; relists on expiry."""

from __future__ import annotations

from typing import Any

import pytest

from controller.adapters.informer import CONFIGMAPS, DEPLOYMENTS, Informer, wait_for
from tests.support.kube_envtest import KubeEnvtest

pytestmark = pytest.mark.kube


def _cm(ns: str, name: str, value: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "recharge"}},
            "data": {"v": value}}


def test_list_then_watch_keeps_the_cache_current(kube_apiserver: KubeEnvtest, kube_namespace: str) -> None:
    from kubernetes import client

    api = kube_apiserver.api_client()
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(kube_namespace, _cm(kube_namespace, "before", "1"))
    core.create_namespaced_config_map(kube_namespace, _cm(kube_namespace, "other", "x", {"app": "else"}))
    events: list[tuple[str, str]] = []
    inf = Informer(api, CONFIGMAPS, namespaces=[kube_namespace], label_selector="app=recharge",
                   on_event=lambda kind, obj: events.append((kind, obj["metadata"]["name"]))).start()
    try:
        assert inf.wait_synced(20)
        assert inf.get(kube_namespace, "before")["data"] == {"v": "1"}  # type: ignore[index]
        assert inf.get(kube_namespace, "other") is None  # the label selector applies
        core.create_namespaced_config_map(kube_namespace, _cm(kube_namespace, "after", "2"))
        core.patch_namespaced_config_map("before", kube_namespace, {"data": {"v": "3"}})
        core.delete_namespaced_config_map("after", kube_namespace)
        assert wait_for(lambda: ("DELETED", "after") in events, 20), events
        got = inf.get(kube_namespace, "before")
        assert got is not None and got["data"] == {"v": "3"}
        assert inf.get(kube_namespace, "after") is None
        assert [e for e in events if e[1] == "after"] == [("ADDED", "after"), ("DELETED", "after")]
        assert inf.lists == 1  # one list, then only the watch
    finally:
        inf.stop()


def test_custom_and_built_in_groups_across_namespaces(kube_apiserver: KubeEnvtest) -> None:
    from kubernetes import client

    api = kube_apiserver.api_client()
    apps = client.AppsV1Api(api)
    namespaces = [kube_apiserver.create_namespace("inf"), kube_apiserver.create_namespace("inf")]
    for ns in namespaces:
        apps.create_namespaced_deployment(ns, {
            "metadata": {"name": "recharge"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "r"}},
                     "template": {"metadata": {"labels": {"app": "r"}},
                                  "spec": {"containers": [{"name": "a", "image": "r:1"}]}}},
        })
    inf = Informer(api, DEPLOYMENTS, namespaces=namespaces).start()
    try:
        assert inf.wait_synced(20)
        assert sorted(o["metadata"]["namespace"] for o in inf.items()) == sorted(namespaces)
        apps.patch_namespaced_deployment_scale("recharge", namespaces[0], {"spec": {"replicas": 5}})
        assert wait_for(lambda: (inf.get(namespaces[0], "recharge") or {})["spec"]["replicas"] == 5, 20)
    finally:
        inf.stop()


def test_watches_ended_by_the_server_resume_without_listing_again(kube_apiserver: KubeEnvtest,
                                                                 kube_namespace: str) -> None:
    from kubernetes import client

    api = kube_apiserver.api_client()
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(kube_namespace, _cm(kube_namespace, "a", "1"))
    inf = Informer(api, CONFIGMAPS, namespaces=[kube_namespace], watch_seconds=1).start()
    try:
        assert inf.wait_synced(20)
        core.delete_namespaced_config_map("a", kube_namespace)
        core.create_namespaced_config_map(kube_namespace, _cm(kube_namespace, "b", "2"))
        assert wait_for(lambda: inf.get(kube_namespace, "b") is not None, 20)
        assert inf.get(kube_namespace, "a") is None
        # The server ends each watch after 1 s; the informer resumes from its resourceVersion (no relist).
        import time

        time.sleep(2.5)
        core.patch_namespaced_config_map("b", kube_namespace, {"data": {"v": "4"}})
        assert wait_for(lambda: (inf.get(kube_namespace, "b") or {}).get("data") == {"v": "4"}, 20)
        assert inf.lists == 1 and inf.last_error is None and len(inf) == 1
    finally:
        inf.stop()


def test_a_transform_keeps_only_what_readers_use(kube_apiserver: KubeEnvtest, kube_namespace: str) -> None:
    """The fleet's Deployment cache: no managedFields, no last-applied copy, no pod template, on the list and
    on every watch event; what the scale target reads stays."""
    from kubernetes import client

    from controller.adapters.cached import scale_target_view
    from controller.adapters.informer import LAST_APPLIED

    api = kube_apiserver.api_client()
    apps = client.AppsV1Api(api)
    ns = kube_namespace

    def deployment(name: str) -> None:
        apps.create_namespaced_deployment(ns, {
            "metadata": {"name": name, "annotations": {LAST_APPLIED: '{"kind": "Deployment"}', "keep": "me"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "a", "image": "r:1"}]}}},
        })

    deployment("listed")
    raw = apps.read_namespaced_deployment("listed", ns).metadata
    assert raw.managed_fields and LAST_APPLIED in raw.annotations  # what the server sends
    inf = Informer(api, DEPLOYMENTS, namespaces=[ns], transform=scale_target_view).start()
    try:
        assert inf.wait_synced(20)
        deployment("watched")
        apps.patch_namespaced_deployment_scale("listed", ns, {"spec": {"replicas": 7}})
        assert wait_for(lambda: inf.get(ns, "watched") is not None, 20)
        assert wait_for(lambda: (inf.get(ns, "listed") or {})["spec"].get("replicas") == 7, 20)
        for name in ("listed", "watched"):
            obj = inf.get(ns, name)
            assert obj is not None
            meta = obj["metadata"]
            assert "managedFields" not in meta and meta["annotations"] == {"keep": "me"}, meta
            assert "template" not in obj["spec"] and obj["spec"]["selector"] == {"matchLabels": {"app": name}}
            assert meta["resourceVersion"] and meta["uid"]  # writes still carry the cached resourceVersion
    finally:
        inf.stop()
