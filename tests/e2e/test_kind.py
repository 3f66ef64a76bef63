"""scripts/e2e-kind.sh runs the controller once on a cluster: the stand-in server always, kind if reachable.

The stand-in run proves the script and the real ``recharge-autoscaler run`` CLI fit together in every CI run;
the kind run (marker ``kind``) repeats it against a real kube-apiserver, HPA controller and RBAC-less admin
credentials, and is skipped with the reason when no kind cluster is reachable.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.kubeapi.server import KubeApiServer
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
def test_script_against_the_stand_in_server(tmp_path: Path) -> None:
    if tool_path("kubectl") is None:
        pytest.fail("kubectl not found; run `bash scripts/install-test-tools.sh`")
    with KubeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        r = run_script({"KUBECONFIG": str(kubeconfig), "E2E_ALLOW_CONTEXT": "test"})
        assert r.returncode == 0, r.stdout + r.stderr
        assert "e2e-kind: OK (HPA minReplicas 1 -> 3" in r.stdout
        hpa = server.hpa("recharge-e2e", "recharge")
        assert hpa is not None and hpa["spec"]["minReplicas"] == 3
        assert (
            server.get("v1", "Namespace", "", "recharge-e2e") is None
        )  # cleaned up (no cascade in the stand-in)


def test_script_refuses_a_non_kind_context(tmp_path: Path) -> None:
    if tool_path("kubectl") is None:
        pytest.fail("kubectl not found; run `bash scripts/install-test-tools.sh`")
    with KubeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        r = run_script({"KUBECONFIG": str(kubeconfig), "E2E_ALLOW_CONTEXT": ""})
        assert r.returncode == 2
        assert "refusing context 'test' (not kind-*)" in r.stderr
        assert [q.method for q in server.requests if q.method != "GET"] == []


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
