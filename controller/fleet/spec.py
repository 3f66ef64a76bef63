"""The ``PredictiveScaler`` custom resource: its spec, its CRD, and the ControllerConfig a spec stands for.

A scaler's spec is the ``controller`` section of the config file for one workload, written the way HPA users
expect (``scaleTargetRef``, ``minReplicas``, ``maxReplicas``, ``behavior``) plus what a fleet needs per
workload (its live-load and history queries, its calendar, a mode, ``paused``). Its scaling fields are not
declared again here: :data:`ScalerSpec` is built from :class:`~controller.config.ControllerConfig`'s own
field definitions, so the types, bounds, defaults and docs are the same ones ``run`` validates with, and the
CRD's OpenAPI schema is generated from them (:func:`crd`). :func:`controller_config` turns a validated
spec into the ControllerConfig the decision core reads; rules across fields (``minReplicas <=
maxReplicas`` ...) run there too, and in the CRD as CEL rules so ``kubectl apply`` refuses them up front.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model

from controller.config import ControllerConfig, TargetConfig
from forecaster.configbase import ConfigModel, Duration, NonEmptyStr, parse
from forecaster.configschema import openapi_schema
from forecaster.durations import format_seconds
from forecaster.series.calendar import CalendarConfig

GROUP = "autoscaling.recharge-autoscaler.io"
VERSION = "v1alpha1"
KIND = "PredictiveScaler"
PLURAL = "predictivescalers"
SINGULAR = "predictivescaler"
SHORT_NAMES = ["psc"]
API_VERSION = f"{GROUP}/{VERSION}"

# ControllerConfig fields that are the controller process's, not a workload's: one per fleet.
PROCESS_FIELDS = frozenset({
    "target", "interval", "dry_run", "pause_annotation", "decision_annotation", "leader_election",
    "health_port", "metrics_port", "bind_address",
})
SHARED_FIELDS = tuple(n for n in ControllerConfig.model_fields if n not in PROCESS_FIELDS)
"""The scaling fields a scaler's spec shares with the ``controller`` section, in declaration order."""

Mode = Literal["hpa", "scale", "dryRun", "forecastOnly"]


class ScaleTargetRef(ConfigModel):
    """The workload to scale: a Deployment in the scaler's namespace."""

    config_path = "spec.scaleTargetRef"

    api_version: Literal["apps/v1"] = Field("apps/v1", description="API group/version of the target.")
    kind: Literal["Deployment"] = Field("Deployment", description="Kind of the target.")
    name: NonEmptyStr = Field(description="Name of the target, in the scaler's namespace.")


class HistoryQuery(ConfigModel):
    """What the forecast job reads to forecast this workload."""

    config_path = "spec.history"

    query: NonEmptyStr = Field(description="PromQL of the request rate to forecast (req/s), one series.")


def _shared(name: str) -> tuple[Any, Any]:
    info = ControllerConfig.model_fields[name]
    return info.annotation, info


ScalerSpec: type[ConfigModel] = create_model(  # type: ignore[call-overload]
    "ScalerSpec",
    __base__=ConfigModel,
    __doc__="The spec of a PredictiveScaler custom resource (not a config file section): one workload's "
    "scaling, as the controller section writes it.",
    scale_target_ref=(ScaleTargetRef, Field(description="The workload to scale.")),
    mode=(Mode, Field(
        "hpa", description="'hpa': raise/lower the floor (minReplicas) of the target's HPA, which keeps "
        "reacting to CPU; 'scale': set the target's replicas directly (no HPA on it); 'dryRun': decide and "
        "report in status, change nothing; 'forecastOnly': only report the forecast in status.")),
    hpa_name=(NonEmptyStr | None, Field(
        None, description="The HPA of the target in 'hpa' mode; defaults to the target's name.")),
    paused=(bool, Field(False, description="Leave the target alone: no decisions are applied.")),
    history=(HistoryQuery | None, Field(None, description="What the forecast job forecasts.")),
    calendar=(CalendarConfig, Field(
        default_factory=CalendarConfig, description="Holidays, month start, paydays of this workload.")),
    forecast_config_map=(NonEmptyStr | None, Field(
        None, description="ConfigMap holding this scaler's forecast; defaults to '<scaler name>-forecast'.")),
    **{name: _shared(name) for name in SHARED_FIELDS},
)


def parse_spec(spec: Any) -> Any:
    """Validate a scaler's ``spec`` mapping; a ConfigError line naming the field (``spec.minReplicas``)."""
    return parse(ScalerSpec, spec, "spec")


def controller_config(spec: Any, *, namespace: str) -> ControllerConfig:
    """The ControllerConfig the core and the loop read for this scaler (cross-field rules run here)."""
    mode: Literal["hpa", "scale"] = "hpa" if spec.mode == "hpa" else "scale"
    target = TargetConfig(name=spec.scale_target_ref.name, namespace=namespace, mode=mode,
                          hpa_name=spec.hpa_name)
    shared = {name: getattr(spec, name) for name in SHARED_FIELDS}
    return ControllerConfig(**shared, target=target, dry_run=spec.mode in ("dryRun", "forecastOnly"))


def forecast_config_map(spec: Any, scaler: str) -> str:
    return str(spec.forecast_config_map or f"{scaler}-forecast")


def _yaml_value(value: Any) -> Any:
    if isinstance(value, ConfigModel):
        return _non_default(value)
    if isinstance(value, Duration):
        return format_seconds(float(value))
    if isinstance(value, (list, tuple)):
        return [_yaml_value(v) for v in value]
    return value


def _non_default(model: ConfigModel) -> dict[str, Any]:
    """``model`` as YAML keys (camelCase), leaving out every field at its default; durations as ``90s``."""
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if not info.is_required() and value == info.get_default(call_default_factory=True):
            continue
        out[info.alias or name] = _yaml_value(value)
    return out


def scaler_manifest(
    cfg: ControllerConfig,
    *,
    name: str | None = None,
    history_query: str | None = None,
    calendar: CalendarConfig | None = None,
    forecast_map: str | None = None,
) -> dict[str, Any]:
    """The PredictiveScaler that scales what the ``controller`` section ``cfg`` scales: the inverse of
    :func:`controller_config` for every field a scaler carries (:data:`SHARED_FIELDS`, the target, the mode).

    The process's own fields (:data:`PROCESS_FIELDS`: interval, Lease, ports, annotations) are the fleet's,
    one per controller, and are not carried over. A dry run becomes mode ``dryRun``. ``history_query``,
    ``calendar`` and ``forecast_map`` come from the rest of the file (``source.prometheus.query``,
    ``forecast.calendar``, ``store.configmap.name``). The spec is validated before it is returned.
    """
    target = cfg.require_target()
    spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": target.kind,
                                               "name": target.name}}
    spec["mode"] = "dryRun" if cfg.dry_run else target.mode
    if target.mode == "hpa" and target.hpa_name and target.hpa_name != target.name:
        spec["hpaName"] = target.hpa_name
    if history_query:
        spec["history"] = {"query": history_query}
    if calendar is not None and calendar != CalendarConfig():
        spec["calendar"] = _non_default(calendar)
    if forecast_map and forecast_map != f"{name or target.name}-forecast":
        spec["forecastConfigMap"] = forecast_map
    shared = _non_default(cfg)
    for field_name in SHARED_FIELDS:
        info = ControllerConfig.model_fields[field_name]
        key = info.alias or field_name
        if key in shared:
            spec[key] = shared[key]
    parse_spec(spec)
    metadata: dict[str, Any] = {"name": name or target.name}
    if target.namespace:
        metadata["namespace"] = target.namespace
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


PRINTER_COLUMNS = [
    {"name": "Target", "type": "string", "jsonPath": ".spec.scaleTargetRef.name"},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
    {"name": "Min", "type": "integer", "jsonPath": ".spec.minReplicas"},
    {"name": "Max", "type": "integer", "jsonPath": ".spec.maxReplicas"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.currentReplicas"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
    {"name": "Next peak", "type": "string", "jsonPath": ".status.forecast.nextPeak"},
    {"name": "Reason", "type": "string", "jsonPath": ".status.lastDecision.reason"},
    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

_CONDITION = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "observedGeneration": {"type": "integer"},
    },
}

STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "observedGeneration": {"type": "integer"},
        "currentReplicas": {"type": "integer"},
        "desiredReplicas": {"type": "integer"},
        "lastDecision": {"type": "object", "properties": {
            "reason": {"type": "string"}, "message": {"type": "string"},
            "time": {"type": "string", "format": "date-time"}}},
        "forecast": {"type": "object", "properties": {
            "model": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
            "backtestWape": {"type": "number"}, "nextPeak": {"type": "string"},
            "nextPeakTime": {"type": "string", "format": "date-time"},
            "nextPeakRate": {"type": "number"}}},
        "conditions": {"type": "array", "items": _CONDITION, "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["type"]},
    },
}


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition: schema from :data:`ScalerSpec`, CEL rules, status and printer columns."""
    spec_schema = openapi_schema(ScalerSpec)
    spec_schema["x-kubernetes-validations"] = [
        {"rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
         "message": "minReplicas must be <= maxReplicas"},
    ]
    spec_schema.setdefault("required", [])
    for key in ("scaleTargetRef", "capacityPerReplica"):
        if key not in spec_schema["required"]:
            spec_schema["required"].append(key)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": SINGULAR,
                      "shortNames": SHORT_NAMES, "categories": ["autoscaling"]},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "Scales one workload ahead of its forecast traffic, with a reactive "
                                   "safety net (recharge-autoscaler).",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema,
                        "status": STATUS_SCHEMA,
                    },
                }},
            }],
        },
    }
