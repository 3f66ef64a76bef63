"""The chart's RBAC grants exactly the Kubernetes API calls the product's code makes, no more, no fewer.

The calls are read from the source of the Kubernetes adapters (``<verb>_namespaced_<resource>`` methods of
the official client), so a new call without a matching Role rule - or a rule nobody uses any more - fails
here instead of as a 403 in production. tests/helm/test_chart_rbac.py proves the same rules on the real API
server: the controller and the job run as the chart's ServiceAccounts, and everything else gets 403.
"""

from __future__ import annotations

import ast
import re

import pytest

from tests.helm.chartlib import CHART, of_kind, render
from tests.support.tools import REPO_ROOT

pytestmark = pytest.mark.helm

ADAPTERS = (
    "controller/adapters/kube.py",
    "controller/adapters/lease.py",
    "controller/adapters/statestore.py",
    "forecaster/adapters/configmap_store.py",
)
# The fleet controller's calls (list/watch through informers, status writes) are granted by the chart's
# fleet mode; they are scanned apart from the single-workload controller's.
FLEET_ADAPTERS = (
    "controller/adapters/informer.py",
    "controller/adapters/status.py",
)
_CALL = re.compile(r"^(read|create|patch|replace|delete|list)_namespaced_([a-z_]+)$")
VERBS = {
    "read": "get",
    "create": "create",
    "patch": "patch",
    "replace": "update",
    "delete": "delete",
    "list": "list",
}
RESOURCES = {
    "deployment": "deployments",
    "deployment_scale": "deployments/scale",
    "horizontal_pod_autoscaler": "horizontalpodautoscalers",
    "event": "events",
    "lease": "leases",
    "config_map": "configmaps",
}


def calls_in_code() -> set[tuple[str, str]]:
    used: set[tuple[str, str]] = set()
    for rel in ADAPTERS:
        tree = ast.parse((REPO_ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and (m := _CALL.match(node.attr)):
                used.add((RESOURCES[m.group(2)], VERBS[m.group(1)]))
    return used


def granted(*scenarios: str) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for name in scenarios:
        for role in of_kind(render(CHART / "ci" / f"{name}-values.yaml"), "Role"):
            for rule in role["rules"]:
                out |= {(res, verb) for res in rule["resources"] for verb in rule["verbs"]}
    return out


def test_adapters_exist_and_make_calls() -> None:
    missing = [rel for rel in ADAPTERS if not (REPO_ROOT / rel).exists()]
    assert missing == [], f"Kubernetes adapters not found: {missing}"
    assert len(calls_in_code()) >= 8


def test_every_module_making_calls_is_scanned() -> None:
    # A call moved to a module outside ADAPTERS would silently drop out of the RBAC comparison.
    callers = {
        path.relative_to(REPO_ROOT).as_posix()
        for package in ("controller", "forecaster")
        for path in (REPO_ROOT / package).rglob("*.py")
        if any(
            isinstance(node, ast.Attribute) and _CALL.match(node.attr)
            for node in ast.walk(ast.parse(path.read_text()))
        )
    }
    unscanned = sorted(callers - set(ADAPTERS) - set(FLEET_ADAPTERS))
    assert unscanned == [], f"modules with Kubernetes calls not in ADAPTERS: {unscanned}"


def test_chart_grants_exactly_the_calls_the_code_makes() -> None:
    # hpa + direct-scale together exercise both target modes, the Lease, Events and both ConfigMap users.
    used, grants = calls_in_code(), granted("hpa", "direct-scale")
    assert grants == used, (
        f"granted but unused: {sorted(grants - used)}; used but not granted: {sorted(used - grants)}"
    )


def test_dry_run_grants_no_writes_on_the_target() -> None:
    # A dry run takes no Lease and writes no Events or state: the only writes left are the forecast job's
    # (its own ServiceAccount, on the forecast ConfigMap).
    writes = {(r, v) for r, v in granted("dryrun") if v != "get"}
    assert writes == {("configmaps", "create"), ("configmaps", "update")}
    controller_roles = [
        role
        for role in of_kind(render(CHART / "ci" / "dryrun-values.yaml"), "Role")
        if not role["metadata"]["name"].endswith("-forecast-job")
    ]
    assert controller_roles
    for role in controller_roles:
        for rule in role["rules"]:
            assert rule["verbs"] == ["get"], rule
            assert "leases" not in rule["resources"], rule


# --- the fleet controller ----------------------------------------------------------------------------------

# The single-workload adapters the fleet reuses: CachedScaleTarget is a KubeScaleTarget (its live re-read and
# writes), KubeEventSink, LeaseLock. It keeps its state in memory (MemoryStateStore) and reads forecasts from
# the ConfigMap informer, so the state and forecast ConfigMap stores are not among them.
FLEET_REUSED = ("controller/adapters/kube.py", "controller/adapters/lease.py")
FLEET_MODULES = ("controller/fleet/reconciler.py", "controller/adapters/cached.py", "controller/cli/fleet.py")


def _calls(paths: tuple[str, ...]) -> set[tuple[str, str]]:
    used: set[tuple[str, str]] = set()
    for rel in paths:
        for node in ast.walk(ast.parse((REPO_ROOT / rel).read_text())):
            if isinstance(node, ast.Attribute) and (m := _CALL.match(node.attr)):
                used.add((RESOURCES[m.group(2)], VERBS[m.group(1)]))
    return used


def _attributes(rel: str) -> set[str]:
    tree = ast.parse((REPO_ROOT / rel).read_text())
    return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}


def fleet_calls_in_code() -> set[tuple[str, str]]:
    """Every (resource, verb) the fleet controller's code makes."""
    from kubernetes import client

    from controller.fleet.reconciler import FleetController, FleetDeps

    # The informers list and watch the kinds they are given: through the custom-objects API (scalers,
    # Deployments, HPAs), or the core API (ConfigMaps), per namespace or across all of them.
    informer = _attributes("controller/adapters/informer.py")
    assert {"list_namespaced_custom_object", "list_cluster_custom_object", "Watch", "stream"} <= informer
    # The status writer patches the status subresource of the scalers.
    assert "patch_namespaced_custom_object_status" in _attributes("controller/adapters/status.py")
    fleet = FleetController(FleetDeps(api_client=client.ApiClient(), load_for=lambda cfg: None))  # type: ignore[arg-type, return-value]
    used = {(inf.kind.plural, verb) for inf in fleet._informers for verb in ("list", "watch")}
    used.add((f"{fleet.status_writer.kind.plural}/status", "patch"))
    return used | _calls(FLEET_REUSED)


def fleet_job_calls_in_code() -> set[tuple[str, str]]:
    """Every (resource, verb) the fleet forecast job (`forecast-job --fleet`) makes: one list of the scalers
    (informer.list_objects: the informer's list, no watch), then each scaler's forecast ConfigMap through
    the ConfigMap store."""
    from controller.fleet.forecast_job import SCALERS

    source = (REPO_ROOT / "controller/fleet/forecast_job.py").read_text()
    assert "list_objects(" in source and "open_store(" in source
    return {(SCALERS.plural, "list")} | _calls(("forecaster/adapters/configmap_store.py",))


def fleet_granted(name: str, component: str) -> set[tuple[str, str]]:
    manifests = render(CHART / "ci" / f"{name}-values.yaml")
    return {
        (res, verb)
        for role in of_kind(manifests, "Role") + of_kind(manifests, "ClusterRole")
        if role["metadata"]["labels"]["app.kubernetes.io/component"] == component
        for rule in role["rules"]
        for res in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_fleet_reuses_only_the_scanned_adapters() -> None:
    source = "".join((REPO_ROOT / rel).read_text() for rel in FLEET_MODULES)
    for store in ("ConfigMapStateStore", "ConfigMapStore("):
        assert store not in source, f"the fleet now uses {store}: add its module to FLEET_REUSED"
    assert set(FLEET_REUSED) <= set(ADAPTERS)


@pytest.mark.parametrize("scenario", ["fleet", "fleet-namespaces"])
def test_fleet_chart_grants_exactly_the_calls_the_fleet_makes(scenario: str) -> None:
    calls = {"controller": fleet_calls_in_code(), "forecast-job": fleet_job_calls_in_code()}
    for component, used in calls.items():
        grants = fleet_granted(scenario, component)
        assert grants == used, (
            f"{component}: granted but unused: {sorted(grants - used)}; "
            f"used but not granted: {sorted(used - grants)}"
        )
