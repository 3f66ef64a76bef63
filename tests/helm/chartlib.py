"""Render the Helm chart with the real helm binary and hand the manifests to the chart tests.

Rendering is cached per (values files, --set flags, namespace) so the many assertions over one scenario
cost one `helm template` call. Failures come back as :class:`HelmFailed` with helm's own message, which is
what a user would see.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.tools import REPO_ROOT, require_tool

CHART = REPO_ROOT / "helm" / "recharge-autoscaler"
ALL_CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# The single-workload scenarios (controller.target, `run`); the fleet scenarios (ci/fleet*-values.yaml,
# `fleet`) have their own checks in test_chart_fleet.py.
FLEET_VALUES = [p for p in ALL_CI_VALUES if p.name.startswith("fleet")]
CI_VALUES = [p for p in ALL_CI_VALUES if p not in FLEET_VALUES]
RELEASE = "rel"
NAMESPACE = "autoscaling"

Manifest = dict[str, Any]


class HelmFailed(AssertionError):
    """helm exited non-zero; the message is helm's combined output."""


def helm(*args: str) -> str:
    proc = subprocess.run([require_tool("helm"), *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise HelmFailed(proc.stdout + proc.stderr)
    return proc.stdout + proc.stderr


@functools.lru_cache(maxsize=64)
def _template(values: tuple[str, ...], sets: tuple[str, ...], namespace: str, show_tests: bool) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", namespace]
    for v in values:
        args += ["-f", v]
    for s in sets:
        args += ["--set", s]
    return helm(*args)


def render(*values: Path | str, sets: tuple[str, ...] = (), namespace: str = NAMESPACE) -> list[Manifest]:
    """All manifests (hooks and helm tests included) rendered for the given values files and --set flags."""
    text = _template(tuple(str(v) for v in values), tuple(sets), namespace, True)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def product_config(manifests: list[Manifest]) -> dict[str, Any]:
    """The product config file the chart renders (ConfigMap <fullname>-config, key config.yaml)."""
    cms = [m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-config")]
    assert len(cms) == 1
    data = yaml.safe_load(cms[0]["data"]["config.yaml"])
    assert isinstance(data, dict)
    return data


def pod_specs(manifests: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """(object name, pod spec) of every pod the chart can create: Deployment, CronJob, helm test Pod."""
    out = []
    for m in manifests:
        kind, name = m["kind"], m["metadata"]["name"]
        if kind == "Deployment":
            out.append((f"{kind}/{name}", m["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            out.append((f"{kind}/{name}", m["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif kind == "Pod":
            out.append((f"{kind}/{name}", m["spec"]))
    return out


def egress_admits(policy: dict[str, Any], port: int, peer: dict[str, Any] | None = None) -> bool:
    """True when some egress rule lets TCP ``port`` out (to ``peer``, or to anywhere when peer is None)."""
    for rule in policy["spec"].get("egress", []):
        ports = rule.get("ports")
        if ports is not None and not any(
            p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in ports
        ):
            continue
        peers = rule.get("to")
        if peers is None or (peer is not None and peer in peers):
            return True
    return False


# --- the chart in the suite's real API server ---------------------------------------------------------------

SERVICEMONITOR_CRD = Path(__file__).with_name("servicemonitor-crd.yaml")


def ci_values(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def namespace_sets(values: Path, *, target_ns: str, release_ns: str) -> tuple[str, ...]:
    """--set flags that move the fixed namespaces a ci values file names into the test's own namespaces.

    The ci files name ``payments`` (target) and ``autoscaling`` (lease); on the shared test server every test
    uses fresh namespaces instead, with the same shape: a target namespace given stays apart from the
    release's, a lease namespace given goes to the release's.
    """
    doc = yaml.safe_load(values.read_text()) or {}
    ctl = doc.get("controller") or {}
    sets = []
    if (ctl.get("target") or {}).get("namespace"):
        sets.append(f"controller.target.namespace={target_ns}")
    if (ctl.get("leaderElection") or {}).get("leaseNamespace"):
        sets.append(f"controller.leaderElection.leaseNamespace={release_ns}")
    if (doc.get("serviceMonitor") or {}).get("namespace"):
        sets.append(f"serviceMonitor.namespace={release_ns}")
    return tuple(sets)


def helm_env(kubeconfig: Path, home: Path) -> dict[str, str]:
    """Environment for helm against ``kubeconfig`` with its config, cache and data kept under ``home``."""
    import os

    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(home / "kube-cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def helm_cluster(env: dict[str, str], *args: str) -> str:
    """helm (the real binary) against the cluster in ``env``; HelmFailed carries helm's own message."""
    proc = subprocess.run([require_tool("helm"), *args], capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        raise HelmFailed(f"helm {' '.join(args)}: {proc.stdout}{proc.stderr}")
    return proc.stdout
