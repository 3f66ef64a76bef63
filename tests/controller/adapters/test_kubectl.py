"""The real kubectl works against the stand-in API server: discovery, ``get`` tables, ``scale``, errors.

This keeps the stand-in honest: if kubectl (a strict, independent client) accepts its discovery documents,
lists and subresources, tests built on it exercise the same protocol a real cluster speaks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.kubeapi.fixtures import NAMESPACE, TARGET
from tests.support.kubeapi.server import KubeApiServer
from tests.support.tools import require_tool

pytestmark = pytest.mark.helm  # needs the kubectl binary extracted by scripts/install-test-tools.sh


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("kubectl"), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_get_deploy_prints_a_table(kube_seeded: KubeApiServer, kubeconfig: Path) -> None:
    r = kubectl(kubeconfig, "get", "deploy")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == [TARGET, "3/3", "3", "3"]


@pytest.mark.parametrize(
    ("args", "field", "expected"),
    [
        (("scale", f"deploy/{TARGET}", "--replicas=5"), ("spec", "replicas"), 5),
        (
            ("patch", "hpa", TARGET, "--type=merge", "-p", '{"spec":{"minReplicas":4}}'),
            ("spec", "minReplicas"),
            4,
        ),
        (
            ("annotate", "deploy", TARGET, "recharge-autoscaler.io/paused=true"),
            ("metadata", "annotations", "recharge-autoscaler.io/paused"),
            "true",
        ),
    ],
    ids=["scale", "patch-hpa", "annotate"],
)
def test_kubectl_writes_are_visible(
    kube_seeded: KubeApiServer,
    kubeconfig: Path,
    args: tuple[str, ...],
    field: tuple[str, ...],
    expected: object,
) -> None:
    r = kubectl(kubeconfig, *args)
    assert r.returncode == 0, r.stderr
    obj = kube_seeded.hpa(NAMESPACE, TARGET) if "hpa" in args else kube_seeded.deployment(NAMESPACE, TARGET)
    assert obj is not None
    value: object = obj
    for key in field:
        assert isinstance(value, dict)
        value = value[key]
    assert value == expected


def test_scale_goes_through_the_scale_subresource(kube_seeded: KubeApiServer, kubeconfig: Path) -> None:
    assert kubectl(kubeconfig, "scale", f"deploy/{TARGET}", "--replicas=6").returncode == 0
    patches = [(r.path, r.content_type) for r in kube_seeded.requests if r.method == "PATCH"]
    assert patches == [
        (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{TARGET}/scale", "application/merge-patch+json")
    ]


def test_kubectl_reports_not_found_and_forbidden(kube_seeded: KubeApiServer, kubeconfig: Path) -> None:
    r = kubectl(kubeconfig, "get", "deploy", "missing")
    assert r.returncode == 1
    assert 'deployments.apps "missing" not found' in r.stderr
    kube_seeded.fail(403, method="GET", path="/horizontalpodautoscalers/")
    r = kubectl(kubeconfig, "get", "hpa", TARGET, "-o", "name")
    assert r.returncode == 1
    assert 'cannot get resource "horizontalpodautoscalers" in API group "autoscaling"' in r.stderr


def test_get_lease_and_events_json(kube_seeded: KubeApiServer, kubeconfig: Path) -> None:
    kube_seeded.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "recharge-autoscaler", "namespace": NAMESPACE},
            "spec": {"holderIdentity": "pod-a_1"},
        }
    )
    r = kubectl(kubeconfig, "get", "lease", "recharge-autoscaler", "-o", "jsonpath={.spec.holderIdentity}")
    assert (r.returncode, r.stdout) == (0, "pod-a_1"), r.stderr
