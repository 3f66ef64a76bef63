"""scripts/e2e-kind.sh runs the controller once on a cluster: the suite's server always, kind if reachable.

The run on the suite's kube-apiserver (tests/support/kube_envtest.py) proves in every CI run that the script,
its manifests (validated by the server) and the real ``recharge-autoscaler run`` CLI fit together; the kind
run (marker ``kind``) repeats it with a real HPA controller and kubelet, and is skipped with the reason when
no kind cluster is reachable.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.kube_testbed import KubeTestbed
from tests.support.tools import tool_path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "e2e-kind.sh"


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_script_against_the_suite_api_server(kube: KubeTestbed, tmp_path: Path) -> None:
    if tool_path("kubectl") is None:
        pytest.fail("kubectl not found; run `bash scripts/install-test-tools.sh`")
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"  # the script creates it, and deletes it at the end
    r = run_script(
        {
            "KUBECONFIG": str(kubeconfig),
            "E2E_ALLOW_CONTEXT": "envtest",
            "E2E_NAMESPACE": namespace,
            "KUBECACHEDIR": str(tmp_path / "kubectl-cache"),
            "KUBECTL": tool_path("kubectl") or "",
        }
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "e2e-kind: OK (HPA minReplicas 1 -> 3" in r.stdout
    hpa = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "recharge", namespace)
    assert hpa is not None and hpa["spec"]["minReplicas"] == 3
    ns = kube.get("v1", "Namespace", namespace)
    # deleted: without a namespace controller it stays Terminating, but the deletion was requested
    assert ns is not None and ns["metadata"].get("deletionTimestamp"), ns


def test_script_refuses_a_non_kind_context(kube: KubeTestbed, tmp_path: Path) -> None:
    if tool_path("kubectl") is None:
        pytest.fail("kubectl not found; run `bash scripts/install-test-tools.sh`")
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", proxy=True)  # context "envtest-proxy"
    r = run_script(
        {
            "KUBECONFIG": str(kubeconfig),
            "E2E_ALLOW_CONTEXT": "",
            "KUBECACHEDIR": str(tmp_path / "kubectl-cache"),
        }
    )
    assert r.returncode == 2
    assert "refusing context 'envtest-proxy' (not kind-*)" in r.stderr
    assert kube.proxy.calls()  # it did reach the server (cluster-info) ...
    assert [q.method for q in kube.proxy.calls() if q.method != "GET"] == []  # ... and wrote nothing


def _kind_cluster() -> str | None:
    """Why the kind test cannot run, or None when a kind-* context answers."""
    kubectl = tool_path("kubectl")
    if kubectl is None:
        return "kubectl not installed (scripts/install-test-tools.sh)"
    ctx = subprocess.run([kubectl, "config", "current-context"], capture_output=True, text=True, timeout=30)
    name = ctx.stdout.strip()
    if ctx.returncode != 0 or not name:
        return "no kubeconfig context configured (create one with `kind create cluster`)"
    if not name.startswith("kind-") and os.environ.get("E2E_ALLOW_CONTEXT") != name:
        return f"current context {name!r} is not a kind cluster (set E2E_ALLOW_CONTEXT={name} to use it)"
    info = subprocess.run(
        [kubectl, "--request-timeout=5s", "cluster-info"], capture_output=True, text=True, timeout=30
    )
    if info.returncode != 0:
        return f"context {name!r} is not reachable: `kubectl cluster-info` failed"
    return None


@pytest.mark.kind
@pytest.mark.slow
def test_controller_once_on_kind() -> None:
    reason = _kind_cluster()
    if reason is not None:
        pytest.skip(f"no real cluster: {reason}")
    r = run_script({})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "e2e-kind: OK" in r.stdout
