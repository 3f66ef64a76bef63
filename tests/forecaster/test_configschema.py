"""Schemas generated from the config models: draft-07 for the Helm chart, a structural OpenAPI v3 schema for a
future CRD, and the reference rows of docs/configuration.md."""

from __future__ import annotations

import time
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from controller.config import ControllerConfig
from controller.configfile import ConfigFile
from forecaster.configbase import Duration, models_in
from forecaster.configschema import describe_fields, json_schema, openapi_schema
from forecaster.job.config import JobConfig
from tests.support.tools import REPO_ROOT

SAMPLE = REPO_ROOT / "data" / "sample-config.yaml"
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
# Fields of apiextensions.k8s.io/v1 JSONSchemaProps that a generated schema may use.
OPENAPI_KEYS = {
    "type", "format", "description", "properties", "required", "items", "additionalProperties", "enum",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "nullable", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
    "default",
}  # fmt: skip
JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def structural_problems(node: Any, path: str = "") -> list[str]:
    """Violations of Kubernetes' structural schema rules (and of what JSONSchemaProps can hold) under node."""
    if not isinstance(node, dict):
        return [f"{path}: not a schema"]
    out = [f"{path}: {key} is not allowed in a CRD schema" for key in node if key not in OPENAPI_KEYS]
    if "$ref" in node or "definitions" in node or "$defs" in node:
        out.append(f"{path}: references are not allowed")
    kind = node.get("type")
    escape = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if node.get("x-kubernetes-int-or-string") and kind is not None:
        out.append(f"{path}: int-or-string must not set type")
    elif not escape and kind not in TYPES:
        out.append(f"{path}: needs exactly one type, got {kind!r}")
    if "properties" in node and "additionalProperties" in node:
        out.append(f"{path}: properties and additionalProperties are mutually exclusive")
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not isinstance(node[key], bool):
            out.append(f"{path}: {key} must be a boolean in OpenAPI v3.0")
    for junctor in JUNCTORS:
        if junctor in node:
            out.append(f"{path}: {junctor} is not generated (types must be structural)")
    if kind == "object":
        for name, sub in node.get("properties", {}).items():
            out += structural_problems(sub, f"{path}.{name}")
        if isinstance(node.get("additionalProperties"), dict):
            out += structural_problems(node["additionalProperties"], f"{path}.*")
    if kind == "array":
        out += structural_problems(node.get("items"), f"{path}[]")
    return out


@pytest.mark.parametrize("model", [ControllerConfig, JobConfig, ConfigFile], ids=lambda m: m.__name__)
def test_openapi_schema_is_structural(model: type[BaseModel]) -> None:
    schema = openapi_schema(model)
    assert structural_problems(schema) == []
    assert schema["type"] == "object" and schema["properties"]


def test_openapi_schema_spells_nullable_durations_and_bounds_the_kubernetes_way() -> None:
    props = openapi_schema(ControllerConfig)["properties"]
    assert props["target"]["nullable"] is True and props["target"]["type"] == "object"
    assert "name" in props["target"]["required"]
    capacity = props["capacityPerReplica"]
    assert (capacity["type"], capacity["minimum"], capacity["exclusiveMinimum"]) == ("number", 0, True)
    interval = props["interval"]
    assert interval["x-kubernetes-int-or-string"] is True and "pattern" in interval
    assert (interval["minimum"], interval["exclusiveMinimum"], interval["maximum"]) == (0, True, 3600)
    assert props["behavior"]["properties"]["scaleUp"]["properties"]["policies"]["items"]["required"] == [
        "type",
        "value",
    ]
    assert props["target"]["properties"]["kind"]["enum"] == ["Deployment"]


def test_draft07_schema_is_valid_and_closes_every_object() -> None:
    schema = json_schema(ConfigFile)
    jsonschema.Draft7Validator.check_schema(schema)

    leftovers = ("$ref", "$defs", "title", "default", "unit", "x-duration")

    def walk(node: Any, path: str) -> list[str]:
        if isinstance(node, list):
            return [p for i, n in enumerate(node) for p in walk(n, f"{path}[{i}]")]
        if not isinstance(node, dict):
            return []
        bad = [path] if "properties" in node and node.get("additionalProperties") is not False else []
        bad += [f"{path}: {k}" for k in leftovers if k in node]
        return bad + [p for k, v in node.items() for p in walk(v, f"{path}.{k}")]

    assert walk(schema, "") == []


def test_draft07_schema_accepts_the_sample_and_refuses_what_the_models_refuse() -> None:
    validator = jsonschema.Draft7Validator(json_schema(ConfigFile))
    sample = yaml.safe_load(SAMPLE.read_text())
    assert list(validator.iter_errors(sample)) == []
    for bad in (
        {**sample, "controller": {"capacityPerReplica": 1, "maxReplica": 3}},  # a typo
        {**sample, "controller": {"capacityPerReplica": 0}},  # out of range
        {**sample, "controller": {"capacityPerReplica": 1, "loadMaxAge": 86400 * 10}},  # duration above range
        {**sample, "controller": {"capacityPerReplica": 1, "interval": "30 seconds"}},  # not a duration
    ):
        assert list(validator.iter_errors(bad)), bad


def _sections(model: type[BaseModel]) -> list[type[BaseModel]]:
    out = [model]
    for info in model.model_fields.values():
        for sub in models_in(info.annotation):
            if sub not in out:
                out += [s for s in _sections(sub) if s not in out]
    return out


def test_every_duration_field_has_a_range() -> None:
    """Issue 10 item 2: no duration is unbounded (an absurd value must fail validation, not a later tick)."""
    unbounded = [
        f"{model.__name__}.{name}"
        for model in _sections(ConfigFile)
        for name, info in model.model_fields.items()
        if Duration in (info.annotation, *getattr(info.annotation, "__args__", ()))
        and not any(type(m).__name__ == "Between" for m in info.metadata)
    ]
    assert unbounded == []


def test_reference_rows_show_section_defaults_and_ranges() -> None:
    rows = {r.key: r for r in describe_fields(ControllerConfig, "controller.")}
    assert rows["controller.behavior.scaleDown.stabilizationWindowSeconds"].default == "300"
    assert rows["controller.behavior.scaleUp.stabilizationWindowSeconds"].default == "0"
    assert rows["controller.loadMaxAge"].default == "2m"
    assert "Allowed: positive and at most 1d." in rows["controller.loadMaxAge"].description
    assert rows["controller.behavior.scaleUp.policies[].periodSeconds"].type == "int"
    assert rows["controller.target"].section and rows["controller.target"].type == "section (optional)"


@pytest.mark.kube
def test_the_real_api_server_accepts_the_crd_schema_and_enforces_it(
    kube_apiserver: Any, kube_namespace: str
) -> None:
    """A CRD whose spec is the controller section: the API server takes the schema as structural (it refuses
    non-structural ones) and validates custom resources against it."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    group, plural = "config.recharge-autoscaler.io", "scalerspecs"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": "scalerspec", "kind": "ScalerSpec"},
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "properties": {"spec": openapi_schema(ControllerConfig)},
                }},
            }],
        },
    }  # fmt: skip
    with kube_apiserver.api_client() as api:
        ext = client.ApiextensionsV1Api(api)
        ext.create_custom_resource_definition(crd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = ext.read_custom_resource_definition(crd["metadata"]["name"]).status
            if any(c.type == "Established" and c.status == "True" for c in (status.conditions or [])):
                break
            time.sleep(0.2)
        objects = client.CustomObjectsApi(api)

        def create(name: str, spec: dict[str, Any]) -> Any:
            meta = {"name": name}
            body = {"apiVersion": f"{group}/v1alpha1", "kind": "ScalerSpec", "metadata": meta, "spec": spec}
            return objects.create_namespaced_custom_object(group, "v1alpha1", kube_namespace, plural, body)

        scale_up = {"policies": [{"type": "Pods", "value": 4}]}
        good = {"capacityPerReplica": 120, "target": {"name": "recharge"}, "startup": "2m", "interval": 30,
                "behavior": {"scaleUp": scale_up}, "warmup": {"url": None}}
        stored = create("good", good)
        assert stored["spec"]["startup"] == "2m" and stored["spec"]["interval"] == 30
        for name, bad in (("zero-capacity", {"capacityPerReplica": 0}),
                          ("bad-duration", {"capacityPerReplica": 1, "loadMaxAge": "2 minutes"}),
                          ("bad-mode", {"capacityPerReplica": 1, "target": {"name": "r", "mode": "patch"}})):
            with pytest.raises(ApiException) as err:
                create(name, bad)
            assert err.value.status == 422, name
