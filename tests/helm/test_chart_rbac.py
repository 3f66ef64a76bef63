"""The chart's RBAC, proven on the real kube-apiserver: its identities can do their job and nothing else.

For each scenario the chart's ServiceAccounts, Roles and RoleBindings are rendered by the real helm with the
ci values and applied with kubectl (validated by the server). Tokens for the chart's ServiceAccounts come from
the TokenRequest API, so RBAC judges every call. As the job's identity the forecast ConfigMap store writes and
reads the forecast; as the controller's identity ``recharge-autoscaler run --once`` (the chart's own config
file, with the live load read from a file instead of Prometheus) acts on a real target twice, once with a
kubeconfig and once with the in-cluster config a pod gets, through the fault proxy, which records that no
call it made was refused. Then each identity tries what it must not do: update
another Deployment, read a Secret, write a cluster-scoped object; the server answers 403. Finally the
server's authorizer (SubjectAccessReview) confirms no verb beyond the rendered rules is granted.

tests/helm/test_rbac_matches_code.py checks statically that the rules match the API calls in the code.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from controller.cli import main
from forecaster.adapters.configmap_store import ConfigMapStore
from forecaster.artifact import ForecastArtifact, Interval
from tests.helm.chartlib import ci_values, namespace_sets, of_kind, one, product_config, render
from tests.support.kube_envtest import KubeEnvtest
from tests.support.kube_testbed import KubeTestbed
from tests.support.tools import require_tool

pytestmark = pytest.mark.helm

OTHER = "payments-ledger"  # another Deployment in the target's namespace
SECRET = "ledger-db-password"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
RESOURCES = (
    ("apps", "deployments"),
    ("apps", "deployments/scale"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("", "configmaps"),
    ("", "events"),
    ("coordination.k8s.io", "leases"),
    ("", "secrets"),
    ("", "pods"),
)


def forecast(peak: float = 950.0) -> ForecastArtifact:
    now = pd.Timestamp.now(tz="UTC").floor("min")
    start = now.floor("h") - pd.Timedelta("1h")
    return ForecastArtifact(
        created_at=now - pd.Timedelta("5min"),
        model="seasonal_median",
        timezone="UTC",
        interval_seconds=3600,
        band_level=0.9,
        history_start=start - pd.Timedelta("14D"),
        history_end=start,
        history_points=336,
        source="test",
        horizon_seconds=8 * 3600,
        intervals=tuple(
            Interval(start + pd.Timedelta(hours=i), peak * 0.6, peak * 0.5, peak * 0.8, peak)
            for i in range(8)
        ),
    )


def forbidden(call: Any) -> str:
    """Run ``call``; it must be refused by the server with 403. Returns the server's message."""
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 403, refused.value
    return str(refused.value.body)


class Scenario:
    """One ci values file rendered into the test's namespaces, its RBAC applied, its target seeded."""

    def __init__(self, name: str, kube: KubeTestbed, cluster: KubeEnvtest, tmp: Path) -> None:
        self.kube, self.cluster, self.tmp = kube, cluster, tmp
        self.release_ns = kube.namespace
        values = ci_values(name)
        sets = namespace_sets(
            values, target_ns=cluster.create_namespace("target"), release_ns=self.release_ns
        )
        self.manifests = render(values, sets=sets, namespace=self.release_ns)
        self.config = product_config(self.manifests)
        ctl = self.config["controller"]
        self.target_ns, self.mode = ctl["target"]["namespace"], ctl["target"]["mode"]
        self.target_name = ctl["target"]["name"]
        self.hpa_name = ctl["target"].get("hpaName") or self.target_name
        self.lease_ns = ctl["leaderElection"].get("leaseNamespace") or self.target_ns
        self.dry_run = bool(ctl["dryRun"])
        store = self.config["store"]["configmap"]
        self.store_ns, self.store_name, self.store_key = store["namespace"], store["name"], store["key"]
        pod = one(self.manifests, "Deployment")["spec"]["template"]["spec"]
        self.controller_sa = pod["serviceAccountName"]
        cronjobs = of_kind(self.manifests, "CronJob")
        self.job_sa = (
            cronjobs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
            if cronjobs
            else self.controller_sa
        )

    def apply_rbac(self) -> list[dict[str, Any]]:
        rbac = [m for m in self.manifests if m["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
        path = self.tmp / "rbac.yaml"
        path.write_text(yaml.safe_dump_all(rbac))
        proc = subprocess.run(
            [require_tool("kubectl"), "apply", "-f", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.cluster.env(),
        )
        assert proc.returncode == 0, proc.stderr
        return rbac

    def seed_target(self) -> KubeTestbed:
        target = KubeTestbed(self.cluster, self.target_ns, self.kube.proxy)
        target.seed_deployment(self.target_name, 3)
        target.seed_deployment(OTHER, 2)
        if self.mode == "hpa":
            target.seed_hpa(self.hpa_name, target=self.target_name, min_replicas=2, max_replicas=40)
        target.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET},
                "stringData": {"password": "hunter2"},
            }
        )
        return target

    def token(self, service_account: str) -> str:
        return self.cluster.service_account_token(self.release_ns, service_account, create=False)

    def user(self, service_account: str) -> str:
        return f"system:serviceaccount:{self.release_ns}:{service_account}"

    def store(self, api_client: Any) -> ConfigMapStore:
        from kubernetes import client

        return ConfigMapStore(
            client.CoreV1Api(api_client), self.store_ns, self.store_name, self.store_key, sleep=lambda s: None
        )

    def controller_config(self) -> Path:
        """The chart's config file, with the live load from a file (no Prometheus in the suite)."""
        now = pd.Timestamp.now(tz="UTC").floor("s")
        (self.tmp / "load.csv").write_text(
            f"timestamp,value\n{(now - pd.Timedelta('1min')).isoformat()},280\n{now.isoformat()},300\n"
        )
        config = dict(self.config)
        config["controller"] = {
            **config["controller"],
            "load": {"kind": "file", "path": "load.csv"},
            "warmup": {**config["controller"]["warmup"], "enabled": False},
        }
        path = self.tmp / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path


def in_pod(mp: pytest.MonkeyPatch, sa_dir: Path, kube: KubeTestbed, token: str, namespace: str) -> None:
    """What the kubelet gives a pod of the chart: the API service's host and port in the environment and the
    ServiceAccount's token, CA and namespace files (here in ``sa_dir``, pointing at the proxy)."""
    from urllib.parse import urlsplit

    from kubernetes.config import incluster_config

    from forecaster.adapters import kube as kube_adapter

    sa_dir.mkdir(exist_ok=True)
    (sa_dir / "token").write_text(token)
    (sa_dir / "ca.crt").write_bytes(kube.cluster.ca_file.read_bytes())
    (sa_dir / "namespace").write_text(namespace)
    url = urlsplit(kube.proxy.url)
    mp.setenv("KUBERNETES_SERVICE_HOST", str(url.hostname))
    mp.setenv("KUBERNETES_SERVICE_PORT", str(url.port))
    mp.delenv("KUBECONFIG", raising=False)
    mp.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(sa_dir / "token"))
    mp.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(sa_dir / "ca.crt"))
    mp.setattr(kube_adapter, "SERVICE_ACCOUNT_NAMESPACE", str(sa_dir / "namespace"))


SCENARIOS = ["hpa", "direct-scale", "dryrun"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_chart_identities_do_their_job_and_nothing_else(
    name: str,
    kube: KubeTestbed,
    kube_apiserver: KubeEnvtest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kubernetes import client

    sc = Scenario(name, kube, kube_apiserver, tmp_path)
    rbac = sc.apply_rbac()
    target = sc.seed_target()
    job_token, controller_token = sc.token(sc.job_sa), sc.token(sc.controller_sa)
    proxy = kube.proxy

    # --- the forecast job, as its ServiceAccount: create, then compare-and-swap replace, then read ---
    with kube.client(job_token) as job_api:
        for _ in range(2):
            sc.store(job_api).write(forecast())
        assert sc.store(job_api).read() is not None
    assert [
        (r.method, r.status) for r in proxy.calls(path="/configmaps/|/configmaps$") if r.method != "GET"
    ] == [("POST", 201), ("PUT", 200)]

    # --- the controller, as its ServiceAccount: two ticks of `run --once` with the chart's config, the first
    # with a kubeconfig, the second as in a pod (in-cluster config: service host/port, token and CA files) ---
    proxy.requests.clear()
    config = sc.controller_config()
    kubeconfig = kube.kubeconfig(tmp_path / "controller.kubeconfig", token=controller_token, proxy=True)
    assert main(["run", "--config", str(config), "--kubeconfig", str(kubeconfig), "--once"]) == 0
    outcomes = [capsys.readouterr().out.splitlines()[-1]]
    with pytest.MonkeyPatch.context() as pod:
        in_pod(pod, tmp_path / "serviceaccount", kube, controller_token, sc.release_ns)
        assert main(["run", "--config", str(config), "--once"]) == 0
    outcomes.append(capsys.readouterr().out.splitlines()[-1])
    refused = [(r.method, r.path, r.status) for r in proxy.requests if r.status in (401, 403)]
    assert refused == [], "every call the controller made was allowed"
    writes = {r.method for r in proxy.requests if r.method != "GET"}
    if sc.dry_run:
        assert outcomes == ["outcome: dry_run"] * 2
        assert writes == set()
    else:
        assert outcomes[0] == "outcome: acted", outcomes
        if sc.mode == "hpa":
            hpa = target.hpa(sc.hpa_name)
            assert hpa is not None and hpa["spec"]["minReplicas"] > 3
        else:
            dep = target.deployment(sc.target_name)
            assert dep is not None and dep["spec"]["replicas"] > 3
        assert [e["reason"] for e in target.events()][:1] == ["ScaledUp"]
        lease = kube.get(
            "coordination.k8s.io/v1",
            "Lease",
            sc.config["controller"]["leaderElection"]["leaseName"],
            sc.lease_ns,
        )
        assert lease is not None and lease["spec"]["leaseTransitions"] >= 1  # taken twice, released twice
        state_name = f"{sc.config['controller']['leaderElection']['leaseName']}-state"
        assert target.configmap(state_name) is not None
        assert writes == {"POST", "PUT", "PATCH"}  # created, updated (lease, state) and patched (the target)

    # --- what neither identity may do: the server says 403 ---
    with kube.client(proxy=False) as admin:
        other = client.AppsV1Api(admin).read_namespaced_deployment(OTHER, sc.target_ns)
    other.spec.replicas = 9
    with (
        kube.client(controller_token, proxy=False) as ctl_api,
        kube.client(job_token, proxy=False) as job_api,
    ):
        for api in (ctl_api, job_api):
            apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
            forbidden(lambda: apps.replace_namespaced_deployment(OTHER, sc.target_ns, other))  # noqa: B023
            forbidden(
                lambda: apps.patch_namespaced_deployment_scale(  # noqa: B023
                    OTHER, sc.target_ns, {"spec": {"replicas": 9}}
                )
            )
            forbidden(lambda: core.read_namespaced_secret(SECRET, sc.target_ns))  # noqa: B023
            forbidden(lambda: core.list_namespaced_secret(sc.release_ns))  # noqa: B023
            forbidden(
                lambda: core.create_namespace(  # noqa: B023
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=f"{sc.release_ns}-x"))
                )
            )
            message = forbidden(
                lambda: client.RbacAuthorizationV1Api(api).create_cluster_role_binding(  # noqa: B023
                    client.V1ClusterRoleBinding(
                        metadata=client.V1ObjectMeta(name=f"{sc.release_ns}-escalate"),
                        role_ref=client.V1RoleRef(
                            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
                        ),
                        subjects=[
                            client.RbacV1Subject(
                                kind="ServiceAccount", name=sc.controller_sa, namespace=sc.release_ns
                            )
                        ],
                    )
                )
            )
            assert "at the cluster scope" in message
        if sc.job_sa != sc.controller_sa:  # the controller only reads the forecast the job writes
            cm = client.CoreV1Api(job_api).read_namespaced_config_map(sc.store_name, sc.store_ns)
            forbidden(
                lambda: client.CoreV1Api(ctl_api).replace_namespaced_config_map(
                    sc.store_name, sc.store_ns, cm
                )
            )
            forbidden(
                lambda: client.AppsV1Api(job_api).read_namespaced_deployment(sc.target_name, sc.target_ns)
            )
        if sc.dry_run:  # read-only on the target, no Lease, no Events
            forbidden(
                lambda: client.AppsV1Api(ctl_api).patch_namespaced_deployment(
                    sc.target_name, sc.target_ns, {"metadata": {"annotations": {"x": "y"}}}
                )
            )
            forbidden(
                lambda: client.CoreV1Api(ctl_api).create_namespaced_event(
                    sc.target_ns, {"metadata": {"name": "e"}, "involvedObject": {"namespace": sc.target_ns}}
                )
            )

    # --- and, asked of the server's authorizer: no verb beyond the rendered rules, anywhere ---
    for sa in {sc.controller_sa, sc.job_sa}:
        check_authorizer_agrees(kube, sc, rbac, sa)


def check_authorizer_agrees(kube: KubeTestbed, sc: Scenario, rbac: list[dict[str, Any]], sa: str) -> None:
    """SubjectAccessReviews for every verb on every resource the product touches (and secrets, pods) in every
    namespace involved: allowed exactly where a rendered rule bound to ``sa`` says so."""
    bound = {
        (b["metadata"]["namespace"], b["roleRef"]["name"])
        for b in rbac
        if b["kind"] == "RoleBinding" and any(s["name"] == sa for s in b["subjects"])
    }
    by_name: dict[tuple[str, str, str], set[str]] = {}  # (namespace, resource, name or "") -> verbs
    for role in rbac:
        ns = role["metadata"].get("namespace")
        if role["kind"] != "Role" or (ns, role["metadata"]["name"]) not in bound:
            continue
        for rule in role["rules"]:
            for res in rule["resources"]:
                for name in rule.get("resourceNames") or [""]:
                    by_name.setdefault((ns, res, name), set()).update(rule["verbs"])
    assert by_name, f"no rule is bound to {sa}"
    names = {name for _, _, name in by_name} | {"", OTHER}
    for ns in {sc.release_ns, sc.target_ns, sc.lease_ns}:
        for group, res in RESOURCES:
            resource, _, sub = res.partition("/")
            for name in names:
                for verb in VERBS:
                    if name and verb in ("list", "watch", "deletecollection", "create"):
                        continue  # not verbs on a named object
                    may = verb in by_name.get((ns, res, ""), set()) | by_name.get((ns, res, name), set())
                    allowed = kube.allowed(
                        sc.user(sa), verb, resource, group=group, subresource=sub, name=name, namespace=ns
                    )
                    assert allowed is may, (sa, ns, res, name, verb, allowed)
