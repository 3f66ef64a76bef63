"""Generate helm/recharge-autoscaler/values.schema.json (JSON Schema draft-07) for the chart's values.

The product sections (source, forecast, store, schedule, metrics, logging, controller) are generated from
the config models (:func:`forecaster.configschema.json_schema`), then narrowed to what the chart renders
in a cluster (:data:`IN_CLUSTER`: a ConfigMap store only, names the templates fill in when left empty,
rules across fields as if/then). The chart-only parts (image, Deployment, CronJob, RBAC, ...) are written
here. ``--check`` fails when the committed file differs.

Usage: python scripts/helm-schema.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.config import ControllerConfig, FleetConfig  # noqa: E402
from forecaster.configschema import json_schema  # noqa: E402
from forecaster.job.config import (  # noqa: E402
    ForecastConfig,
    LoggingConfig,
    MetricsConfig,
    ScheduleConfig,
    SourceConfig,
    StoreConfig,
)

OUT = ROOT / "helm" / "recharge-autoscaler" / "values.schema.json"

Schema = dict[str, Any]
DROP = object()
"""In :data:`IN_CLUSTER`, removes the key from the generated schema."""


def s(d: str, **kw: Any) -> Schema:
    return {"type": "string", "description": d, **kw}


def ns(d: str, **kw: Any) -> Schema:
    return {"type": ["string", "null"], "description": d, **kw}


def i(d: str, **kw: Any) -> Schema:
    return {"type": "integer", "description": d, **kw}


def n(d: str, **kw: Any) -> Schema:
    return {"type": "number", "description": d, **kw}


def b(d: str) -> Schema:
    return {"type": "boolean", "description": d}


def obj(
    d: str,
    props: Schema,
    required: tuple[str, ...] = (),
    extra: bool = False,
    cond: Schema | None = None,
    **kw: Any,
) -> Schema:
    """A closed object (unknown keys rejected) unless ``extra``; ``cond`` adds if/then keywords."""
    o: Schema = {"type": "object", "description": d, "properties": props, "additionalProperties": extra, **kw}
    o.update(cond or {})
    if required:
        o["required"] = list(required)
    return o


def anyobj(d: str) -> Schema:
    return {"type": "object", "description": d}


def arr(d: str, items: Schema | None = None) -> Schema:
    return {"type": "array", "description": d, **({"items": items} if items else {})}


def port(d: str) -> Schema:
    return i(d, minimum=1, maximum=65535)


def secret_ref(d: str, keyname: str) -> Schema:
    return obj(
        d,
        {
            "secretName": s("Secret name; empty = unused.", anyOf=[{"maxLength": 0}, {"pattern": K8SNAME}]),
            keyname: s("Key in the Secret.", minLength=1),
        },
    )


qty = {"anyOf": [{"type": "string"}, {"type": "number"}]}
resources = obj(
    "Container resources.",
    {
        "requests": {"type": "object", "additionalProperties": qty},
        "limits": {"type": "object", "additionalProperties": qty},
    },
    required=("requests", "limits"),
)
probe = obj(
    "Probe timing (the HTTP check itself is fixed by the chart).",
    {
        "initialDelaySeconds": i("", minimum=0),
        "periodSeconds": i("", minimum=1),
        "timeoutSeconds": i("", minimum=1),
        "failureThreshold": i("", minimum=1),
        "successThreshold": i("", minimum=1),
    },
)


DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
K8SNAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
PORT_NUMBER = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# A Dask scheduler address as `forecast-job --dask-scheduler` takes it: tcp:// or tls://, a host name, an IPv4
# address or a bracketed IPv6 one, and an explicit port (the NetworkPolicy opens exactly that port).
DASK_ADDRESS = rf"^(tcp|tls)://([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):{PORT_NUMBER}$"
EMPTY_OR_NAMESPACE = {"anyOf": [{"maxLength": 0}, {"pattern": DNS1123, "maxLength": 63}], "minLength": DROP}

SECTIONS = {
    "source": SourceConfig,
    "forecast": ForecastConfig,
    "store": StoreConfig,
    "schedule": ScheduleConfig,
    "metrics": MetricsConfig,
    "logging": LoggingConfig,
    "controller": ControllerConfig,
    "fleet": FleetConfig,
}

# How the chart narrows the product's schema: values it fills in when empty, what a cluster cannot use, and
# rules across fields that the models check in code. Merged into the generated sections key by key.
IN_CLUSTER: Schema = {
    "source": {
        "description": "History source of the forecast job.",
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": "prometheus"}}},
                "then": {
                    "properties": {
                        "prometheus": {
                            "required": ["url", "query"],
                            "properties": {"url": {"minLength": 1}, "query": {"minLength": 1}},
                        }
                    }
                },
            },
            {
                "if": {"properties": {"kind": {"const": "file"}}},
                "then": {"required": ["file"], "properties": {"file": {"type": "object"}}},
            },
        ],
        "properties": {
            "prometheus": {
                "required": DROP,  # the chart's defaults leave url and query empty; the if/then above asks
                "properties": {"url": {"anyOf": [{"maxLength": 0}, {"pattern": "^https?://[^/\\s]+"}]}},
            },
        },
    },
    "forecast": {"description": "What to forecast and how.", "properties": {"timezone": {"minLength": 1}}},
    "store": {
        "description": "Forecast store (a ConfigMap in a cluster).",
        "required": ["kind", "configmap"],
        "properties": {
            "kind": {"enum": ["configmap"], "description": "Only 'configmap' is supported in a cluster."},
            "file": DROP,
            "configmap": {
                "type": "object",
                "required": DROP,
                "properties": {
                    "name": {
                        "description": "ConfigMap name; empty = <fullname>-forecast.",
                        "anyOf": [{"maxLength": 0}, {"pattern": K8SNAME, "maxLength": 253}],
                        "minLength": DROP,
                    },
                    "namespace": {
                        **EMPTY_OR_NAMESPACE,
                        "type": "string",
                        "description": "Namespace; empty = release namespace.",
                    },
                    "key": {"pattern": r"^[-._a-zA-Z0-9]+$"},
                    "kubeconfig": DROP,
                    "context": DROP,
                },
            },
        },
    },
    "schedule": {
        "properties": {"cron": {"pattern": r"^\s*\S+(\s+\S+){4}\s*$"}, "timezone": {"minLength": 1}}
    },
    "metrics": {"properties": {"port": {"minimum": 1, "description": "Port (a fixed port in a pod)."}}},
    "controller": {
        "description": "The controller section of the product config.",
        "required": ["target", "capacityPerReplica"],
        "properties": {
            "target": {
                "type": "object",
                "properties": {
                    "name": {"pattern": K8SNAME, "description": "Deployment name (required)."},
                    "namespace": {
                        **EMPTY_OR_NAMESPACE,
                        "description": "Namespace; empty = release namespace.",
                    },
                    "hpaName": {"pattern": K8SNAME},
                },
            },
            "load": {
                "type": "object",
                "required": ["kind"],
                "allOf": [
                    {
                        "if": {"properties": {"kind": {"const": "prometheus"}}},
                        "then": {
                            "required": ["query"],
                            "properties": {"query": {"type": "string", "minLength": 1}},
                        },
                    },
                    {
                        "if": {"properties": {"kind": {"const": "file"}}},
                        "then": {
                            "required": ["path"],
                            "properties": {"path": {"type": "string", "minLength": 1}},
                        },
                    },
                ],
            },
            "leaderElection": {
                "properties": {
                    "leaseName": {
                        "description": "Lease name; empty = <fullname>-leader.",
                        "anyOf": [{"maxLength": 0}, {"pattern": K8SNAME}],
                        "minLength": DROP,
                    },
                    "leaseNamespace": {
                        "description": "Lease namespace; empty = target namespace.",
                        "anyOf": [{"type": "null"}, {"maxLength": 0}, {"pattern": DNS1123}],
                    },
                },
            },
            "warmup": {
                "if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
                "then": {"required": ["url"], "properties": {"url": {"type": "string"}}},
                "properties": {"url": {"pattern": "^https?://"}},
            },
        },
    },
}


IN_CLUSTER["fleet"] = {
    "description": "Fleet mode: one controller for every PredictiveScaler in the watched namespaces.",
    "properties": {
        "enabled": b("Run the fleet controller (`recharge-autoscaler fleet`), not the single-workload one."),
        "namespaces": {"items": {"pattern": DNS1123, "maxLength": 63}},
        "leaderElection": {
            "properties": {
                "leaseName": {
                    "description": "Lease name; empty = <fullname>-leader.",
                    "anyOf": [{"maxLength": 0}, {"pattern": K8SNAME}],
                    "minLength": DROP,
                },
                "leaseNamespace": {
                    "description": "Lease namespace; empty = release namespace.",
                    "anyOf": [{"type": "null"}, {"maxLength": 0}, {"pattern": DNS1123}],
                },
            },
        },
    },
}


def merge(node: Schema, changes: Schema) -> Schema:
    """``node`` with ``changes`` merged: mappings recursively, :data:`DROP` removes, other values replace."""
    out = dict(node)
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def product_sections() -> Schema:
    """The product's config sections as the chart accepts them (see :func:`by_mode` for the mode rules)."""
    return {key: merge(json_schema(model), IN_CLUSTER.get(key, {})) for key, model in SECTIONS.items()}


FLEET_ON: Schema = {
    "properties": {"fleet": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]}},
    "required": ["fleet"],
}


def by_mode(props: Schema) -> Schema:
    """Move what only the single-workload controller needs out of ``props`` into an if/then/else on
    ``fleet.enabled``: controller.target.name, controller.capacityPerReplica, controller.load.query and
    source.prometheus.query are required unless fleet mode is on (each scaler then carries its own); fleet
    mode needs source.kind prometheus (every scaler's live load comes from there). Returns the keywords."""
    ctl = props["controller"]
    single_ctl: Schema = {"required": ctl.pop("required"), "properties": {}}
    cap = ctl["properties"]["capacityPerReplica"]
    single_ctl["properties"]["capacityPerReplica"] = {"type": cap["type"]}
    cap["type"] = [cap["type"], "null"]
    name = ctl["properties"]["target"]["properties"]["name"]
    single_ctl["properties"]["target"] = {"properties": {"name": {"type": name["type"]}}}
    name["type"] = [name["type"], "null"]
    single_ctl["properties"]["load"] = {"allOf": ctl["properties"]["load"].pop("allOf")}
    source = props["source"]
    prom_rule = source["allOf"][0]["then"]["properties"]["prometheus"]
    query = prom_rule["properties"].pop("query")
    prom_rule["required"].remove("query")
    single_source = {"allOf": [{
        "if": source["allOf"][0]["if"],
        "then": {"properties": {"prometheus": {"required": ["query"], "properties": {"query": query}}}},
    }]}
    return {"allOf": [{
        "if": FLEET_ON,
        "then": {"properties": {"source": {"properties": {"kind": {"const": "prometheus"}}}}},
        "else": {"properties": {"controller": single_ctl, "source": single_source}},
    }]}


PRODUCT = product_sections()
MODE_RULES = by_mode(PRODUCT)


schema: Schema = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "recharge-autoscaler chart values",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "global": anyobj("Helm global values (unused)."),
        "nameOverride": s("Chart name override.", maxLength=63),
        "fullnameOverride": s("Full name override.", maxLength=63),
        "commonLabels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Labels on every object.",
        },
        "image": obj(
            "Container image.",
            {
                "repository": s("Image repository.", minLength=1),
                "tag": s("Image tag (pinned; 'latest' is refused).", not_={}),
                "digest": s("Image digest.", anyOf=[{"maxLength": 0}, {"pattern": "^sha256:[a-f0-9]{64}$"}]),
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            required=("repository",),
        ),
        "imagePullSecrets": arr("Pull secrets.", obj("", {"name": s("", minLength=1)}, required=("name",))),
        "serviceAccount": obj(
            "ServiceAccounts.",
            {
                "create": b("Create them."),
                "name": s("Name."),
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            cond={
                "if": {"properties": {"create": {"const": False}}},
                "then": {"properties": {"name": {"minLength": 1}}},
            },
        ),
        "rbac": obj("RBAC.", {"create": b("Create Roles and RoleBindings.")}),
        "podSecurityContext": anyobj("Pod security context."),
        "containerSecurityContext": anyobj("Container security context."),
        "tmpSizeLimit": {
            "anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 1}],
            "description": "Size limit of /tmp.",
        },
        "deployment": obj(
            "Controller Deployment.",
            {
                "replicas": i("Controller replicas.", minimum=0),
                "revisionHistoryLimit": i("", minimum=0),
                "podAnnotations": anyobj(""),
                "podLabels": anyobj(""),
                "resources": resources,
                "livenessProbe": probe,
                "readinessProbe": probe,
                "terminationGracePeriodSeconds": i("", minimum=0),
                "priorityClassName": s(""),
                "nodeSelector": anyobj(""),
                "tolerations": arr(""),
                "affinity": anyobj(""),
                "topologySpreadConstraints": arr(""),
                "extraEnv": arr(""),
                "extraVolumes": arr(""),
                "extraVolumeMounts": arr(""),
            },
        ),
        "forecastJob": obj(
            "Forecast job.",
            {
                "mode": {"enum": ["cronjob", "inProcess"], "description": "cronjob or inProcess."},
                "suspend": b(""),
                "concurrencyPolicy": {"enum": ["Allow", "Forbid", "Replace"]},
                "startingDeadlineSeconds": i("", minimum=0),
                "successfulJobsHistoryLimit": i("", minimum=0),
                "failedJobsHistoryLimit": i("", minimum=0),
                "backoffLimit": i("", minimum=0),
                "activeDeadlineSeconds": i("", minimum=1),
                "ttlSecondsAfterFinished": i("", minimum=0),
                "podAnnotations": anyobj(""),
                "resources": resources,
                "nodeSelector": anyobj(""),
                "tolerations": arr(""),
                "affinity": anyobj(""),
                "extraEnv": arr(""),
                "extraVolumes": arr(""),
                "extraVolumeMounts": arr(""),
                "engine": obj(
                    "Where the fleet forecast job runs its series (fleet mode only; at most one of the two).",
                    {
                        "workers": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "description": "Local worker processes (--workers); null = the cores it may use.",
                        },
                        "daskScheduler": s(
                            "Dask scheduler address (--dask-scheduler), tcp://host:port or tls://host:port; "
                            "empty = local processes.",
                            anyOf=[{"maxLength": 0}, {"pattern": DASK_ADDRESS}],
                        ),
                    },
                ),
            },
        ),
        "service": obj(
            "Metrics Service.",
            {
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": port("Service port."),
                "annotations": anyobj(""),
            },
        ),
        "serviceMonitor": obj(
            "ServiceMonitor.",
            {
                "enabled": b(""),
                "namespace": s(""),
                "labels": anyobj(""),
                "interval": s("", pattern="^[0-9]+(ms|s|m|h)$"),
                "scrapeTimeout": s("", pattern="^[0-9]+(ms|s|m|h)$"),
                "metricRelabelings": arr(""),
            },
        ),
        "podDisruptionBudget": obj(
            "PodDisruptionBudget.",
            {
                "enabled": b(""),
                "minAvailable": {
                    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+%$"}]
                },
                "maxUnavailable": {
                    "anyOf": [
                        {"type": "null"},
                        {"type": "integer", "minimum": 1},
                        {"type": "string", "pattern": "^[0-9]+%$"},
                    ]
                },
            },
        ),
        "networkPolicy": obj(
            "NetworkPolicy.",
            {
                "enabled": b(""),
                "ingressFrom": arr(""),
                "restrictEgress": b("Restrict egress to the named destinations."),
                "dnsEgressTo": arr("DNS peers."),
                "apiServerEgressTo": arr("API server peers."),
                "apiServerPorts": {
                    "type": "array", "description": "API server ports.",
                    "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                },
                "prometheusEgressTo": arr("Prometheus peers."),
                "warmupEgressTo": arr("Warm-up peers."),
                "daskEgressTo": arr("Dask scheduler peers."),
                "egress": arr("Extra egress rules."),
            },
        ),
        "prometheusAuth": obj(
            "Prometheus credentials from Secrets.",
            {
                "bearerToken": secret_ref("Bearer token Secret.", "key"),
                "basicAuth": obj(
                    "Basic auth.",
                    {
                        "username": s("User name."),
                        "secretName": s("Secret.", anyOf=[{"maxLength": 0}, {"pattern": K8SNAME}]),
                        "passwordKey": s("Key.", minLength=1),
                    },
                    cond={
                        "if": {"properties": {"secretName": {"minLength": 1}}, "required": ["secretName"]},
                        "then": {"properties": {"username": {"minLength": 1}}},
                    },
                ),
                "ca": secret_ref("CA bundle Secret.", "key"),
            },
        ),
        "grafanaDashboard": obj(
            "Grafana dashboard ConfigMap.",
            {
                "enabled": b(""),
                "namespace": s("", anyOf=[{"maxLength": 0}, {"pattern": DNS1123, "maxLength": 63}]),
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        ),
        "prometheusRule": obj(
            "PrometheusRule with the product's alerts.",
            {
                "enabled": b(""),
                "namespace": s("", anyOf=[{"maxLength": 0}, {"pattern": DNS1123, "maxLength": 63}]),
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "selector": s("PromQL label matchers; empty = job=\"<fullname>-metrics\"."),
                "forecastMaxAgeSeconds": n("Seconds.", exclusiveMinimum=0),
                "maxBacktestWape": n("WAPE 0..1.", exclusiveMinimum=0),
                "wapeDriftFactor": n("Factor over the 7-day mean.", exclusiveMinimum=1),
                "alertLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        ),
        **PRODUCT,
    },
    **MODE_RULES,
}
# image.tag: forbid 'latest'
schema["properties"]["image"]["properties"]["tag"] = {
    "type": "string",
    "description": "Image tag (pinned; 'latest' is refused).",
}


def render() -> str:
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print("values.schema.json is out of date; run python scripts/helm-schema.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
