"""Generate helm/recharge-autoscaler/values.schema.json (JSON Schema draft-07) for the chart's values.

The schema is written as Python here because it is mostly repetition (durations, closed objects, names);
``--check`` fails when the committed file differs, and tests/helm/test_chart_values.py checks that its
product sections list exactly the fields of the product's config dataclasses.

Usage: python scripts/helm-schema.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "helm" / "recharge-autoscaler" / "values.schema.json"

DUR_RE = r"^((\d+(\.\d+)?[smhdw])+|\d+(\.\d+)?)$"
Schema = dict[str, Any]


def dur(d: str) -> Schema:
    """A product duration: seconds as a number, or text like 30s, 5m, 2h, 7d."""
    return {
        "description": d + " Duration: a number of seconds or e.g. 30s, 5m, 2h, 7d.",
        "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DUR_RE}],
    }


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


DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
K8SNAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
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

prom = obj(
    "Prometheus connection.",
    {
        "url": s(
            "Base URL of the Prometheus HTTP API.",
            anyOf=[{"maxLength": 0}, {"pattern": "^https?://[^/\\s]+"}],
        ),
        "query": s("PromQL returning one series (the request rate)."),
        "step": dur("Resolution of range queries."),
        "timeout": dur("Read timeout of one request."),
        "connectTimeout": dur("Connect timeout."),
        "retries": i("Extra attempts after transient failures.", minimum=0, maximum=10),
        "backoff": dur("First retry delay."),
        "maxBackoff": dur("Upper bound of one retry delay."),
        "maxPointsPerRequest": i("Most samples per series per request.", minimum=2, maximum=11000),
        "insecureSkipVerify": b("Skip TLS verification."),
        "headers": {
            "type": "object",
            "description": "Extra HTTP headers.",
            "additionalProperties": {"type": "string"},
        },
        "bearerTokenFile": ns("Bearer token file in the pod."),
        "caFile": ns("CA bundle file in the pod."),
        "basicAuth": {
            "type": ["object", "null"],
            "description": "Basic auth with a password file you mount yourself "
            "(prefer prometheusAuth.basicAuth).",
            "additionalProperties": False,
            "required": ["username", "passwordFile"],
            "properties": {
                "username": s("User name.", minLength=1),
                "passwordFile": s("Password file.", minLength=1),
            },
        },
    },
)
filesrc = {
    "type": ["object", "null"],
    "description": "File history source.",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": s("History file inside the pod.", minLength=1),
        "timeColumn": ns("Time column."),
        "valueColumn": ns("Value column."),
        "timezone": s("Zone of zone-less timestamps."),
    },
}
source = obj(
    "History source of the forecast job.",
    {
        "kind": {"enum": ["prometheus", "file"], "description": "History source kind."},
        "prometheus": prom,
        "file": filesrc,
    },
    required=("kind",),
    allOf=[
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
)
calendar = obj(
    "Event calendar.",
    {
        "country": ns("Holidays country code."),
        "subdivision": ns("Holidays subdivision."),
        "chineseCalendar": b("Use chinese-calendar for CN."),
        "monthStart": b("Month starts as events."),
        "paydays": arr("Paydays (days of month).", i("", minimum=1, maximum=31)),
        "promotionsFile": ns("Promotions YAML file in the pod."),
    },
)
forecast = obj(
    "What to forecast and how.",
    {
        "horizon": dur("Forecast horizon."),
        "interval": dur("Forecast interval."),
        "history": dur("History window."),
        "model": s("Model alias or auto.", minLength=1),
        "bandLevel": n("Band coverage.", minimum=0.5, maximum=0.99),
        "folds": {"type": ["integer", "null"], "minimum": 1, "maximum": 20, "description": "Backtest folds."},
        "candidates": {
            "type": ["array", "null"],
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "description": "Models auto may pick or blend; null = the fast default set.",
        },
        "timezone": s("IANA zone of the traffic.", minLength=1),
        "calendar": calendar,
    },
)
store = obj(
    "Forecast store (a ConfigMap in a cluster).",
    {
        "kind": {"enum": ["configmap"], "description": "Only 'configmap' is supported in a cluster."},
        "configmap": obj(
            "Forecast ConfigMap.",
            {
                "name": s(
                    "ConfigMap name; empty = <fullname>-forecast.",
                    anyOf=[{"maxLength": 0}, {"pattern": K8SNAME, "maxLength": 253}],
                ),
                "namespace": s(
                    "Namespace; empty = release namespace.",
                    anyOf=[{"maxLength": 0}, {"pattern": DNS1123, "maxLength": 63}],
                ),
                "key": s("Data key.", minLength=1, pattern=r"^[-._a-zA-Z0-9]+$"),
            },
        ),
    },
    required=("kind", "configmap"),
)
schedule = obj(
    "Forecast schedule.",
    {
        "cron": s("Five-field crontab.", pattern=r"^\s*\S+(\s+\S+){4}\s*$"),
        "timezone": s("Zone of the cron.", minLength=1),
        "misfireGraceTime": dur("Misfire grace time."),
        "runOnStart": b("Run at start."),
    },
)
metrics = obj(
    "Forecast job /metrics (in-process mode).",
    {
        "enabled": b("Serve /metrics."),
        "port": i("Port (a fixed port in a pod).", minimum=1, maximum=65535),
        "address": s("Listen address."),
    },
)
logging = obj(
    "Logging.",
    {
        "level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"], "description": "Log level."},
        "json": b("JSON lines."),
    },
)
policy = obj(
    "Scaling policy.",
    {
        "type": {"enum": ["Pods", "Percent"]},
        "value": i("Amount.", minimum=1),
        "periodSeconds": i("Period.", minimum=1, maximum=1800),
    },
    required=("type", "value"),
)
rules = obj(
    "Scaling rules.",
    {
        "policies": arr("Policies.", policy),
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "stabilizationWindowSeconds": i("Stabilisation window.", minimum=0, maximum=3600),
    },
    required=("policies",),
)
controller = obj(
    "The controller section of the product config.",
    {
        "target": obj(
            "Scale target.",
            {
                "name": {
                    "type": "string",
                    "description": "Deployment name (required).",
                    "minLength": 1,
                    "pattern": K8SNAME,
                },
                "namespace": s(
                    "Namespace; empty = release namespace.",
                    anyOf=[{"maxLength": 0}, {"pattern": DNS1123, "maxLength": 63}],
                ),
                "kind": {"enum": ["Deployment"]},
                "mode": {"enum": ["hpa", "scale"], "description": "hpa or scale."},
                "hpaName": {"type": ["string", "null"], "pattern": K8SNAME, "description": "HPA name."},
            },
            required=("name",),
        ),
        "load": obj(
            "Live load source.",
            {
                "kind": {"enum": ["prometheus", "file"]},
                "query": ns("PromQL of the current rate."),
                "path": ns("History file."),
                "timeColumn": ns("Time column."),
                "valueColumn": ns("Value column."),
            },
            required=("kind",),
            allOf=[
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
        ),
        "capacityPerReplica": n("req/s one replica serves (required).", exclusiveMinimum=0),
        "headroom": n("Capacity margin over the forecast mean.", minimum=0, maximum=10),
        "minReplicas": i("Replica floor.", minimum=0),
        "maxReplicas": i("Replica ceiling.", minimum=1),
        "startup": dur("Pod start-up time."),
        "warmupTime": dur("Cache warm-up time."),
        "tolerance": n("Scale-down damping fraction.", minimum=0, exclusiveMaximum=1),
        "behavior": obj("HPA-style behavior.", {"scaleUp": rules, "scaleDown": rules}),
        "levelCorrection": obj(
            "Online correction of the forecast level from the live load.",
            {
                "enabled": b("Correct the forecast level from the live load."),
                "window": dur("Time constant of the average."),
                "sustain": dur("How long a miss must last before it is applied."),
                "deadband": n("Ratios within 1 +- deadband are on forecast.", minimum=0, exclusiveMaximum=1),
                "minFactor": n("Lowest factor applied to the forecast.", exclusiveMinimum=0, maximum=1),
                "maxFactor": n("Highest factor applied to the forecast.", minimum=1, maximum=10),
            },
        ),
        "forecastMaxAge": dur("Forecast staleness limit."),
        "loadMaxAge": dur("Load staleness limit."),
        "maxCapacity": {"enum": ["honour", "exceed"]},
        "burstBuffer": i("Replicas above max in exceed mode.", minimum=0),
        "interval": dur("Loop period."),
        "dryRun": b("Never change the target."),
        "pauseAnnotation": s("Pause annotation.", minLength=1),
        "decisionAnnotation": s("Decision annotation.", minLength=1),
        "leaderElection": obj(
            "Leader election.",
            {
                "enabled": b("Elect a leader."),
                "leaseName": s(
                    "Lease name; empty = <fullname>-leader.", anyOf=[{"maxLength": 0}, {"pattern": K8SNAME}]
                ),
                "leaseNamespace": {
                    "type": ["string", "null"],
                    "description": "Lease namespace; empty = target namespace.",
                    "anyOf": [{"type": "null"}, {"maxLength": 0}, {"pattern": DNS1123}],
                },
                "leaseDuration": dur("Lease duration."),
                "renewDeadline": dur("Renew deadline."),
                "retryPeriod": dur("Retry period."),
            },
        ),
        "warmup": obj(
            "Cache warm-up.",
            {
                "enabled": b("Issue warm-up calls."),
                "url": {
                    "type": ["string", "null"],
                    "pattern": "^https?://",
                    "description": "Warm-up endpoint.",
                },
                "lead": dur("Lead."),
                "rampThreshold": n("Ramp threshold.", exclusiveMinimum=0, maximum=10),
                "rampWindow": dur("Ramp window."),
                "lookahead": dur("Lookahead."),
                "newReplicas": b("Warm new replicas."),
                "timeout": dur("Call timeout."),
                "retries": i("Retries.", minimum=0, maximum=10),
            },
            cond={
                "if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
                "then": {"required": ["url"], "properties": {"url": {"type": "string"}}},
            },
        ),
        "healthPort": port("Port of /healthz and /readyz."),
        "metricsPort": port("Port of /metrics."),
    },
    required=("target", "capacityPerReplica"),
)

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
            {"enabled": b(""), "ingressFrom": arr(""), "egress": arr(""), "warmupEgressTo": arr("")},
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
        "source": source,
        "forecast": forecast,
        "store": store,
        "schedule": schedule,
        "metrics": metrics,
        "logging": logging,
        "controller": controller,
    },
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
