"""The stand-in API server behaves like kube-apiserver where clients depend on it (raw HTTP, no client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.kubeapi.patch import json_patch, merge_patch, strategic_merge_patch
from tests.support.kubeapi.server import KubeApiServer

NS = "payments"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        server.seed_deployment(NS, "recharge", 3)
        server.seed_hpa(NS, "recharge", min_replicas=2, max_replicas=10)
        yield server


def call(api: KubeApiServer, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
    return requests.request(method, api.url + path, json=body, timeout=5, **kw)


def test_not_found_is_a_status_object(api: KubeApiServer) -> None:
    r = call(api, "GET", f"{DEPLOY}/nope")
    assert r.status_code == 404
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }


def test_create_existing_is_already_exists(api: KubeApiServer) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    first = call(api, "POST", f"/api/v1/namespaces/{NS}/configmaps", body)
    assert first.status_code == 201
    meta = first.json()["metadata"]
    assert meta["namespace"] == NS and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    again = call(api, "POST", f"/api/v1/namespaces/{NS}/configmaps", body)
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists")


def test_put_checks_resource_version(api: KubeApiServer) -> None:
    dep = call(api, "GET", f"{DEPLOY}/recharge").json()
    rv, gen = int(dep["metadata"]["resourceVersion"]), dep["metadata"]["generation"]
    dep["spec"]["replicas"] = 5
    ok = call(api, "PUT", f"{DEPLOY}/recharge", dep)
    assert ok.status_code == 200
    assert int(ok.json()["metadata"]["resourceVersion"]) > rv
    assert ok.json()["metadata"]["generation"] == gen + 1
    stale = call(api, "PUT", f"{DEPLOY}/recharge", dep)  # same (now stale) resourceVersion
    assert (stale.status_code, stale.json()["reason"]) == (409, "Conflict")
    assert "the object has been modified" in stale.json()["message"]
    dep["metadata"].pop("resourceVersion")
    dep["spec"]["replicas"] = 6
    assert call(api, "PUT", f"{DEPLOY}/recharge", dep).status_code == 200  # unconditional update


def test_metadata_only_change_keeps_generation(api: KubeApiServer) -> None:
    before = call(api, "GET", f"{DEPLOY}/recharge").json()["metadata"]
    after = call(api, "PATCH", f"{DEPLOY}/recharge", {"metadata": {"annotations": {"a": "b"}}}, headers=MERGE)
    assert after.json()["metadata"]["generation"] == before["generation"]
    assert after.json()["metadata"]["resourceVersion"] != before["resourceVersion"]


@pytest.mark.parametrize(
    ("ctype", "patch", "check"),
    [
        (
            "application/merge-patch+json",
            {"metadata": {"labels": {"app": None, "tier": "web"}}},
            lambda d: d["metadata"]["labels"] == {"tier": "web"},
        ),
        (
            "application/strategic-merge-patch+json",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "sidecar", "image": "s:1"},
                                {"name": "recharge", "image": "example/recharge:2"},
                            ]
                        }
                    }
                }
            },
            lambda d: (
                [(c["name"], c["image"]) for c in d["spec"]["template"]["spec"]["containers"]]
                == [("recharge", "example/recharge:2"), ("sidecar", "s:1")]
            ),
        ),
        (
            "application/json-patch+json",
            [
                {"op": "replace", "path": "/spec/replicas", "value": 7},
                {"op": "add", "path": "/metadata/annotations/x~1y", "value": "1"},
            ],
            lambda d: d["spec"]["replicas"] == 7 and d["metadata"]["annotations"]["x/y"] == "1",
        ),
    ],
    ids=["merge-null-deletes", "strategic-merges-by-name", "json-patch"],
)
def test_patch_types(api: KubeApiServer, ctype: str, patch: Any, check: Any) -> None:
    r = call(api, "PATCH", f"{DEPLOY}/recharge", patch, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    assert check(r.json())


@pytest.mark.parametrize(
    ("ctype", "body", "code"),
    [
        ("application/apply-patch+yaml", {}, 415),
        ("application/json-patch+json", [{"op": "test", "path": "/spec/replicas", "value": 99}], 422),
        ("application/merge-patch+json", {"spec": {"replicas": -1}}, 422),
    ],
    ids=["unsupported-type", "failed-test-op", "invalid-replicas"],
)
def test_bad_patches_are_rejected(api: KubeApiServer, ctype: str, body: Any, code: int) -> None:
    r = call(api, "PATCH", f"{DEPLOY}/recharge", body, headers={"Content-Type": ctype})
    assert r.status_code == code and r.json()["kind"] == "Status"


def test_scale_subresource(api: KubeApiServer) -> None:
    scale = call(api, "GET", f"{DEPLOY}/recharge/scale").json()
    assert (scale["kind"], scale["apiVersion"], scale["spec"]["replicas"]) == ("Scale", "autoscaling/v1", 3)
    assert scale["status"]["selector"] == "app=recharge"
    r = call(api, "PATCH", f"{DEPLOY}/recharge/scale", {"spec": {"replicas": 5}}, headers=MERGE)
    assert r.json()["spec"]["replicas"] == 5
    stale = call(api, "PUT", f"{DEPLOY}/recharge/scale", scale)
    assert stale.status_code == 409
    scale = r.json()
    scale["spec"]["replicas"] = 4
    assert call(api, "PUT", f"{DEPLOY}/recharge/scale", scale).status_code == 200
    dep = api.deployment(NS, "recharge")
    assert dep is not None and dep["spec"]["replicas"] == 4


def test_status_subresource_is_separate_from_spec(api: KubeApiServer) -> None:
    hpa = call(api, "GET", f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/recharge").json()
    hpa["status"] = {"currentReplicas": 9, "desiredReplicas": 9}
    hpa["spec"]["minReplicas"] = 5
    path = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/recharge"
    main = call(api, "PUT", path, hpa).json()
    assert main["spec"]["minReplicas"] == 5 and main["status"]["currentReplicas"] == 2  # status ignored
    hpa = main
    hpa["status"] = {"currentReplicas": 9, "desiredReplicas": 9}
    hpa["spec"]["minReplicas"] = 1
    st = call(api, "PUT", path + "/status", hpa).json()
    assert st["status"]["currentReplicas"] == 9 and st["spec"]["minReplicas"] == 5  # spec ignored


def test_list_with_selectors(api: KubeApiServer) -> None:
    api.seed_deployment(NS, "other", 1)
    api.seed_deployment("elsewhere", "recharge", 1)
    r = call(api, "GET", DEPLOY, params={"labelSelector": "app=recharge"}).json()
    assert r["kind"] == "DeploymentList" and r["apiVersion"] == "apps/v1"
    assert [d["metadata"]["name"] for d in r["items"]] == ["recharge"]
    assert len(call(api, "GET", "/apis/apps/v1/deployments").json()["items"]) == 3
    fs = call(api, "GET", DEPLOY, params={"fieldSelector": "metadata.name!=recharge"}).json()
    assert [d["metadata"]["name"] for d in fs["items"]] == ["other"]


def test_discovery_and_version(api: KubeApiServer) -> None:
    assert call(api, "GET", "/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in call(api, "GET", "/apis").json()["groups"]}
    assert {"apps", "autoscaling", "coordination.k8s.io", "events.k8s.io"} <= groups
    names = {r["name"] for r in call(api, "GET", "/apis/apps/v1").json()["resources"]}
    assert {"deployments", "deployments/scale", "deployments/status"} <= names
    assert call(api, "GET", "/apis/batch/v1").status_code == 404
    assert call(api, "GET", "/version").json()["major"] == "1"


def test_table_for_kubectl(api: KubeApiServer) -> None:
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    t = call(api, "GET", DEPLOY, headers=accept).json()
    assert t["kind"] == "Table"
    assert [c["name"] for c in t["columnDefinitions"]][:4] == ["Name", "Ready", "Up-to-date", "Available"]
    assert t["rows"][0]["cells"][:2] == ["recharge", "3/3"]


@pytest.mark.parametrize(
    ("fault", "requests_made", "codes"),
    [
        (dict(status=500, count=2), 3, [500, 500, 200]),
        (dict(status=403, count=1, method="PATCH"), 2, [200, 403]),
        (dict(status=409, count=5, path="/horizontalpodautoscalers/"), 2, [200, 200]),
    ],
    ids=["count", "method-filter", "path-filter"],
)
def test_fault_injection(
    api: KubeApiServer, fault: dict[str, Any], requests_made: int, codes: list[int]
) -> None:
    api.fail(**fault)
    got = []
    for i in range(requests_made):
        if fault.get("method") == "PATCH" and i == 1:
            got.append(call(api, "PATCH", f"{DEPLOY}/recharge", {}, headers=MERGE).status_code)
        else:
            got.append(call(api, "GET", f"{DEPLOY}/recharge").status_code)
    assert got == codes


def test_forbidden_fault_reads_like_rbac(api: KubeApiServer) -> None:
    api.fail(403, method="PATCH")
    r = call(api, "PATCH", f"{DEPLOY}/recharge/scale", {}, headers=MERGE).json()
    assert r["reason"] == "Forbidden"
    assert r["message"] == (
        'deployments.apps "recharge" is forbidden: User '
        '"system:serviceaccount:payments:recharge-autoscaler" cannot patch resource '
        '"deployments/scale" in API group "apps" in the namespace "payments"'
    )


def test_slow_fault_delays(api: KubeApiServer) -> None:
    api.slow(0.5)
    with pytest.raises(requests.Timeout):
        requests.get(api.url + f"{DEPLOY}/recharge", timeout=0.2)
    assert call(api, "GET", f"{DEPLOY}/recharge").status_code == 200


def test_readiness_lags_scale_up() -> None:
    clock = Clock()
    with KubeApiServer(ready_delay=30, clock=clock) as api:
        api.seed_deployment(NS, "recharge", 3)
        call(api, "PATCH", f"{DEPLOY}/recharge/scale", {"spec": {"replicas": 6}}, headers=MERGE)
        dep = api.deployment(NS, "recharge")
        assert dep is not None and dep["status"]["readyReplicas"] == 3
        clock.t = 31
        dep = api.deployment(NS, "recharge")
        assert dep is not None and dep["status"]["readyReplicas"] == 6


def test_hpa_emulation_applies_the_floor() -> None:
    with KubeApiServer(hpa_controller=True) as api:
        api.seed_deployment(NS, "recharge", 3)
        api.seed_hpa(NS, "recharge", min_replicas=2, max_replicas=10)
        path = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/recharge"
        call(api, "PATCH", path, {"spec": {"minReplicas": 7}}, headers=MERGE)
        dep = api.deployment(NS, "recharge")
        assert dep is not None and dep["spec"]["replicas"] == 7


@pytest.mark.parametrize(
    ("renew", "code"),
    [
        ("2026-11-26T10:00:00.000001+00:00", 201),
        ("2026-11-26T10:00:00.123456Z", 201),
        ("2026-11-26T10:00:00+00:00", 400),
    ],
    ids=["micro-offset", "micro-z", "no-fraction"],
)
def test_lease_microtime_is_strict(api: KubeApiServer, renew: str, code: int) -> None:
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"holderIdentity": "a", "renewTime": renew},
    }
    assert call(api, "POST", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", body).status_code == code


def test_configmap_size_limit(api: KubeApiServer) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"k": "x" * (1 << 20)},
    }
    r = call(api, "POST", f"/api/v1/namespaces/{NS}/configmaps", body)
    assert (r.status_code, r.json()["reason"]) == (422, "Invalid")


def test_generate_name_and_delete(api: KubeApiServer) -> None:
    body = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "recharge."}, "reason": "X"}
    name = call(api, "POST", f"/api/v1/namespaces/{NS}/events", body).json()["metadata"]["name"]
    assert name.startswith("recharge.") and len(name) > len("recharge.")
    assert call(api, "DELETE", f"/api/v1/namespaces/{NS}/events/{name}").json()["status"] == "Success"
    assert api.events(NS) == []


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ],
    ids=["replace", "add", "delete", "list-replaced", "nested", "list-of-objects-replaced"],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_strategic_delete_directive_and_json_patch_move() -> None:
    doc = {"c": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}
    assert strategic_merge_patch(doc, {"c": [{"name": "a", "$patch": "delete"}]}) == {
        "c": [{"name": "b", "v": 2}]
    }
    assert json_patch({"a": 1}, [{"op": "move", "from": "/a", "path": "/b"}]) == {"b": 1}
