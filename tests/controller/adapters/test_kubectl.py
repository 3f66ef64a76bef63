"""The unmodified kubectl against the real kube-apiserver, on the objects the controller reads and writes.

What an operator does by hand (get, scale, patch, annotate, apply WITH validation) must work on exactly the
objects the product works on, and the product must see the result: these tests make the changes with kubectl
and read them back with the product's own adapter.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.adapters.kube import KubeScaleTarget
from tests.support.kube_testbed import TARGET, KubeTestbed, deployment_manifest, hpa_manifest
from tests.support.tools import require_tool

pytestmark = pytest.mark.helm  # needs the kubectl binary extracted by scripts/install-test-tools.sh

PAUSE = "recharge-autoscaler.io/paused"


def kubectl(
    kube: KubeTestbed, kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("kubectl"), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=kube.cluster.env(kubeconfig),
    )


@pytest.fixture
def admin(kube_seeded: KubeTestbed, tmp_path: Path) -> Path:
    return kube_seeded.kubeconfig(tmp_path / "kubeconfig")


def test_get_deploy_prints_a_table(kube_seeded: KubeTestbed, admin: Path) -> None:
    r = kubectl(kube_seeded, admin, "get", "deploy")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == [TARGET, "3/3", "3", "3"]
    r = kubectl(
        kube_seeded, admin, "get", "hpa", TARGET, "-o", "jsonpath={.spec.minReplicas}/{.spec.maxReplicas}"
    )
    assert (r.returncode, r.stdout) == (0, "2/20"), r.stderr


@pytest.mark.parametrize(
    ("args", "field", "expected"),
    [
        (("scale", f"deploy/{TARGET}", "--replicas=5"), ("spec", "replicas"), 5),
        (
            ("patch", "hpa", TARGET, "--type=merge", "-p", '{"spec":{"minReplicas":4}}'),
            ("spec", "minReplicas"),
            4,
        ),
        (("annotate", "deploy", TARGET, f"{PAUSE}=true"), ("metadata", "annotations", PAUSE), "true"),
    ],
    ids=["scale", "patch-hpa", "annotate"],
)
def test_kubectl_writes_are_visible_to_the_controller(
    kube_seeded: KubeTestbed, admin: Path, args: tuple[str, ...], field: tuple[str, ...], expected: object
) -> None:
    r = kubectl(kube_seeded, admin, *args)
    assert r.returncode == 0, r.stderr
    obj = kube_seeded.hpa() if "hpa" in args else kube_seeded.deployment()
    value: object = obj
    for key in field:
        assert isinstance(value, dict)
        value = value[key]
    assert value == expected
    with kube_seeded.client() as client:
        status = KubeScaleTarget(client, namespace=kube_seeded.namespace, name=TARGET, mode="hpa").status()
    seen = {"scale": status.replicas, "patch": status.floor, "annotate": status.paused}[args[0]]
    assert seen == expected if args[0] != "annotate" else seen is True


def test_scale_goes_through_the_scale_subresource(kube_seeded: KubeTestbed, tmp_path: Path) -> None:
    through_proxy = kube_seeded.kubeconfig(tmp_path / "proxied", proxy=True)
    assert kubectl(kube_seeded, through_proxy, "scale", f"deploy/{TARGET}", "--replicas=6").returncode == 0
    patches = [(r.path, r.content_type, r.status) for r in kube_seeded.proxy.calls("PATCH")]
    assert patches == [
        (
            f"/apis/apps/v1/namespaces/{kube_seeded.namespace}/deployments/{TARGET}/scale",
            "application/merge-patch+json",
            200,
        )
    ]


def test_kubectl_reports_not_found_and_forbidden(
    kube_seeded: KubeTestbed, tmp_path: Path, admin: Path
) -> None:
    r = kubectl(kube_seeded, admin, "get", "deploy", "missing")
    assert r.returncode == 1
    assert 'deployments.apps "missing" not found' in r.stderr
    token = kube_seeded.identity([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}])
    limited = kube_seeded.kubeconfig(tmp_path / "limited", token=token)
    assert kubectl(kube_seeded, limited, "get", "deploy", TARGET, "-o", "name").returncode == 0
    r = kubectl(kube_seeded, limited, "get", "hpa", TARGET, "-o", "name")
    assert r.returncode == 1
    assert 'cannot get resource "horizontalpodautoscalers" in API group "autoscaling"' in r.stderr
    r = kubectl(kube_seeded, limited, "auth", "can-i", "patch", "deployments/scale")
    assert (r.returncode, r.stdout.strip()) == (1, "no")


def test_get_lease_and_events_json(kube_seeded: KubeTestbed, admin: Path) -> None:
    kube_seeded.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "recharge-autoscaler"},
            "spec": {"holderIdentity": "pod-a_1"},
        }
    )
    r = kubectl(
        kube_seeded, admin, "get", "lease", "recharge-autoscaler", "-o", "jsonpath={.spec.holderIdentity}"
    )
    assert (r.returncode, r.stdout) == (0, "pod-a_1"), r.stderr
    from controller.adapters.kube import KubeEventSink

    with kube_seeded.client() as client:
        KubeEventSink(
            client,
            namespace=kube_seeded.namespace,
            involved={"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET},
        ).emit("ScaledUp", "3 -> 6")
    r = kubectl(kube_seeded, admin, "get", "events", "--field-selector", "reason=ScaledUp", "-o", "json")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)["items"]
    assert [(e["reason"], e["message"], e["involvedObject"]["name"]) for e in items] == [
        ("ScaledUp", "3 -> 6", TARGET)
    ]


def _manifests(kube: KubeTestbed, **hpa_spec: Any) -> str:
    hpa = hpa_manifest(kube.namespace, "web", min_replicas=2, max_replicas=8)
    hpa["spec"].update(hpa_spec)
    return yaml.safe_dump_all([deployment_manifest(kube.namespace, "web", 2), hpa])


def test_apply_with_validation_then_the_controller_acts_on_it(kube: KubeTestbed, tmp_path: Path) -> None:
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    r = kubectl(
        kube, config, "apply", "-f", "-", stdin=_manifests(kube)
    )  # kubectl's default: --validate=strict
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == [
        "deployment.apps/web created",
        "horizontalpodautoscaler.autoscaling/web created",
    ]

    with kube.client() as client:
        KubeScaleTarget(client, namespace=kube.namespace, name="web", mode="hpa").apply(5, '{"replicas": 5}')
    # Re-applying the file puts back the floor the file states (the operator's apply wins until the next
    # tick) and keeps the controller's decision annotation, which the file does not mention.
    r = kubectl(kube, config, "apply", "-f", "-", stdin=_manifests(kube))
    assert r.returncode == 0, r.stderr
    hpa = kube.hpa("web")
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2
    assert hpa["metadata"]["annotations"]["recharge-autoscaler.io/decision"] == '{"replicas": 5}'

    r = kubectl(
        kube,
        config,
        "apply",
        "--server-side",
        "--field-manager=ops",
        "-f",
        "-",
        stdin=_manifests(kube, maxReplicas=9),
    )
    assert r.returncode != 0 and "conflict" in r.stderr.lower()  # fields owned by the client-side apply
    r = kubectl(
        kube,
        config,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=ops",
        "-f",
        "-",
        stdin=_manifests(kube, maxReplicas=9),
    )
    assert r.returncode == 0, r.stderr
    assert kube.hpa("web")["spec"]["maxReplicas"] == 9  # type: ignore[index]


def test_apply_refuses_an_invalid_manifest(kube: KubeTestbed, tmp_path: Path) -> None:
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    r = kubectl(kube, config, "apply", "-f", "-", stdin=_manifests(kube, minReplica=2))  # typo
    assert r.returncode != 0
    assert 'unknown field "spec.minReplica"' in r.stderr
    r = kubectl(
        kube, config, "apply", "-f", "-", stdin=_manifests(kube, minReplicas=0)
    )  # schema-valid, invalid
    assert r.returncode != 0
    assert "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1" in r.stderr
    assert kube.hpa("web") is None
