"""``helm install``, ``upgrade`` and ``uninstall`` of the chart into the suite's real kube-apiserver, once per
ci values file.

The real helm (v4: server-side apply, OpenAPI validation of every object) installs each scenario into a fresh
namespace (the namespaces a ci file names are moved to fresh ones too: chartlib.namespace_sets). Every
object helm reports is then read back from the server and compared where it matters (config file, container
args, RBAC rules); an upgrade changes the product config and rolls the pod template; an uninstall removes
every object. The server runs no controllers, so nothing is waited for (``--wait=hookOnly``, helm's default:
the chart's only hook is the ``helm test`` pod, which an install does not create).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chartlib import (
    CHART,
    CI_VALUES,
    SERVICEMONITOR_CRD,
    helm_cluster,
    helm_env,
    namespace_sets,
)
from tests.support.kube_envtest import SERVICE_CLUSTER_IP_RANGE, KubeEnvtest
from tests.support.kube_testbed import KubeTestbed
from tests.support.tools import require_tool

pytestmark = pytest.mark.helm

CI_IDS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]


def kubectl(cluster: KubeEnvtest, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [require_tool("kubectl"), *args], capture_output=True, text=True, timeout=120, env=cluster.env()
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def servicemonitor_crd(kube_apiserver: KubeEnvtest) -> str:
    """The ServiceMonitor CRD registered and established (the direct-scale scenario creates one)."""
    kubectl(kube_apiserver, "apply", "-f", str(SERVICEMONITOR_CRD))
    name = "crd/servicemonitors.monitoring.coreos.com"
    kubectl(kube_apiserver, "wait", "--for=condition=Established", name, "--timeout=60s")
    return name


def server_objects(cluster: KubeEnvtest, manifest: Path, *, check: bool = True) -> list[dict[str, Any]]:
    proc = kubectl(cluster, "get", "-f", str(manifest), "-o", "json", "--ignore-not-found", check=check)
    if not proc.stdout.strip():
        return []
    doc = json.loads(proc.stdout)
    return list(doc.get("items", [doc]))


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_helm_install_upgrade_uninstall(
    values: Path, kube: KubeTestbed, kube_apiserver: KubeEnvtest, servicemonitor_crd: str, tmp_path: Path
) -> None:
    release_ns, target_ns = kube.namespace, kube_apiserver.create_namespace("target")
    release = f"ra-{uuid.uuid4().hex[:6]}"
    env = helm_env(kube.kubeconfig(tmp_path / "kubeconfig"), tmp_path / "helm")
    sets = [
        arg
        for s in namespace_sets(values, target_ns=target_ns, release_ns=release_ns)
        for arg in ("--set", s)
    ]
    common = [str(CHART), "-n", release_ns, "-f", str(values), *sets, "--wait=hookOnly", "--timeout=2m"]

    # --- install ---
    installed = json.loads(helm_cluster(env, "install", release, *common, "-o", "json"))
    assert (installed["info"]["status"], installed["version"]) == ("deployed", 1)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(helm_cluster(env, "get", "manifest", release, "-n", release_ns))
    sent = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc]
    stored = {key(o): o for o in server_objects(kube_apiserver, manifest)}
    assert set(stored) == {key(o) for o in sent}, "every object helm applied is on the server"
    kinds = {k for k, _, _ in stored}
    assert {"Deployment", "ConfigMap", "Role", "RoleBinding", "Service"} <= kinds
    assert "Pod" not in kinds  # the helm test pod is a test hook, not installed
    assert {ns for _, ns, _ in stored} <= {release_ns, target_ns, ""}
    for obj in sent:
        got = stored[key(obj)]
        if obj["kind"] == "ConfigMap":
            assert got["data"] == obj["data"]
        elif obj["kind"] == "Deployment":
            want_pod, got_pod = obj["spec"]["template"]["spec"], got["spec"]["template"]["spec"]
            assert [c["args"] for c in got_pod["containers"]] == [c["args"] for c in want_pod["containers"]]
            assert got["spec"]["replicas"] == obj["spec"].get("replicas", 1)
            assert got_pod.get("serviceAccountName") == want_pod.get("serviceAccountName")
        elif obj["kind"] == "Role":
            assert got["rules"] == obj["rules"]
        elif obj["kind"] == "Service":
            assert ipaddress.ip_address(got["spec"]["clusterIP"]) in ipaddress.ip_network(
                SERVICE_CLUSTER_IP_RANGE
            )
        elif obj["kind"] == "ServiceMonitor":
            assert got["spec"] == obj["spec"]
    deployment = next(o for o in sent if o["kind"] == "Deployment")
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    listed = json.loads(helm_cluster(env, "list", "-n", release_ns, "-o", "json"))
    assert [(r["name"], r["status"]) for r in listed] == [(release, "deployed")]

    # --- upgrade: a new capacity per replica reaches the config file and rolls the pods ---
    upgraded = json.loads(
        helm_cluster(
            env, "upgrade", release, *common, "--set", "controller.capacityPerReplica=777", "-o", "json"
        )
    )
    assert (upgraded["info"]["status"], upgraded["version"]) == ("deployed", 2)
    config_cm = next(
        o for o in sent if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-config")
    )
    cm = kube.get("v1", "ConfigMap", config_cm["metadata"]["name"], release_ns)
    assert (
        cm is not None
        and yaml.safe_load(cm["data"]["config.yaml"])["controller"]["capacityPerReplica"] == 777
    )
    dep = kube.get("apps/v1", "Deployment", deployment["metadata"]["name"], release_ns)
    assert dep is not None
    assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != checksum
    assert dep["metadata"]["generation"] == 2

    # --- uninstall: nothing of the release is left ---
    helm_cluster(env, "uninstall", release, "-n", release_ns, "--wait=hookOnly", "--timeout=2m")
    assert server_objects(kube_apiserver, manifest) == []
    assert json.loads(helm_cluster(env, "list", "-n", release_ns, "-o", "json")) == []
    secrets = kube.list("v1", "Secret", release_ns)
    assert [s["metadata"]["name"] for s in secrets if s.get("type") == "helm.sh/release.v1"] == []


def test_install_refuses_values_the_schema_rejects(kube: KubeTestbed, tmp_path: Path) -> None:
    """helm checks values.schema.json before it talks to the server: nothing is created."""
    from tests.helm.chartlib import HelmFailed

    env = helm_env(kube.kubeconfig(tmp_path / "kubeconfig"), tmp_path / "helm")
    with pytest.raises(HelmFailed, match="capacityPerReplica"):
        helm_cluster(
            env,
            "install",
            "bad",
            str(CHART),
            "-n",
            kube.namespace,
            "--set",
            "controller.target.name=x",
            "--set",
            "controller.capacityPerReplica=-1",
        )
    assert (
        kube.list("v1", "ConfigMap") == [] and kube.list("v1", "Secret") == []
    )  # no object, no release record
