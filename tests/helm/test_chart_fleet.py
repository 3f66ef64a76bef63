"""Fleet mode of the chart (``fleet.enabled``, ci/fleet*-values.yaml): one controller Deployment running
``recharge-autoscaler fleet`` and one forecast CronJob running ``forecast-job --fleet --once`` on a config
file the product accepts, least-privilege RBAC for targets not known at install time (a Role per listed
namespace, or a ClusterRole for all), and the same lint, validity, label and lock-down guarantees as the
single-workload scenarios (tests/helm/test_chart.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helm.chartlib import (
    CHART,
    CI_VALUES,
    FLEET_VALUES,
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
from tests.support.tools import REPO_ROOT

pytestmark = pytest.mark.helm

KUBERNETES_VERSION = "1.35.0"
FLEET_IDS = [p.name.removesuffix("-values.yaml") for p in FLEET_VALUES]
FULL = "rel-recharge-autoscaler"
CONFIG_PATH = "/etc/recharge-autoscaler/config.yaml"
DASK = "tcp://forecast-scheduler.dask.svc:8786"
# forecastJob.engine of each fleet scenario, as the forecast job's flags
ENGINE_ARGS = {"fleet": ["--workers", "2"], "fleet-namespaces": ["--dask-scheduler", DASK]}


def ci(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def test_fleet_scenarios_cover_both_rbac_modes() -> None:
    assert set(FLEET_IDS) == {"fleet", "fleet-namespaces"}
    assert yaml.safe_load(ci("fleet").read_text())["fleet"].get("namespaces", []) == []
    assert yaml.safe_load(ci("fleet-namespaces").read_text())["fleet"]["namespaces"]


@pytest.mark.parametrize("values", FLEET_VALUES, ids=FLEET_IDS)
def test_helm_lint_strict_passes(values: Path) -> None:
    out = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", FLEET_VALUES, ids=FLEET_IDS)
def test_manifests_are_valid_kubernetes_objects(values: Path) -> None:
    checked = 0
    for m in render(values):
        if m["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD kind: no schema in the Kubernetes OpenAPI (checked by test_observability.py)
        kubernetes_validate.validate(m, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 7


@pytest.mark.parametrize("values", FLEET_VALUES, ids=FLEET_IDS)
def test_every_object_carries_the_standard_labels_and_pods_are_locked_down(values: Path) -> None:
    manifests = render(values)
    for m in manifests:
        labels = m["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "recharge-autoscaler", m["metadata"]["name"]
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
    pods = pod_specs(manifests)
    assert sorted(where.split("/")[0] for where, _ in pods) == ["CronJob", "Deployment", "Pod"]
    for where, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert c["resources"]["requests"] and c["resources"]["limits"], where


@pytest.mark.parametrize("values", FLEET_VALUES, ids=FLEET_IDS)
def test_the_deployment_runs_the_fleet_controller(values: Path) -> None:
    manifests = render(values)
    fleet = product_config(manifests)["fleet"]
    dep = one(manifests, "Deployment")
    (ctrl,) = dep["spec"]["template"]["spec"]["containers"]
    assert ctrl["name"] == "controller"
    assert ctrl["args"][-3:] == ["fleet", "--config", CONFIG_PATH]
    ports = {p["name"]: p["containerPort"] for p in ctrl["ports"]}
    assert ports == {"http-health": fleet["healthPort"], "http-metrics": fleet["metricsPort"]}
    assert ctrl["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-health"}
    assert ctrl["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-health"}
    service = next(s for s in of_kind(manifests, "Service") if s["metadata"]["name"] == f"{FULL}-metrics")
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http-metrics", "http-health"}
    job = one(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = job["containers"][0]["args"]
    engine = ENGINE_ARGS[values.name.removesuffix("-values.yaml")]
    assert args[args.index("forecast-job"):] == [
        "forecast-job", "--config", CONFIG_PATH, "--fleet", *engine, "--once"]
    assert job["serviceAccountName"] == f"{FULL}-forecast-job"
    accounts = {sa["metadata"]["name"] for sa in of_kind(manifests, "ServiceAccount")}
    assert accounts == {FULL, f"{FULL}-forecast-job"}
    # the helm test pod probes the fleet controller's ports
    script = one(manifests, "Pod")["spec"]["containers"][0]["args"][0]
    assert f":{fleet['healthPort']}/healthz" in script


def test_probe_and_metrics_ports_follow_the_fleet_section() -> None:
    manifests = render(ci("fleet"), sets=("fleet.healthPort=8181", "fleet.metricsPort=9191"))
    (ctrl,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in ctrl["ports"]}
    assert ports == {"http-health": 8181, "http-metrics": 9191}
    assert product_config(manifests)["fleet"]["healthPort"] == 8181


@pytest.mark.parametrize("values", FLEET_VALUES, ids=FLEET_IDS)
def test_rendered_config_is_the_fleets_and_the_product_accepts_it(values: Path, tmp_path: Path) -> None:
    from controller.cli import build_parser
    from controller.cli.fleet import _load_factory
    from controller.cli.fleet_job import check_fleet_flags
    from controller.config import ControllerConfig
    from controller.configfile import load_config

    manifests = render(values)
    data = product_config(manifests)
    # no controller or store section: each scaler carries its target, queries and forecast ConfigMap
    assert set(data) == {"source", "forecast", "schedule", "metrics", "logging", "fleet"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path, environ={})
    assert cfg.controller is None and cfg.fleet is not None and cfg.source is not None
    doc = yaml.safe_load(values.read_text())
    assert cfg.fleet.namespaces == doc["fleet"].get("namespaces", [])
    lease = cfg.fleet.leader_election
    assert lease.lease_namespace == NAMESPACE
    assert lease.lease_name == (doc["fleet"].get("leaderElection", {}).get("leaseName") or f"{FULL}-leader")
    assert cfg.source.prometheus is not None
    assert cfg.source.prometheus.url == doc["source"]["prometheus"]["url"]
    # what `fleet` builds from it before any network call: one live-load source per scaler
    build = _load_factory(cfg.source.prometheus, float(cfg.fleet.interval))
    scaler = ControllerConfig(capacity_per_replica=10, load={"kind": "prometheus", "query": "q"})
    assert build(scaler).describe()
    assert cfg.fleet_prometheus() is not None  # what `forecast-job --fleet` reads
    parsed = [build_parser().parse_args(c["args"])
              for _, spec in pod_specs(manifests) for c in spec["containers"] if c.get("command") is None]
    assert {a.command for a in parsed} == {"fleet", "forecast-job"}
    engine = doc.get("forecastJob", {}).get("engine", {})
    for job in (a for a in parsed if a.command == "forecast-job"):
        check_fleet_flags(job)  # --workers / --dask-scheduler: only with --fleet
        assert (job.workers, job.dask_scheduler) == (engine.get("workers"), engine.get("daskScheduler"))


def test_prometheus_credentials_reach_the_fleets_config() -> None:
    manifests = render(ci("fleet-namespaces"))
    prom = product_config(manifests)["source"]["prometheus"]
    assert prom["bearerTokenFile"] == "/var/run/secrets/recharge-autoscaler/prometheus/token"
    assert "query" not in prom  # every scaler names its own queries
    dep = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert any(v["name"] == "prometheus-auth" for v in dep["volumes"])


def test_service_monitor_keeps_the_scalers_namespace_label() -> None:
    # Without honorLabels Prometheus renames the series' own `namespace` (the scaler's) to exported_namespace.
    endpoint = one(render(ci("fleet")), "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["honorLabels"] is True
    single = one(render(ci("direct-scale")), "ServiceMonitor")["spec"]["endpoints"][0]
    assert "honorLabels" not in single


# --- RBAC -------------------------------------------------------------------------------------------------

# serviceaccount, namespace ("" = cluster-wide), group, resource, verb, name ("*" = any)
Grant = tuple[str, str, str, str, str, str]


def grants(manifests: list[Manifest]) -> set[Grant]:
    roles = {(r["metadata"].get("namespace", ""), r["kind"], r["metadata"]["name"]): r
             for r in of_kind(manifests, "Role") + of_kind(manifests, "ClusterRole")}
    out: set[Grant] = set()
    for rb in of_kind(manifests, "RoleBinding") + of_kind(manifests, "ClusterRoleBinding"):
        ns = rb["metadata"].get("namespace", "")
        ref = rb["roleRef"]
        role = roles[("" if ref["kind"] == "ClusterRole" else ns, ref["kind"], ref["name"])]
        for subject in rb["subjects"]:
            assert subject["namespace"] == NAMESPACE
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for res in rule["resources"]:
                        for verb in rule["verbs"]:
                            for name in rule.get("resourceNames", ["*"]):
                                out.add((subject["name"], ns, group, res, verb, name))
    return out


GROUP = "autoscaling.recharge-autoscaler.io"
WATCH = {
    (GROUP, "predictivescalers", "list"), (GROUP, "predictivescalers", "watch"),
    (GROUP, "predictivescalers/status", "patch"),
    ("apps", "deployments", "get"), ("apps", "deployments", "list"), ("apps", "deployments", "watch"),
    ("apps", "deployments", "patch"), ("apps", "deployments/scale", "patch"),
    *(("autoscaling", "horizontalpodautoscalers", v) for v in ("get", "list", "watch", "patch")),
    ("", "configmaps", "list"), ("", "configmaps", "watch"),
    ("", "events", "create"), ("", "events", "patch"),
}


def lease(name: str) -> set[Grant]:
    return {(FULL, NAMESPACE, "coordination.k8s.io", "leases", "get", name),
            (FULL, NAMESPACE, "coordination.k8s.io", "leases", "update", name),
            (FULL, NAMESPACE, "coordination.k8s.io", "leases", "create", "*")}


JOB_WATCH = {(GROUP, "predictivescalers", "list"), ("", "configmaps", "get"), ("", "configmaps", "create"),
             ("", "configmaps", "update")}
JOB = f"{FULL}-forecast-job"


def watched(ns: str, sa: str = FULL, rules: set[tuple[str, str, str]] = WATCH) -> set[Grant]:
    return {(sa, ns, g, r, v, "*") for g, r, v in rules}


RBAC_CASES: dict[str, set[Grant]] = {
    "fleet": watched("") | watched("", JOB, JOB_WATCH) | lease(f"{FULL}-leader"),
    "fleet-namespaces": watched("payments") | watched("topup") | lease("fleet-leader")
    | watched("payments", JOB, JOB_WATCH) | watched("topup", JOB, JOB_WATCH),
}


@pytest.mark.parametrize("scenario", sorted(RBAC_CASES))
def test_rbac_grants_exactly_what_the_fleet_uses(scenario: str) -> None:
    manifests = render(ci(scenario))
    got, want = grants(manifests), RBAC_CASES[scenario]
    assert got == want, f"extra: {sorted(got - want)}; missing: {sorted(want - got)}"
    cluster = of_kind(manifests, "ClusterRole") + of_kind(manifests, "ClusterRoleBinding")
    assert bool(cluster) == (scenario == "fleet")  # a ClusterRole only when every namespace is watched


@pytest.mark.parametrize("values", FLEET_VALUES, ids=FLEET_IDS)
def test_fleet_rbac_has_no_wildcards_no_secrets_and_no_cluster_scoped_resources(values: Path) -> None:
    manifests = render(values)
    for role in of_kind(manifests, "Role") + of_kind(manifests, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            job = role["metadata"]["labels"]["app.kubernetes.io/component"] == "forecast-job"
            assert not {"delete", "deletecollection", "create", "update"} & set(rule["verbs"]) or (
                rule["resources"] in (["events"], ["leases"]) or (job and rule["resources"] == ["configmaps"])
            ), rule
            assert not {"secrets", "namespaces", "nodes", "customresourcedefinitions", "clusterroles"} & set(
                rule["resources"]
            ), rule
            assert "nonResourceURLs" not in rule


def test_lease_follows_its_namespace_value() -> None:
    got = grants(render(ci("fleet-namespaces"), sets=("fleet.leaderElection.leaseNamespace=leases",)))
    assert {g for g in got if g[3] == "leases"} == {(FULL, "leases", *g[2:]) for g in lease("fleet-leader")}
    cfg = product_config(render(ci("fleet-namespaces"), sets=("fleet.leaderElection.leaseNamespace=leases",)))
    assert cfg["fleet"]["leaderElection"]["leaseNamespace"] == "leases"


def test_no_lease_grant_without_leader_election() -> None:
    got = grants(render(ci("fleet"), sets=("fleet.leaderElection.enabled=false",)))
    assert got == watched("") | watched("", JOB, JOB_WATCH)


def test_in_process_fleet_forecast_job_runs_beside_the_controller_with_both_grants() -> None:
    manifests = render(ci("fleet-namespaces"), sets=("forecastJob.mode=inProcess",))
    assert not of_kind(manifests, "CronJob")
    containers = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["args"][-6:] for c in containers] == [
        ["--log-level", "INFO", "--log-json", "fleet", "--config", CONFIG_PATH],
        ["forecast-job", "--config", CONFIG_PATH, "--fleet", "--dask-scheduler", DASK],
    ]
    assert grants(manifests) == (watched("payments") | watched("topup") | lease("fleet-leader")
                                 | watched("payments", FULL, JOB_WATCH) | watched("topup", FULL, JOB_WATCH))


def test_rbac_can_be_disabled_in_fleet_mode() -> None:
    manifests = render(ci("fleet"), sets=("rbac.create=false",))
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        assert not of_kind(manifests, kind), kind


# --- values -------------------------------------------------------------------------------------------------


def _errors(*sets: str, values: tuple[str, ...] = ()) -> str:
    args = ["template", "rel", str(CHART)]
    for v in values:
        args += ["-f", v]
    for s in sets:
        args += ["--set", s]
    with pytest.raises(HelmFailed) as err:
        helm(*args)
    return str(err.value)


def test_fleet_mode_needs_only_the_prometheus_url() -> None:
    out = _errors("fleet.enabled=true")
    assert "/source/prometheus/url" in out
    for single_only in ("/controller/target/name", "/controller/capacityPerReplica", "/controller/load/query",
                        "/source/prometheus/query"):
        assert single_only not in out, single_only
    manifests = render(CHART / "values.yaml", sets=("fleet.enabled=true", "source.prometheus.url=http://p:9090"))
    assert one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"][-3] == "fleet"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("source.kind=file",), "at '/source/kind': value must be 'prometheus'"),
        (("fleet.namespaces[0]=Not_A_Namespace",), "at '/fleet/namespaces/0'"),
        (("fleet.interval=soon",), "at '/fleet/interval'"),
        (("fleet.namespace=payments",), "additional properties 'namespace' not allowed"),
        (("fleet.metricsPort=0",), "at '/fleet/metricsPort'"),
    ],
    ids=["file-source", "bad-namespace", "bad-interval", "typo", "bad-port"],
)
def test_bad_fleet_values_fail_with_a_useful_message(sets: tuple[str, ...], message: str) -> None:
    assert message in _errors(*sets, values=(str(ci("fleet")),))


def test_schema_fleet_section_mirrors_the_fleet_config_model() -> None:
    from controller.config import FleetConfig, LeaderElectionConfig

    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["fleet"]
    keys = {f.alias or n for n, f in FleetConfig.model_fields.items()}
    assert set(schema["properties"]) == keys | {"enabled"}  # enabled is the chart's switch
    lease_keys = {f.alias or n for n, f in LeaderElectionConfig.model_fields.items()}
    assert set(schema["properties"]["leaderElection"]["properties"]) == lease_keys
    values = yaml.safe_load((CHART / "values.yaml").read_text())["fleet"]
    assert set(values) == keys | {"enabled"}


def test_notes_say_how_to_see_the_fleet() -> None:
    out = helm("install", "rel", str(CHART), "-n", NAMESPACE, "-f", str(ci("fleet-namespaces")),
               "--dry-run=client")
    notes = out.split("NOTES:", 1)[1]
    for needle in ("fleet mode", "payments, topup", "kubectl get predictivescalers -A", "--migrate-config",
                   "never upgraded by helm", "forecast-job --fleet --once", "create job --from=cronjob/",
                   f"Dask scheduler {DASK}", "Dask workers must run image ghcr.io/"):
        assert needle in notes, needle


def _dashboard(manifests: list[Manifest]) -> dict[str, Any]:
    cm = next(m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"] == f"{FULL}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    return dict(json.loads(cm["data"]["recharge-autoscaler-fleet.json"]))


def test_dashboard_and_rules_follow_their_switches() -> None:
    fleet = render(ci("fleet"))
    assert _dashboard(fleet) == json.loads((CHART / "dashboards" / "fleet-overview.json").read_text())
    assert one(fleet, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    plain = render(ci("fleet-namespaces"))
    assert not of_kind(plain, "PrometheusRule")
    assert not [m for m in of_kind(plain, "ConfigMap") if m["metadata"]["name"].endswith("-dashboard")]


# --- where the forecast job runs its series (forecastJob.engine) --------------------------------------------

DASK_SCHEDULER_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dask"}},
    "podSelector": {"matchLabels": {"dask.org/cluster-name": "forecast", "dask.org/component": "scheduler"}},
}


def _job_args(manifests: list[Manifest]) -> list[str]:
    """Arguments of the forecast job's container, from the CronJob or the controller pod (inProcess)."""
    (args,) = [c["args"] for _, spec in pod_specs(manifests) for c in spec["containers"]
               if "forecast-job" in c.get("args", [])]
    return list(args)


@pytest.mark.parametrize("mode", ["cronjob", "inProcess"])
@pytest.mark.parametrize(
    ("sets", "flags", "parsed"),
    [
        (("forecastJob.engine.daskScheduler=tls://10.1.2.3:8786",), ["--dask-scheduler", "tls://10.1.2.3:8786"],
         (None, "tls://10.1.2.3:8786")),
        (("forecastJob.engine.daskScheduler=tcp://[fd00::1]:8786",), ["--dask-scheduler", "tcp://[fd00::1]:8786"],
         (None, "tcp://[fd00::1]:8786")),
        (("forecastJob.engine.workers=3",), ["--workers", "3"], (3, None)),
    ],
    ids=["dask-tls", "dask-ipv6", "workers"],
)
def test_engine_values_become_the_forecast_jobs_flags(
    mode: str, sets: tuple[str, ...], flags: list[str], parsed: tuple[int | None, str | None]
) -> None:
    from controller.cli import build_parser
    from controller.cli.fleet_job import check_fleet_flags

    base = (f"forecastJob.mode={mode}", "deployment.replicas=1", "forecastJob.engine.workers=null")
    args = _job_args(render(ci("fleet"), sets=(*base, *sets)))
    fleet = args.index("--fleet")
    assert args[fleet + 1: fleet + 3] == flags
    job = build_parser().parse_args(args)
    check_fleet_flags(job)
    assert (job.workers, job.dask_scheduler) == parsed


@pytest.mark.parametrize("mode", ["cronjob", "inProcess"])
def test_no_engine_flags_when_the_engine_values_are_unset(mode: str) -> None:
    manifests = render(ci("fleet"), sets=(f"forecastJob.mode={mode}", "deployment.replicas=1",
                                          "forecastJob.engine.workers=null"))
    args = _job_args(manifests)
    assert "--workers" not in args and "--dask-scheduler" not in args
    assert args[args.index("--config") + 2] == "--fleet"
    for values in CI_VALUES:  # the single-workload scenarios never carry them
        for _, spec in pod_specs(render(values)):
            for c in spec["containers"]:
                assert not {"--workers", "--dask-scheduler"} & set(c.get("args", [])), values.name


@pytest.mark.parametrize(
    "address",
    ["http://forecast-scheduler:8786", "forecast-scheduler:8786", "tcp://forecast-scheduler",
     "tcp://forecast-scheduler:0", "tcp://forecast-scheduler:65536", "tcp://forecast-scheduler:8786/",
     "tcp://forecast scheduler:8786", "tcp://fd00::1:8786"],
    ids=["http", "no-scheme", "no-port", "port-0", "port-too-big", "path", "space", "unbracketed-ipv6"],
)
def test_schema_rejects_a_bad_dask_scheduler_address(address: str) -> None:
    out = _errors(f"forecastJob.engine.daskScheduler={address}", values=(str(ci("fleet-namespaces")),))
    assert "at '/forecastJob/engine/daskScheduler'" in out and "does not match pattern" in out


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("forecastJob.engine.workers=0",), "at '/forecastJob/engine/workers'"),
        (("forecastJob.engine.workers=two",), "at '/forecastJob/engine/workers'"),
        (("forecastJob.engine.threads=2",), "additional properties 'threads' not allowed"),
    ],
    ids=["workers-0", "workers-not-a-number", "typo"],
)
def test_schema_rejects_bad_engine_values(sets: tuple[str, ...], message: str) -> None:
    assert message in _errors(*sets, values=(str(ci("fleet")),))


@pytest.mark.parametrize("mode", ["cronjob", "inProcess"])
@pytest.mark.parametrize(
    "setting", [f"forecastJob.engine.daskScheduler={DASK}", "forecastJob.engine.workers=2"],
    ids=["dask", "workers"],
)
def test_engine_values_fail_the_render_without_fleet_mode(mode: str, setting: str) -> None:
    # `forecast-job` refuses --workers and --dask-scheduler without --fleet: the chart says so at install
    out = _errors(setting, f"forecastJob.mode={mode}", "deployment.replicas=1",
                  values=(str(CHART / "ci" / "hpa-values.yaml"),))
    assert ("forecastJob.engine.workers and forecastJob.engine.daskScheduler apply to the fleet forecast job "
            "only (`forecast-job --fleet`): set fleet.enabled=true") in out


def test_engine_values_fail_the_render_when_both_are_set() -> None:
    # with a scheduler the Dask workers run the series: --workers would be silently ignored
    out = _errors("forecastJob.engine.workers=2", values=(str(ci("fleet-namespaces")),))
    assert "forecastJob.engine: set workers (local processes) or daskScheduler" in out


def test_network_policy_lets_the_forecast_job_reach_the_dask_scheduler_only() -> None:
    policy = one(render(ci("fleet-namespaces")), "NetworkPolicy")
    assert egress_admits(policy, 8786, DASK_SCHEDULER_PEER)
    assert not egress_admits(policy, 8786)  # only to the named peers, never anywhere
    assert not egress_admits(policy, 8787, DASK_SCHEDULER_PEER)  # not the dashboard


@pytest.mark.parametrize(
    ("address", "port"),
    [("tls://forecast-scheduler.dask.svc:9786", 9786), ("tcp://[fd00::1]:8786", 8786)],
    ids=["tls-other-port", "ipv6"],
)
def test_network_policy_dask_port_follows_the_address(address: str, port: int) -> None:
    sets = (f"forecastJob.engine.daskScheduler={address}",)
    policy = one(render(ci("fleet-namespaces"), sets=sets), "NetworkPolicy")
    assert egress_admits(policy, port, DASK_SCHEDULER_PEER) and not egress_admits(policy, port)


def test_network_policy_opens_no_dask_port_without_a_scheduler() -> None:
    policy = one(render(ci("fleet-namespaces"), sets=("forecastJob.engine.daskScheduler=",)), "NetworkPolicy")
    assert not egress_admits(policy, 8786, DASK_SCHEDULER_PEER)
    assert not any(DASK_SCHEDULER_PEER in rule.get("to", []) for rule in policy["spec"]["egress"])


def test_network_policy_refuses_an_unnamed_dask_scheduler() -> None:
    with pytest.raises(HelmFailed, match=r"networkPolicy\.daskEgressTo: name the Dask scheduler pods"):
        render(ci("fleet-namespaces"), sets=("networkPolicy.daskEgressTo=null",))
    # with egress left open there is nothing to name
    sets = ("networkPolicy.daskEgressTo=null", "networkPolicy.restrictEgress=false")
    assert "egress" not in one(render(ci("fleet-namespaces"), sets=sets), "NetworkPolicy")["spec"]


def _install_md_yaml(predicate: Any) -> dict[str, Any]:
    text = (REPO_ROOT / "docs" / "install.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and predicate(doc):
            return doc
    raise AssertionError("docs/install.md: example not found")


def test_install_docs_dask_example_fits_the_chart(tmp_path: Path) -> None:
    """The DaskCluster and the values of docs/install.md agree: the address is the operator's scheduler
    Service and port, the NetworkPolicy peer selects the scheduler pods, the workers run the product's
    image; and those values render."""
    cluster = _install_md_yaml(lambda d: d.get("kind") == "DaskCluster")
    values = _install_md_yaml(lambda d: "engine" in d.get("forecastJob", {}))
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    address = values["forecastJob"]["engine"]["daskScheduler"]
    service = cluster["spec"]["scheduler"]["service"]
    assert address == f"tcp://{name}-scheduler.{namespace}.svc:{service['ports'][0]['port']}"
    (peer,) = values["networkPolicy"]["daskEgressTo"]
    assert peer["podSelector"]["matchLabels"] == service["selector"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
    for part in ("worker", "scheduler"):
        (container,) = cluster["spec"][part]["spec"]["containers"]
        assert container["image"].endswith("/recharge-autoscaler:0.1.0") and container["command"] == ["dask"]
    # the example's values, over the fleet scenario that has a NetworkPolicy
    example = tmp_path / "dask-values.yaml"
    example.write_text(yaml.safe_dump(values))
    manifests = render(ci("fleet-namespaces"), example)
    assert egress_admits(one(manifests, "NetworkPolicy"), 8786, peer)
    assert address in _job_args(manifests)
