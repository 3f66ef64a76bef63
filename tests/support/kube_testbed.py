"""One test's corner of the real API server: a fresh namespace, objects seeded in it, identities, the proxy.

Fixtures (registered for the whole suite in ``tests/conftest.py``):

- ``kube``: a :class:`KubeTestbed` on the session's kube-apiserver (:mod:`tests.support.kube_envtest`) with a
  namespace of its own and a :class:`~tests.support.kubeproxy.KubeFaultProxy` in front of the server;
- ``kube_seeded``: the same with Deployment ``recharge`` (3 replicas, status 3 ready) and HPA ``recharge``
  (min 2, max 20, status 3 current) in that namespace;
- ``kube_client``: a ``kubernetes`` ApiClient authenticated as the admin, talking through the proxy (what the
  code under test gets, so a test can inject faults and count requests).

Set-up and checks go straight to the server as the admin (:meth:`KubeTestbed.get`, ``create``, ``patch``,
...), never through the proxy, so they are neither faulted nor recorded. There is no kube-controller-manager:
the seeded status stays what the test wrote (:meth:`KubeTestbed.set_status`), an HPA never moves its
Deployment, and namespaces are never deleted (each test has its own). The admin is ``system:masters``;
:meth:`KubeTestbed.identity` makes a ServiceAccount with exactly the rules given and returns a token for it,
for tests of 403s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.kube_envtest import KubeEnvtest
from tests.support.kubeproxy import KubeFaultProxy

TARGET = "recharge"
PLURALS: dict[tuple[str, str], tuple[str, bool]] = {  # (apiVersion, kind) -> (plural, namespaced)
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Event"): ("events", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}
MERGE = {"Content-Type": "application/merge-patch+json"}


def deployment_manifest(
    namespace: str, name: str, replicas: int = 3, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            **({"annotations": annotations} if annotations else {}),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/recharge:1.0"}]},
            },
        },
    }


def hpa_manifest(
    namespace: str,
    name: str,
    *,
    target: str | None = None,
    min_replicas: int = 2,
    max_replicas: int = 20,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace,
            **({"annotations": annotations} if annotations else {}),
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }


@dataclass
class KubeTestbed:
    """The session's API server seen from one test: ``namespace`` is the test's own."""

    cluster: KubeEnvtest
    namespace: str
    proxy: KubeFaultProxy
    _http: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self._http.headers["Authorization"] = f"Bearer {self.cluster.token}"

    # --- raw REST as the admin, straight to the server ------------------------------------------------------

    def path(
        self, api_version: str, kind: str, name: str = "", namespace: str | None = None, subresource: str = ""
    ) -> str:
        plural, namespaced = PLURALS[(api_version, kind)]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        ns = f"/namespaces/{namespace or self.namespace}" if namespaced else ""
        return "/".join(p for p in (f"{base}{ns}/{plural}", name, subresource) if p)

    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        # verify per request: a session-wide ``verify`` loses to $REQUESTS_CA_BUNDLE when that is set
        answer = self._http.request(
            method, self.cluster.url + path, timeout=30, verify=str(self.cluster.ca_file), **kw
        )
        if answer.status_code >= 400 and not (method == "GET" and answer.status_code == 404):
            raise AssertionError(f"{method} {path}: HTTP {answer.status_code} {answer.text[:500]}")
        return answer

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        answer = self._request("GET", self.path(api_version, kind, name, namespace))
        return None if answer.status_code == 404 else dict(answer.json())

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return list(self._request("GET", self.path(api_version, kind, namespace=namespace)).json()["items"])

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest.setdefault("metadata", {})
        _, namespaced = PLURALS[(manifest["apiVersion"], manifest["kind"])]
        if namespaced:
            meta.setdefault("namespace", self.namespace)
        path = self.path(manifest["apiVersion"], manifest["kind"], namespace=meta.get("namespace"))
        return dict(self._request("POST", path, json=manifest).json())

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        body: dict[str, Any],
        *,
        namespace: str | None = None,
        subresource: str = "",
    ) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) as the admin."""
        path = self.path(api_version, kind, name, namespace, subresource)
        return dict(self._request("PATCH", path, json=body, headers=MERGE).json())

    def set_status(self, api_version: str, kind: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Write ``status`` through the status subresource (no controller ever will)."""
        return self.patch(api_version, kind, name, {"status": status}, subresource="status")

    # --- the objects the product works on -------------------------------------------------------------------

    def deployment(self, name: str = TARGET) -> dict[str, Any] | None:
        return self.get("apps/v1", "Deployment", name)

    def hpa(self, name: str = TARGET) -> dict[str, Any] | None:
        return self.get("autoscaling/v2", "HorizontalPodAutoscaler", name)

    def lease(self, name: str) -> dict[str, Any] | None:
        return self.get("coordination.k8s.io/v1", "Lease", name)

    def configmap(self, name: str) -> dict[str, Any] | None:
        return self.get("v1", "ConfigMap", name)

    def events(self) -> list[dict[str, Any]]:
        """core/v1 Events of the namespace by ``firstTimestamp``, then by last write (timestamps are whole
        seconds)."""
        return sorted(
            self.list("v1", "Event"),
            key=lambda e: (e.get("firstTimestamp") or "", int(e["metadata"]["resourceVersion"])),
        )

    def seed_deployment(
        self,
        name: str = TARGET,
        replicas: int = 3,
        *,
        ready: int | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Deployment ``name`` with ``replicas``; its status says ``ready`` (default: all) are ready."""
        self.create(deployment_manifest(self.namespace, name, replicas, annotations))
        ready = replicas if ready is None else ready
        return self.set_status(
            "apps/v1",
            "Deployment",
            name,
            {
                "observedGeneration": 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
            },
        )

    def seed_hpa(
        self,
        name: str = TARGET,
        *,
        target: str | None = None,
        min_replicas: int = 2,
        max_replicas: int = 20,
        current: int | None = 3,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        obj = self.create(
            hpa_manifest(
                self.namespace,
                name,
                target=target,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                annotations=annotations,
            )
        )
        if current is None:
            return obj
        return self.set_status(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            name,
            {"currentReplicas": current, "desiredReplicas": current},
        )

    # --- identities and clients -----------------------------------------------------------------------------

    def identity(self, rules: list[dict[str, Any]], *, name: str | None = None) -> str:
        """A ServiceAccount in the test's namespace bound to a Role with exactly ``rules``; its token.

        Each rule is a PolicyRule as in a manifest (``apiGroups``, ``resources``, ``verbs``, optional
        ``resourceNames``). The token comes from the TokenRequest API: a real ServiceAccount identity that
        RBAC judges, unlike the admin's ``system:masters``.
        """
        name = name or f"sa-{uuid.uuid4().hex[:6]}"
        self.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
        if rules:
            self.grant(name, rules)
        return self.cluster.service_account_token(self.namespace, name, create=False)

    def grant(
        self,
        service_account: str,
        rules: list[dict[str, Any]],
        *,
        role: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Bind a new Role with ``rules`` to ``service_account`` (of the test's namespace) in ``namespace``.

        Returns once the server's authorizer allows every rule (RBAC reads its bindings from a cache).
        """
        role = role or f"{service_account}-{uuid.uuid4().hex[:4]}"
        ns = namespace or self.namespace
        self.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": role, "namespace": ns},
                "rules": rules,
            }
        )
        self.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": role, "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [
                    {"kind": "ServiceAccount", "name": service_account, "namespace": self.namespace}
                ],
            }
        )
        user = f"system:serviceaccount:{self.namespace}:{service_account}"
        deadline = time.monotonic() + 15
        for rule in rules:
            resource, _, sub = rule["resources"][0].partition("/")
            names = rule.get("resourceNames") or [""]
            while not self.allowed(
                user,
                rule["verbs"][0],
                resource,
                group=rule["apiGroups"][0],
                subresource=sub,
                name=names[0],
                namespace=ns,
            ):
                assert time.monotonic() < deadline, f"RBAC never allowed {rule} to {user}"
                time.sleep(0.05)

    def allowed(
        self,
        user: str,
        verb: str,
        resource: str,
        *,
        group: str = "",
        subresource: str = "",
        name: str = "",
        namespace: str | None = None,
    ) -> bool:
        """The server's own answer (a SubjectAccessReview) to: may ``user`` do this?"""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "resourceAttributes": {
                    "namespace": self.namespace if namespace is None else namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": subresource,
                    "name": name,
                },
            },
        }
        answer = self._request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review)
        return bool(answer.json()["status"].get("allowed"))

    def client(self, token: str | None = None, *, proxy: bool = True) -> Any:
        """A ``kubernetes`` ApiClient (no urllib3 retries) as ``token`` (admin by default), via the proxy."""
        if proxy:
            return self.proxy.api_client(token or self.cluster.token)
        return self.cluster.api_client(token)

    def kubeconfig(self, path: Path, *, token: str | None = None, proxy: bool = False) -> Path:
        """A kubeconfig (current namespace: the test's) for the server, or for the proxy in front of it."""
        if proxy:
            return self.proxy.write_kubeconfig(
                path, token=token or self.cluster.token, namespace=self.namespace
            )
        return self.cluster.write_kubeconfig(path, token=token, namespace=self.namespace)


@pytest.fixture
def kube_proxy(kube_apiserver: KubeEnvtest) -> Iterator[KubeFaultProxy]:
    """A fault-injecting proxy in front of the session's API server, for this test only."""
    certs = kube_apiserver.ca_file.parent  # kube-apiserver's self-signed serving pair (127.0.0.1 in its SANs)
    with KubeFaultProxy(
        kube_apiserver.url, kube_apiserver.ca_file, certs / "apiserver.crt", certs / "apiserver.key"
    ) as proxy:
        yield proxy


@pytest.fixture
def kube(
    kube_apiserver: KubeEnvtest, kube_namespace: str, kube_proxy: KubeFaultProxy
) -> Iterator[KubeTestbed]:
    bed = KubeTestbed(kube_apiserver, kube_namespace, kube_proxy)
    try:
        yield bed
    finally:
        bed._http.close()


@pytest.fixture
def kube_seeded(kube: KubeTestbed) -> KubeTestbed:
    kube.seed_deployment(TARGET, 3)
    kube.seed_hpa(TARGET, min_replicas=2, max_replicas=20, current=3)
    return kube


@pytest.fixture
def kube_client(kube: KubeTestbed) -> Iterator[Any]:
    api_client = kube.client()
    try:
        yield api_client
    finally:
        api_client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reaches the real API server carries the ``kube`` marker (``-m kube`` selects them)."""
    for item in items:
        if "kube_apiserver" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kube)
