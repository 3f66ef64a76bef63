"""The fault proxy is transparent unless told otherwise: answers, watches and kubectl pass through."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support.kube_testbed import KubeTestbed
from tests.support.tools import require_tool


def test_requests_pass_through_and_are_recorded(kube: KubeTestbed) -> None:
    from kubernetes import client

    with kube.client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "a"}, "data": {"k": "v"}})
        assert core.read_namespaced_config_map("a", kube.namespace).data == {"k": "v"}
    assert [(r.method, r.path, r.status, r.injected) for r in kube.proxy.requests] == [
        ("POST", f"/api/v1/namespaces/{kube.namespace}/configmaps", 201, ""),
        ("GET", f"/api/v1/namespaces/{kube.namespace}/configmaps/a", 200, ""),
    ]
    assert kube.proxy.requests[0].body["data"] == {"k": "v"}


def test_rules_match_method_and_path_and_are_used_up(kube: KubeTestbed) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    rule = kube.proxy.fail(503, count=2, method="GET", path=r"/configmaps/b$", message="etcd is sad")
    with kube.client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "b"}})  # POST: not matched
        for _ in range(2):
            with pytest.raises(ApiException) as failed:
                core.read_namespaced_config_map("b", kube.namespace)
            assert failed.value.status == 503
            assert json.loads(failed.value.body) == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "etcd is sad",
                "reason": "ServiceUnavailable",
                "code": 503,
            }
        assert core.read_namespaced_config_map("b", kube.namespace).metadata.name == "b"
    assert rule.hits == 2 and rule.count == 0
    assert [(r.method, r.status, r.injected) for r in kube.proxy.requests] == [
        ("POST", 201, ""),
        ("GET", 503, "fail"),
        ("GET", 503, "fail"),
        ("GET", 200, ""),
    ]


def test_a_watch_streams_through(kube: KubeTestbed) -> None:
    """Watches are chunked answers that stay open: the proxy relays each event as it comes."""
    from kubernetes import client, watch

    seen: list[tuple[str, str]] = []
    with kube.client() as api:
        core = client.CoreV1Api(api)
        started = threading.Event()

        def writer() -> None:
            started.wait(10)
            for name in ("w1", "w2"):
                kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})

        thread = threading.Thread(target=writer)
        thread.start()
        w = watch.Watch()
        stream = w.stream(core.list_namespaced_config_map, kube.namespace, timeout_seconds=20)
        started.set()
        for event in stream:
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                w.stop()
        thread.join()
    assert seen == [("ADDED", "w1"), ("ADDED", "w2")]
    assert any("watch=true" in r.query for r in kube.proxy.requests)


def test_kubectl_retries_a_get_whose_connection_dropped(kube: KubeTestbed, tmp_path: Path) -> None:
    config = kube.kubeconfig(tmp_path / "kubeconfig", proxy=True)
    kube.proxy.drop(count=1, method="GET", path=r"/namespaces/[^/]+/configmaps$")
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    got = subprocess.run(
        [require_tool("kubectl"), "get", "configmaps", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        env=kube.cluster.env(config),
    )
    assert (got.returncode, got.stdout) == (0, "configmap/c\n"), got.stderr
    assert [r.status for r in kube.proxy.calls("GET", r"/configmaps$")] == [0, 200]
