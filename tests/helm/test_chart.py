"""The Helm chart renders, lints and deploys what production expects, for every ci/*-values.yaml scenario.

Checked here: `helm lint --strict`; Kubernetes OpenAPI validity (kubernetes-validate, strict); security
context, probes and resources on every pod and container; least-privilege RBAC (exact rule sets per
scenario); the rendered product config accepted by the product's own loaders; secrets mounted where the
config points; pinned images; no leftover `helm create` boilerplate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.helm.chartlib import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    HelmFailed,
    Manifest,
    egress_admits,
    helm,
    of_kind,
    one,
    pod_specs,
    product_config,
    render,
)

pytestmark = pytest.mark.helm

KUBERNETES_VERSION = "1.35.0"
CI_IDS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
FULL = "rel-recharge-autoscaler"


def ci(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def test_ci_scenarios_cover_the_documented_modes() -> None:
    assert {"dryrun", "hpa", "direct-scale", "prometheus-auth"} <= set(CI_IDS)


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_helm_lint_strict_passes(values: Path) -> None:
    out = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_manifests_are_valid_kubernetes_objects(values: Path) -> None:
    checked = 0
    for m in render(values):
        if m["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD kind: no schema in the Kubernetes OpenAPI
        kubernetes_validate.validate(m, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_every_object_carries_the_standard_labels(values: Path) -> None:
    for m in render(values):
        labels = m["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "recharge-autoscaler", m["metadata"]["name"]
        assert labels.get("app.kubernetes.io/instance") == "rel"
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_every_pod_and_container_is_locked_down(values: Path) -> None:
    pods = pod_specs(render(values))
    assert len(pods) >= 2
    for where, spec in pods:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        for c in spec["containers"]:
            sc = c["securityContext"]
            at = f"{where} container {c['name']}"
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["readOnlyRootFilesystem"] is True, at
            assert sc["capabilities"]["drop"] == ["ALL"], at
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", at
            assert c["resources"]["requests"] and c["resources"]["limits"], at
            image = c["image"]
            assert ("@sha256:" in image) or (image.rsplit(":", 1)[1] not in ("", "latest")), at


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_product_containers_have_writable_tmp_and_the_config(values: Path) -> None:
    for where, spec in pod_specs(render(values)):
        if where.startswith("Pod/"):
            continue
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        for c in spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts["/tmp"] == "tmp", where
            assert mounts["/etc/recharge-autoscaler"] == "config", where
            assert "/etc/recharge-autoscaler/config.yaml" in c["args"]


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_controller_probes_and_ports(values: Path) -> None:
    manifests = render(values)
    cfg = product_config(manifests)["controller"]
    dep = one(manifests, "Deployment")
    ctrl = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "controller")
    ports = {p["name"]: p["containerPort"] for p in ctrl["ports"]}
    assert ports == {"http-health": cfg["healthPort"], "http-metrics": cfg["metricsPort"]}
    assert ctrl["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-health"}
    assert ctrl["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-health"}
    assert ctrl["args"][-3:] == ["run", "--config", "/etc/recharge-autoscaler/config.yaml"]
    svc = next(s for s in of_kind(manifests, "Service") if s["metadata"]["name"] == f"{FULL}-metrics")
    assert {"http-metrics", "http-health"} <= {p["targetPort"] for p in svc["spec"]["ports"]}


@pytest.mark.parametrize(
    ("values", "containers", "cronjobs"),
    [("hpa", ["controller"], 1), ("direct-scale", ["controller", "forecast-job"], 0)],
    ids=["cronjob", "in-process"],
)
def test_forecast_job_runs_as_cronjob_or_in_process(
    values: str, containers: list[str], cronjobs: int
) -> None:
    manifests = render(ci(values))
    dep = one(manifests, "Deployment")
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == containers
    assert len(of_kind(manifests, "CronJob")) == cronjobs
    if cronjobs:
        job = one(manifests, "CronJob")
        cfg = product_config(manifests)
        assert job["spec"]["schedule"] == cfg["schedule"]["cron"]
        assert job["spec"]["timeZone"] == cfg["schedule"]["timezone"]
        args = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[-4:] == ["forecast-job", "--config", "/etc/recharge-autoscaler/config.yaml", "--once"]
    else:
        job_c = dep["spec"]["template"]["spec"]["containers"][1]
        assert "forecast-job" in job_c["args"] and "--once" not in job_c["args"]


# --- RBAC -------------------------------------------------------------------------------------------------

Grant = tuple[str, str, str, str, str, str]  # serviceaccount, namespace, apiGroup, resource, verb, name ("*")


def grants(manifests: list[Manifest]) -> set[Grant]:
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in of_kind(manifests, "Role")}
    out: set[Grant] = set()
    for rb in of_kind(manifests, "RoleBinding"):
        ns = rb["metadata"]["namespace"]
        role = roles[(ns, rb["roleRef"]["name"])]
        for subject in rb["subjects"]:
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for res in rule["resources"]:
                        for verb in rule["verbs"]:
                            for name in rule.get("resourceNames", ["*"]):
                                out.add((subject["name"], ns, group, res, verb, name))
    return out


def expect(sa: str, ns: str, *rules: str) -> set[Grant]:
    """rules like 'apps/deployments get,patch recharge-api' ('' group written as 'core', name '*' = any)."""
    out: set[Grant] = set()
    for rule in rules:
        gr, verbs, name = rule.split()
        group, res = gr.split("/", 1)
        for verb in verbs.split(","):
            out.add((sa, ns, "" if group == "core" else group, res, verb, name))
    return out


CTRL, JOB = FULL, f"{FULL}-forecast-job"
LEASE, FORECAST_CM = f"{FULL}-leader", f"{FULL}-forecast"
STATE_CM = f"{LEASE}-state"
# Events and the controller's state ConfigMap: written only outside dry-run mode.
EVENTS = ("core/events create,patch *", f"core/configmaps get,update {STATE_CM}", "core/configmaps create *")
LEASES = (f"coordination.k8s.io/leases get,update {LEASE}", "coordination.k8s.io/leases create *")
JOB_STORE = (f"core/configmaps get,update {FORECAST_CM}", "core/configmaps create *")

RBAC_CASES: dict[str, set[Grant]] = {
    "hpa": expect(
        CTRL,
        "payments",
        "apps/deployments get recharge-api",
        "autoscaling/horizontalpodautoscalers get,patch recharge-api",
        *EVENTS,
        *LEASES,
    )
    | expect(CTRL, NAMESPACE, f"core/configmaps get {FORECAST_CM}")
    | expect(JOB, NAMESPACE, *JOB_STORE),
    "dryrun": expect(
        CTRL,
        NAMESPACE,
        "apps/deployments get recharge-api",
        "autoscaling/horizontalpodautoscalers get recharge-api",
        f"core/configmaps get {FORECAST_CM}",
    )
    | expect(JOB, NAMESPACE, *JOB_STORE),
    "direct-scale": expect(
        CTRL,
        "payments",
        "apps/deployments get,patch recharge-api",
        "apps/deployments/scale patch recharge-api",
        *EVENTS,
    )
    | expect(CTRL, NAMESPACE, *LEASES, *JOB_STORE),
    "prometheus-auth": expect(
        CTRL,
        "payments",
        "apps/deployments get recharge-api",
        "autoscaling/horizontalpodautoscalers get,patch recharge-api-hpa",
        *EVENTS,
        *LEASES,
    )
    | expect(CTRL, NAMESPACE, f"core/configmaps get {FORECAST_CM}")
    | expect(JOB, NAMESPACE, *JOB_STORE),
    "basic-auth": expect(
        "recharge-autoscaler",
        NAMESPACE,
        "apps/deployments get recharge-api",
        "autoscaling/horizontalpodautoscalers get,patch recharge-api",
        *EVENTS,
        *LEASES,
        f"core/configmaps get {FORECAST_CM}",
        *JOB_STORE,
    ),
}


@pytest.mark.parametrize("scenario", sorted(RBAC_CASES), ids=sorted(RBAC_CASES))
def test_rbac_grants_exactly_what_the_product_uses(scenario: str) -> None:
    got = grants(render(ci(scenario)))
    want = RBAC_CASES[scenario]
    assert got == want, f"extra: {sorted(got - want)}; missing: {sorted(want - got)}"


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_rbac_is_namespaced_and_named(values: Path) -> None:
    manifests = render(values)
    assert not of_kind(manifests, "ClusterRole") and not of_kind(manifests, "ClusterRoleBinding")
    for role in of_kind(manifests, "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            assert not {"list", "watch", "delete", "deletecollection"} & set(rule["verbs"])
            if rule.get("resourceNames") is None:
                # create cannot be limited by name (the object does not exist yet); Events get generated
                # names, so re-patching a repeated Event cannot be limited either.
                allowed = ["create", "patch"] if rule["resources"] == ["events"] else ["create"]
                assert rule["verbs"] == allowed, rule


def test_rbac_can_be_disabled() -> None:
    manifests = render(ci("hpa"), sets=("rbac.create=false",))
    assert not of_kind(manifests, "Role") and not of_kind(manifests, "RoleBinding")


# --- the product config -------------------------------------------------------------------------------------


def _write_config(manifests: list[Manifest], tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(product_config(manifests)))
    return path


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_rendered_config_is_accepted_by_the_product(values: Path, tmp_path: Path) -> None:
    from controller.configfile import load_controller_config
    from forecaster.job.config import load_job_config

    manifests = render(values)
    path = _write_config(manifests, tmp_path)
    job = load_job_config(path, environ={})
    ctrl = load_controller_config(path)
    target = ctrl.require_target()
    assert job.store.kind == "configmap" and job.store.configmap is not None
    assert job.store.configmap.name == FORECAST_CM
    assert ctrl.leader_election.lease_name == LEASE
    assert target.namespace in ("payments", NAMESPACE)
    assert ctrl.require_load().kind == "prometheus"
    ctrl.check_runnable()


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_product_wires_its_adapters_from_the_rendered_config(values: Path, tmp_path: Path) -> None:
    """What `run` and `forecast-job` build at start-up (no network until the first tick)."""
    import argparse

    from kubernetes import client

    from controller.cli.job import build_source
    from controller.cli.run import build_loop
    from controller.configfile import load_controller_config
    from forecaster.job.config import load_job_config

    path = _write_config(render(values), tmp_path)
    cfg = load_controller_config(path)
    loop = build_loop(argparse.Namespace(config=str(path), dry_run=False), cfg, client.ApiClient())
    assert f"{NAMESPACE}/{FORECAST_CM}" in loop.deps.store.describe()
    assert cfg.require_target().name in loop.deps.target.describe()
    assert build_source(load_job_config(path, environ={})) is not None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            "prometheus-auth",
            {
                "bearerTokenFile": "/var/run/secrets/recharge-autoscaler/prometheus/token",
                "caFile": "/var/run/secrets/recharge-autoscaler/prometheus/ca.crt",
            },
        ),
        (
            "basic-auth",
            {
                "basicAuth": {
                    "username": "autoscaler",
                    "passwordFile": "/var/run/secrets/recharge-autoscaler/prometheus/password",
                }
            },
        ),
    ],
    ids=["bearer-token-and-ca", "basic-auth"],
)
def test_prometheus_secrets_are_mounted_where_the_config_points(
    values: str, expected: dict[str, Any]
) -> None:
    manifests = render(ci(values))
    prom = product_config(manifests)["source"]["prometheus"]
    for key, want in expected.items():
        assert prom[key] == want
    files = [want["passwordFile"] if isinstance(want, dict) else want for want in expected.values()]
    for where, spec in pod_specs(manifests):
        if where.startswith("Pod/"):
            continue
        projected = next(v for v in spec["volumes"] if v["name"] == "prometheus-auth")["projected"]
        paths = {item["path"] for src in projected["sources"] for item in src["secret"]["items"]}
        for c in spec["containers"]:
            mount = next(m for m in c["volumeMounts"] if m["name"] == "prometheus-auth")
            assert {f"{mount['mountPath']}/{p}" for p in paths} == set(files), where


def test_no_secret_volume_without_credentials() -> None:
    for where, spec in pod_specs(render(ci("hpa"))):
        assert all(v["name"] != "prometheus-auth" for v in spec.get("volumes", [])), where


def test_image_digest_pins_the_image() -> None:
    dep = one(render(ci("prometheus-auth")), "Deployment")
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/recharge-platform/recharge-autoscaler@sha256:" + "0" * 64


def test_config_change_rolls_the_controller() -> None:
    def checksum(*sets: str) -> str:
        dep = one(render(ci("hpa"), sets=sets), "Deployment")
        return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum() != checksum("controller.minReplicas=5")


def test_optional_objects_follow_their_switches() -> None:
    plain = {m["kind"] for m in render(ci("hpa"), sets=("podDisruptionBudget.enabled=false",))}
    assert not plain & {"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"}
    full = {m["kind"] for m in render(ci("direct-scale"), sets=("podDisruptionBudget.enabled=true",))}
    assert {"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"} <= full


def test_helm_test_pod_checks_the_metrics_service() -> None:
    manifests = render(ci("hpa"))
    pod = one(manifests, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert f"{FULL}-metrics.{NAMESPACE}.svc" in script and "/metrics" in script and "/healthz" in script


def test_notes_tell_the_user_how_to_see_decisions() -> None:
    out = helm("install", "rel", str(CHART), "-n", NAMESPACE, "-f", str(ci("dryrun")), "--dry-run=client")
    notes = out.split("NOTES:", 1)[1]
    for needle in ("DRY RUN", "logs -f", "/metrics", "helm test rel"):
        assert needle in notes, needle
    assert "get events" not in notes  # a dry run writes no Events
    out = helm("install", "rel", str(CHART), "-n", NAMESPACE, "-f", str(ci("hpa")), "--dry-run=client")
    notes = out.split("NOTES:", 1)[1]
    for needle in (
        "involvedObject.name=recharge-api",
        "get hpa recharge-api",
        r"recharge-autoscaler\.io/decision",
    ):
        assert needle in notes, needle


def test_no_helm_create_boilerplate() -> None:
    names = {p.name for p in (CHART / "templates").rglob("*") if p.is_file()}
    assert not names & {"ingress.yaml", "hpa.yaml", "test-connection.yaml", "httproute.yaml"}
    text = "".join(p.read_text() for p in CHART.rglob("*") if p.is_file())
    for leftover in ("chart-example.local", "nginx", "A Helm chart for Kubernetes"):
        assert leftover not in text, leftover


def test_network_policy_keeps_helm_test_working() -> None:
    policy = one(render(ci("direct-scale")), "NetworkPolicy")["spec"]
    ingress_peers = policy["ingress"][0]["from"]
    assert {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "recharge-autoscaler",
                "app.kubernetes.io/instance": "rel",
                "app.kubernetes.io/component": "test",
            }
        }
    } in ingress_peers
    # the in-process forecast job's metrics port is scraped by the ServiceMonitor, so it is admitted too
    assert {p["port"] for p in policy["ingress"][0]["ports"]} == {
        "http-metrics",
        "http-health",
        "http-job-metric",
    }
    dns = policy["egress"][0]["ports"]
    assert {(p["port"], p["protocol"]) for p in dns} == {(53, "UDP"), (53, "TCP")}


def _container_ports(manifests: list[Manifest]) -> dict[str, int]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    return {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}


@pytest.mark.parametrize(
    "sets",
    [(), ("forecastJob.mode=cronjob",), ("metrics.enabled=false",)],
    ids=["in-process", "cronjob", "job-metrics-off"],
)
def test_network_policy_admits_every_port_the_service_monitor_scrapes(sets: tuple[str, ...]) -> None:
    manifests = render(ci("direct-scale"), sets=sets)
    scraped = {e["port"] for e in one(manifests, "ServiceMonitor")["spec"]["endpoints"]}
    service = one(manifests, "Service")
    target_ports = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
    admitted = {p["port"] for p in one(manifests, "NetworkPolicy")["spec"]["ingress"][0]["ports"]}
    assert scraped and {target_ports[s] for s in scraped} <= admitted
    assert admitted <= set(_container_ports(manifests))  # named ports that exist on the pod
    assert ("http-job-metric" in admitted) == (sets == ())


PAYMENTS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}}}


@pytest.mark.parametrize(
    ("sets", "port"),
    [
        ((), 8080),
        (("controller.warmup.url=https://recharge-api.payments.svc/internal/warmup",), 443),
        (("controller.warmup.url=http://recharge-api.payments.svc/internal/warmup",), 80),
        (("controller.warmup.url=http://[fd00::1]:8443/warm",), 8443),
    ],
    ids=["explicit-port", "https-default-port", "http-default-port", "ipv6-literal"],
)
def test_network_policy_egress_admits_the_configured_warmup_endpoint(
    sets: tuple[str, ...], port: int
) -> None:
    manifests = render(ci("direct-scale"), sets=sets)
    assert product_config(manifests)["controller"]["warmup"]["enabled"] is True
    policy = one(manifests, "NetworkPolicy")
    assert egress_admits(policy, port, PAYMENTS)
    assert not egress_admits(policy, port)  # only to the named peers, never anywhere


# -- egress to named destinations only (issue 10, item 10) -------------------------------------------

MONITORING_PROM = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
API = {"ipBlock": {"cidr": "10.0.0.1/32"}}


def test_network_policy_egress_goes_only_to_named_destinations() -> None:
    """Before, the policy let 443/6443 (and the warm-up port) out to any destination."""
    policy = one(render(ci("direct-scale")), "NetworkPolicy")
    assert "Egress" in policy["spec"]["policyTypes"]
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), f"an egress rule open to any destination: {rule}"
        for peer in rule["to"]:
            assert peer.get("ipBlock", {}).get("cidr") not in ("0.0.0.0/0", "::/0"), rule
    assert egress_admits(policy, 6443, API) and not egress_admits(policy, 443)
    assert egress_admits(policy, 9090, MONITORING_PROM) and not egress_admits(policy, 9090)


@pytest.mark.parametrize(
    ("sets", "port"),
    [(("source.prometheus.url=https://prom.monitoring.svc",), 443),
     (("source.prometheus.url=http://prom.monitoring.svc:9091",), 9091)],
    ids=["https-default-port", "explicit-port"],
)
def test_network_policy_prometheus_port_follows_the_url(sets: tuple[str, ...], port: int) -> None:
    policy = one(render(ci("direct-scale"), sets=sets), "NetworkPolicy")
    assert egress_admits(policy, port, MONITORING_PROM) and not egress_admits(policy, port)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("networkPolicy.apiServerEgressTo=null",), "networkPolicy.apiServerEgressTo: name the Kubernetes"),
        (("networkPolicy.prometheusEgressTo=null",), "networkPolicy.prometheusEgressTo: name the Prometheus"),
        (("networkPolicy.warmupEgressTo=null",), "networkPolicy.warmupEgressTo: name the service"),
    ],
    ids=["api-server", "prometheus", "warmup"],
)
def test_network_policy_refuses_an_unnamed_destination(sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(HelmFailed, match=message):
        render(ci("direct-scale"), sets=sets)


def test_network_policy_egress_can_be_left_open() -> None:
    sets = ("networkPolicy.restrictEgress=false", "networkPolicy.apiServerEgressTo=null",
            "networkPolicy.prometheusEgressTo=null", "networkPolicy.warmupEgressTo=null")
    policy = one(render(ci("direct-scale"), sets=sets), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"] and "egress" not in policy


@pytest.mark.parametrize(
    "sets",
    [("controller.warmup.enabled=false",), ("controller.dryRun=true",)],
    ids=["warmup-off", "dry-run"],
)
def test_network_policy_opens_no_warmup_port_when_no_warmup_is_sent(sets: tuple[str, ...]) -> None:
    policy = one(render(ci("direct-scale"), sets=sets), "NetworkPolicy")
    assert not egress_admits(policy, 8080)


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_container_args_are_accepted_by_the_product_cli(values: Path) -> None:
    from controller.cli import build_parser

    parser = build_parser()
    seen = set()
    for _, spec in pod_specs(render(values)):
        for c in spec["containers"]:
            if "args" in c and c.get("command") is None:
                args = parser.parse_args(c["args"])
                seen.add(args.command)
                assert args.config == "/etc/recharge-autoscaler/config.yaml"
    assert seen == {"run", "forecast-job"}
