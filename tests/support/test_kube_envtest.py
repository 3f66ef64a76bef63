"""The real API server fixture answers as a real API server: version, validation, scale, 409 and 403."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.support.kube_envtest import KubeEnvtest
from tests.support.tools import require_tool

pytestmark = pytest.mark.kube


def kubectl(cluster: KubeEnvtest, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([require_tool("kubectl"), *args], input=stdin, capture_output=True, text=True,
                          env=cluster.env(), timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def deployment_manifest(namespace: str, name: str, **extra_spec: object) -> str:
    labels = {"app": name}
    return yaml.safe_dump({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "app", "image": "registry.example/recharge:1.0"}]}},
            **extra_spec,
        },
    })


def test_kubectl_reports_a_v1_35_server(kube_apiserver: KubeEnvtest) -> None:
    version = json.loads(kubectl(kube_apiserver, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.35."), version
    assert version["serverVersion"]["major"] == "1"


def test_kubectl_apply_validates_against_the_server_schema(kube_apiserver: KubeEnvtest,
                                                           kube_namespace: str) -> None:
    manifest = deployment_manifest(kube_namespace, "recharge")
    applied = kubectl(kube_apiserver, "apply", "-f", "-", stdin=manifest)
    assert "deployment.apps/recharge created" in applied.stdout

    # Validation is on (kubectl's default --validate=strict): an unknown field is refused by the server.
    rejected = kubectl(kube_apiserver, "apply", "-f", "-", check=False,
                       stdin=deployment_manifest(kube_namespace, "typo", replicaz=2))
    assert rejected.returncode != 0
    assert 'unknown field "spec.replicaz"' in rejected.stderr


def test_scale_subresource_reads_and_patches(kube_apiserver: KubeEnvtest, kube_namespace: str) -> None:
    from kubernetes import client

    kubectl(kube_apiserver, "apply", "-f", "-", stdin=deployment_manifest(kube_namespace, "recharge"))
    with kube_apiserver.api_client() as api:
        apps = client.AppsV1Api(api)
        scale = apps.read_namespaced_deployment_scale("recharge", kube_namespace)
        assert scale.spec is not None and scale.status is not None
        assert scale.spec.replicas == 3
        # No controller manager: nothing ever reports replicas in status.
        assert not scale.status.replicas
        apps.patch_namespaced_deployment_scale("recharge", kube_namespace, {"spec": {"replicas": 7}})
        assert apps.read_namespaced_deployment("recharge", kube_namespace).spec.replicas == 7


def test_stale_resource_version_update_is_a_409(kube_apiserver: KubeEnvtest, kube_namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    with kube_apiserver.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="state"), data={"v": "0"}))
        mine = core.read_namespaced_config_map("state", kube_namespace)
        theirs = core.read_namespaced_config_map("state", kube_namespace)
        theirs.data = {"v": "theirs"}
        core.replace_namespaced_config_map("state", kube_namespace, theirs)  # a concurrent writer wins
        mine.data = {"v": "mine"}
        with pytest.raises(ApiException) as conflict:
            core.replace_namespaced_config_map("state", kube_namespace, mine)
        assert conflict.value.status == 409
        assert json.loads(conflict.value.body or "{}")["reason"] == "Conflict"
        assert core.read_namespaced_config_map("state", kube_namespace).data == {"v": "theirs"}


def test_service_account_token_is_forbidden_until_rbac_allows(kube_apiserver: KubeEnvtest,
                                                              kube_namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    token = kube_apiserver.service_account_token(kube_namespace, "recharge-autoscaler")
    with kube_apiserver.api_client(token) as api:
        with pytest.raises(ApiException) as forbidden:
            client.AppsV1Api(api).list_namespaced_deployment(kube_namespace)
        assert forbidden.value.status == 403
        assert f"system:serviceaccount:{kube_namespace}:recharge-autoscaler" in str(forbidden.value.body)

    with kube_apiserver.api_client() as admin:
        rbac = client.RbacAuthorizationV1Api(admin)
        rbac.create_namespaced_role(kube_namespace, client.V1Role(
            metadata=client.V1ObjectMeta(name="read-deployments"),
            rules=[client.V1PolicyRule(api_groups=["apps"], resources=["deployments"], verbs=["list"])]))
        rbac.create_namespaced_role_binding(kube_namespace, client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="read-deployments"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                      name="read-deployments"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="recharge-autoscaler",
                                           namespace=kube_namespace)]))
    with kube_apiserver.api_client(token) as api:
        assert client.AppsV1Api(api).list_namespaced_deployment(kube_namespace).items == []
        with pytest.raises(ApiException) as still_forbidden:
            client.CoreV1Api(api).list_namespaced_secret(kube_namespace)
        assert still_forbidden.value.status == 403
