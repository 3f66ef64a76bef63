"""Fleet mode of the chart on the suite's real kube-apiserver.

RBAC: the fleet's rendered Roles (listed namespaces) or ClusterRole (every namespace) are applied, the fleet
controller runs as the chart's ServiceAccount (a token from the TokenRequest API) and reconciles a scaler's
Deployment + HPA from its forecast ConfigMap, while a Secret read, a write in an unwatched namespace and a
cluster-scoped write are refused (403). Install: ``helm install`` of ci/fleet-values.yaml installs the
PredictiveScaler CRD from the chart's crds/ (``kubectl get predictivescalers`` works, the docs' example
scaler is accepted), ``helm upgrade`` rolls the controller, ``helm uninstall`` removes the release but keeps
the CRD and the scalers (Helm never deletes crds/).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from controller.adapters.informer import wait_for
from controller.fleet.spec import GROUP, PLURAL, VERSION
from tests.controller.fleet.conftest import Cluster, FakeLoad, artifact, crd_installed  # noqa: F401
from tests.helm.chartlib import (
    CHART,
    SERVICEMONITOR_CRD,
    helm,
    helm_cluster,
    helm_env,
    of_kind,
    product_config,
)
from tests.support.kube_envtest import KubeEnvtest
from tests.support.tools import REPO_ROOT, require_tool

pytestmark = [pytest.mark.helm, pytest.mark.kube]

CRD_FILE = CHART / "crds" / "predictivescalers.yaml"
CRD_NAME = f"{PLURAL}.{GROUP}"
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


def kubectl(env: KubeEnvtest, *args: str, stdin: str | None = None, check: bool = True,
            kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([require_tool("kubectl"), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=env.env(kubeconfig), check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}")
    return proc


def template(release: str, namespace: str, values: str, *sets: str) -> list[dict[str, Any]]:
    values_file = CHART / "ci" / f"{values}-values.yaml"
    args = ["template", release, str(CHART), "-n", namespace, "-f", str(values_file)]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(*args)) if d]


def status_code(call: Any) -> int:
    from kubernetes.client.exceptions import ApiException

    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def ready(cluster: Cluster, name: str) -> dict[str, Any]:
    conds = {c["type"]: c for c in cluster.get_scaler(name).get("status", {}).get("conditions", [])}
    return conds.get("Ready", {})


def seed(cluster: Cluster, name: str = "recharge") -> None:
    """A Deployment + HPA (floor 2), its forecast ConfigMap (1,000 req/s: 24 replicas) and its scaler."""
    cluster.deployment(name, replicas=3)
    cluster.hpa(name, lo=2)
    cluster.forecast(name, artifact(pd.Timestamp.now(tz="UTC"), level=1000.0))
    cluster.scaler(name, name, load={"query": "sum(rate(recharge_requests_total[1m]))"})


class Identity:
    """The chart's controller ServiceAccount, as the fleet runs under it."""

    def __init__(self, env: KubeEnvtest, release_ns: str, sa: str, tmp_path: Path) -> None:
        self.token = env.service_account_token(release_ns, sa, create=False)
        self.api = env.api_client(self.token)
        self.kubeconfig = env.write_kubeconfig(tmp_path / "sa-kubeconfig", token=self.token,
                                               namespace=release_ns, user=sa)

    def forbidden_everywhere_else(self, watched: str, other: str | None) -> None:
        from kubernetes import client

        core, apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        rbac = client.RbacAuthorizationV1Api(self.api)
        custom = client.CustomObjectsApi(self.api)
        # no Secret, in the namespace it watches or anywhere
        assert status_code(lambda: core.list_namespaced_secret(watched)) == 403
        assert status_code(lambda: core.read_namespaced_secret("anything", watched)) == 403
        # ConfigMaps are only listed and watched (the forecasts): no write
        assert status_code(lambda: core.create_namespaced_config_map(
            watched, {"metadata": {"name": "x"}, "data": {}})) == 403
        # no cluster-scoped write
        new_ns = {"metadata": {"name": f"x-{uuid.uuid4().hex[:6]}"}}
        assert status_code(lambda: core.create_namespace(new_ns)) == 403
        assert status_code(lambda: rbac.create_cluster_role(
            {"metadata": {"name": f"x-{uuid.uuid4().hex[:6]}"}, "rules": []})) == 403
        assert status_code(lambda: core.patch_node("n", {"metadata": {"labels": {"x": "y"}}})) == 403
        if other is not None:  # a namespace it does not watch: nothing at all
            assert status_code(lambda: apps.patch_namespaced_deployment(
                "recharge", other, {"metadata": {"annotations": {"x": "y"}}})) == 403
            assert status_code(lambda: apps.list_namespaced_deployment(other)) == 403
            assert status_code(
                lambda: custom.list_namespaced_custom_object(GROUP, VERSION, other, PLURAL)) == 403
            assert status_code(lambda: core.create_namespaced_event(other, {
                "metadata": {"name": "x"}, "involvedObject": {"name": "x"}, "reason": "X"})) == 403


@pytest.fixture
def release(crd_installed: KubeEnvtest) -> Iterator[tuple[str, str]]:  # noqa: F811
    """(release name, release namespace); cluster-scoped RBAC objects of the release are deleted after."""
    name, namespace = f"fl{uuid.uuid4().hex[:4]}", crd_installed.create_namespace("rel")
    yield name, namespace
    kubectl(crd_installed, "delete", "clusterrole,clusterrolebinding", "-l",
            f"app.kubernetes.io/instance={name}", "--ignore-not-found", check=False)


def apply_rbac(env: KubeEnvtest, manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    rbac = [m for m in manifests if m["kind"] in RBAC_KINDS]
    assert rbac
    path = tmp_path / "rbac.yaml"
    path.write_text(yaml.safe_dump_all(rbac))
    kubectl(env, "apply", "-f", str(path))


def test_listed_namespaces_fleet_reconciles_as_its_service_account_and_nothing_else(
    crd_installed: KubeEnvtest, release: tuple[str, str], tmp_path: Path  # noqa: F811
) -> None:
    env, (name, release_ns) = crd_installed, release
    watched, other = env.create_namespace("watched"), env.create_namespace("other")
    manifests = template(name, release_ns, "fleet", f"fleet.namespaces={{{watched}}}",
                         "source.prometheus.url=http://127.0.0.1:9")  # live load missing: forecast only
    assert not of_kind(manifests, "ClusterRole")
    apply_rbac(env, manifests, tmp_path)
    mine, theirs = Cluster(env, watched), Cluster(env, other)
    seed(mine)
    seed(theirs)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(product_config(manifests)))
    sa = Identity(env, release_ns, f"{name}-recharge-autoscaler", tmp_path)

    # `recharge-autoscaler fleet --once`, the command the chart's Deployment runs, as the ServiceAccount
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "fleet", "--config", str(config), "--once",
         "--kubeconfig", str(sa.kubeconfig)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = r"leader: True; scalers: 1, acted: 1, failed: 0, invalid: 0, status writes: 1"
    assert re.search(summary, proc.stdout), proc.stdout + proc.stderr
    assert "403" not in proc.stderr and "forbidden" not in proc.stderr.lower(), proc.stderr
    assert mine.hpa_floor("recharge") > 2  # scaled up ahead of the forecast peak
    cond = ready(mine, "recharge")
    assert (cond["status"], cond["reason"]) == ("True", "Reconciled")
    assert theirs.hpa_floor("recharge") == 2 and ready(theirs, "recharge") == {}  # not watched: untouched
    lease = kubectl(env, "-n", release_ns, "get", "lease", f"{name}-recharge-autoscaler-leader", "-o", "json")
    assert json.loads(lease.stdout)["spec"]["leaseTransitions"] >= 0
    events = kubectl(env, "-n", watched, "get", "events", "-o", "json")
    assert any(e["involvedObject"]["kind"] == "PredictiveScaler" for e in json.loads(events.stdout)["items"])

    sa.forbidden_everywhere_else(watched, other)

    # the forecast CronJob's own ServiceAccount: the scalers and the forecast ConfigMaps of the watched
    # namespace, nothing else (tests/controller/fleet/test_forecast_job.py runs the job under these grants)
    from kubernetes import client

    job = Identity(env, release_ns, f"{name}-recharge-autoscaler-forecast-job", tmp_path)
    core, apps = client.CoreV1Api(job.api), client.AppsV1Api(job.api)
    custom = client.CustomObjectsApi(job.api)
    assert status_code(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, watched, PLURAL)) == 200
    assert status_code(lambda: core.read_namespaced_config_map("recharge-forecast", watched)) == 200
    body = {"metadata": {"name": "job-probe"}, "data": {}}
    assert status_code(lambda: core.create_namespaced_config_map(watched, body)) == 200  # created
    assert status_code(lambda: core.replace_namespaced_config_map("job-probe", watched, body)) == 200
    assert status_code(lambda: core.create_namespaced_config_map(other, body)) == 403
    assert status_code(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, other, PLURAL)) == 403
    assert status_code(lambda: core.read_namespaced_secret("anything", watched)) == 403
    assert status_code(lambda: apps.patch_namespaced_deployment(
        "recharge", watched, {"metadata": {"annotations": {"x": "y"}}})) == 403
    assert status_code(lambda: custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, watched, PLURAL, "recharge", {"status": {}})) == 403


def test_every_namespace_fleet_reconciles_cluster_wide_but_reads_no_secret(
    crd_installed: KubeEnvtest, release: tuple[str, str], tmp_path: Path  # noqa: F811
) -> None:
    from controller.fleet.reconciler import FleetController, FleetDeps

    env, (name, release_ns) = crd_installed, release
    first, second = env.create_namespace("any"), env.create_namespace("any")
    manifests = template(name, release_ns, "fleet")
    assert [m["metadata"]["name"] for m in of_kind(manifests, "ClusterRole")]
    apply_rbac(env, manifests, tmp_path)
    clusters = [Cluster(env, first), Cluster(env, second)]
    for c in clusters:
        seed(c)
    sa = Identity(env, release_ns, f"{name}-recharge-autoscaler", tmp_path)
    # cluster-wide informers (namespaces=None: list/watch across namespaces) under the ClusterRole
    fleet = FleetController(FleetDeps(api_client=sa.api, load_for=lambda cfg: FakeLoad(400.0))).start(wait=60)
    try:
        assert fleet.synced, [inf.last_error for inf in fleet._informers]
        assert wait_for(lambda: all(fleet.scalers.get(c.ns, "recharge") is not None for c in clusters), 20)
        fleet.tick(pd.Timestamp.now(tz="UTC"))
    finally:
        fleet.stop()
    for c in clusters:
        assert c.hpa_floor("recharge") > 2
        cond = ready(c, "recharge")
        assert (cond["status"], cond["reason"]) == ("True", "Reconciled"), cond
    sa.forbidden_everywhere_else(first, None)


# --- helm install / upgrade / uninstall ---------------------------------------------------------------------


PROMETHEUSRULE_CRD: dict[str, Any] = {
    # A stand-in for prometheus-operator's PrometheusRule CRD (any spec accepted): enough to install the
    # chart's rule; what the rules say is checked by promtool (test_observability.py).
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"plural": "prometheusrules", "singular": "prometheusrule", "kind": "PrometheusRule",
                       "listKind": "PrometheusRuleList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def monitoring_crds(kube_apiserver: KubeEnvtest, tmp_path_factory: pytest.TempPathFactory) -> KubeEnvtest:
    """The ServiceMonitor (tests/helm/servicemonitor-crd.yaml) and PrometheusRule CRDs, established."""
    rule = tmp_path_factory.mktemp("crds") / "prometheusrule-crd.yaml"
    rule.write_text(yaml.safe_dump(PROMETHEUSRULE_CRD))
    for path, name in ((SERVICEMONITOR_CRD, "servicemonitors"), (rule, "prometheusrules")):
        kubectl(kube_apiserver, "apply", "-f", str(path))
        kubectl(kube_apiserver, "wait", "--for=condition=Established", f"crd/{name}.monitoring.coreos.com",
                "--timeout=60s")
    return kube_apiserver


def docs_example_scaler() -> dict[str, Any]:
    """The PredictiveScaler example of docs/install.md."""
    text = (REPO_ROOT / "docs" / "install.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and doc.get("kind") == "PredictiveScaler":
            return doc
    raise AssertionError("docs/install.md has no PredictiveScaler example")


def _delete_crd(env: KubeEnvtest) -> None:
    kubectl(env, "delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=true", "--timeout=120s")
    assert kubectl(env, "get", "crd", CRD_NAME, check=False).returncode != 0


def test_helm_install_upgrade_uninstall_fleet(monitoring_crds: KubeEnvtest, tmp_path: Path) -> None:
    env = monitoring_crds
    release, release_ns = f"fl{uuid.uuid4().hex[:4]}", env.create_namespace("fleet-rel")
    scalers_ns = env.create_namespace("payments")
    environ = helm_env(env.kubeconfig, tmp_path / "helm")
    values = CHART / "ci" / "fleet-values.yaml"
    common = [str(CHART), "-n", release_ns, "-f", str(values), "--wait=hookOnly", "--timeout=2m"]
    # The CRD comes from the chart's crds/: start from a cluster without it (other tests installed it).
    _delete_crd(env)
    try:
        installed = json.loads(helm_cluster(environ, "install", release, *common, "-o", "json"))
        assert (installed["info"]["status"], installed["version"]) == ("deployed", 1)
        crd = json.loads(kubectl(env, "get", "crd", CRD_NAME, "-o", "json").stdout)
        shipped = yaml.safe_load(CRD_FILE.read_text())
        assert crd["spec"]["names"] == {**shipped["spec"]["names"], "listKind": "PredictiveScalerList"}
        assert crd["spec"]["versions"][0]["schema"] == shipped["spec"]["versions"][0]["schema"]
        kubectl(env, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
        assert kubectl(env, "get", "predictivescalers", "-A").returncode == 0
        # the docs' example scaler is accepted by the CRD's schema and shows in `kubectl get psc`
        kubectl(env, "apply", "-n", scalers_ns, "-f", "-", stdin=yaml.safe_dump(docs_example_scaler()))
        header = kubectl(env, "get", "psc", "-n", scalers_ns).stdout.splitlines()[0].split()
        assert header[:5] == ["NAME", "TARGET", "MODE", "MIN", "MAX"]

        manifest = tmp_path / "manifest.yaml"
        manifest.write_text(helm_cluster(environ, "get", "manifest", release, "-n", release_ns))
        sent = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
        stored = json.loads(kubectl(env, "get", "-f", str(manifest), "-o", "json").stdout)["items"]
        assert {(o["kind"], o["metadata"]["name"]) for o in stored} == {
            (o["kind"], o["metadata"]["name"]) for o in sent}
        assert {"ClusterRole", "ClusterRoleBinding", "PrometheusRule", "ServiceMonitor", "Deployment"} <= {
            o["kind"] for o in stored}
        deployment = next(o for o in stored if o["kind"] == "Deployment")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][-3] == "fleet"
        checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

        # the documented CRD upgrade command (Helm never upgrades crds/) runs against the installed CRD
        kubectl(env, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))

        # upgrade: a new interval reaches the fleet's config file and rolls the pods
        upgraded = json.loads(helm_cluster(environ, "upgrade", release, *common,
                                           "--set", "fleet.interval=45s", "-o", "json"))
        assert (upgraded["info"]["status"], upgraded["version"]) == ("deployed", 2)
        cm = json.loads(kubectl(env, "-n", release_ns, "get", "cm", f"{release}-recharge-autoscaler-config",
                                "-o", "json").stdout)
        assert yaml.safe_load(cm["data"]["config.yaml"])["fleet"]["interval"] == "45s"
        dep = json.loads(kubectl(env, "-n", release_ns, "get", "deploy", f"{release}-recharge-autoscaler",
                                 "-o", "json").stdout)
        assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != checksum

        # uninstall: the release's objects are gone; the CRD and the scalers stay (Helm never deletes crds/)
        helm_cluster(environ, "uninstall", release, "-n", release_ns, "--wait=hookOnly", "--timeout=2m")
        left = kubectl(env, "get", "-f", str(manifest), "-o", "json", "--ignore-not-found").stdout.strip()
        assert not left or json.loads(left).get("items", []) == []
        assert kubectl(env, "get", "crd", CRD_NAME).returncode == 0
        assert kubectl(env, "get", "psc", "-n", scalers_ns, "-o", "name").stdout.strip()
    finally:  # whatever happened, leave the CRD installed for the rest of the session
        kubectl(env, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE), check=False)
        kubectl(env, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s", check=False)
        time.sleep(0.5)
