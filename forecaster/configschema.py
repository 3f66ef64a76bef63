"""Schemas and reference rows generated from the config models, so docs, chart and CRD never drift from code.

Three consumers read the same pydantic models (:mod:`forecaster.configbase`):

- :func:`json_schema`: JSON Schema draft-07 with every ``$ref`` inlined and ``additionalProperties: false``
  on every object, for the Helm chart's ``values.schema.json`` (``scripts/helm-schema.py`` adds the
  chart-only parts and in-cluster restrictions);
- :func:`openapi_schema`: an OpenAPI v3 *structural* schema as Kubernetes requires for a CRD's
  ``openAPIV3Schema`` (a single ``type`` on every node, ``nullable: true`` instead of ``anyOf`` with null,
  no ``$ref``, no ``additionalProperties`` beside ``properties``, durations as int-or-string);
- :func:`describe_fields`: one row per field (key path, type, default, description with unit and range)
  for ``docs/configuration.md`` (``scripts/gen-config-docs.py``).
"""

from __future__ import annotations

import copy
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from forecaster.configbase import (
    DURATION_PATTERN,
    Between,
    Duration,
    allowed_range,
    models_in,
)
from forecaster.durations import format_seconds

Schema = dict[str, Any]

DURATION_TEXT = "Duration: a number of seconds or e.g. 30s, 5m, 2h, 7d"


# --- JSON Schema draft-07 -----------------------------------------------------------------------------------


def json_schema(model: type[BaseModel], *, defaults: bool = False) -> Schema:
    """``model``'s validation schema (YAML keys) as self-contained draft-07: no ``$ref``, no titles,
    nullable types as ``["T", "null"]``, units and duration ranges folded into descriptions. Defaults are
    left out unless ``defaults`` (a CRD wants them: the API server fills them in)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    out = _draft07(_inline(raw, defs), defaults=defaults)
    out.pop("description", None)
    return out


def _inline(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **siblings}, defs)
    return {k: _inline(v, defs) for k, v in node.items()}


def _draft07(node: Any, *, defaults: bool = False) -> Any:
    if isinstance(node, list):
        return [_draft07(n, defaults=defaults) for n in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and not defaults):
            continue
        if key == "default":
            out[key] = value
        elif key == "properties":  # property names are data, not keywords
            out[key] = {name: _draft07(sub, defaults=defaults) for name, sub in value.items()}
        elif key == "const":  # a one-value Literal: an enum reads the same in every validator and doc tool
            out["enum"] = [value]
        else:
            out[key] = _draft07(value, defaults=defaults)
    branches = out.get("anyOf")
    if branches and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        if len(rest) == 1 and "anyOf" not in rest[0]:
            del out["anyOf"]
            only = dict(rest[0])
            kind = only.pop("type", None)
            if "enum" in only:
                only["enum"] = [*only["enum"], None]
            out = {**only, **out}
            if kind is not None:
                out["type"] = [kind, "null"]
        elif len(rest) == 1:  # a nullable duration: keep its two forms and add null
            out["anyOf"] = [*rest[0]["anyOf"], {"type": "null"}]
            out.update({k: v for k, v in rest[0].items() if k != "anyOf"})
    return _describe(out)


def _describe(node: Schema) -> Schema:
    """Fold ``unit`` and the duration marker into the description (custom keywords do not survive)."""
    unit = node.pop("unit", None)
    duration = node.pop("x-duration", None)
    text = node.get("description", "")
    if unit and not duration:  # a duration's text says how it is written
        text = f"{text} Unit: {unit}.".strip()
    if duration:
        text = f"{text} {DURATION_TEXT}".strip()
        if isinstance(duration, dict):
            text += f"; {_duration_range(duration)}"
        text += "."
    if text:
        node["description"] = text
    return node


def _duration_range(marker: dict[str, Any]) -> str:
    between = Between(marker["low"], marker["high"], open_low=marker["openLow"])
    return between.describe()


# --- OpenAPI v3 structural schema (CRD) ---------------------------------------------------------------------

_OPENAPI_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "nullable",
        "x-kubernetes-int-or-string",
    }
)


def openapi_schema(model: type[BaseModel]) -> Schema:
    """``model`` as an OpenAPI v3 structural schema for a CustomResourceDefinition's ``openAPIV3Schema``.

    Kubernetes' rules: every node has exactly one ``type`` (or ``x-kubernetes-int-or-string``), ``nullable:
    true`` replaces null in a type list, no ``$ref``/``const``/``anyOf`` for types, and ``properties`` never
    sits beside ``additionalProperties`` (the API server prunes unknown fields instead). Durations become
    int-or-string with the duration pattern; numeric bounds use OpenAPI 3.0's boolean exclusive flags.
    """
    return _structural(json_schema(model, defaults=True))


def _structural(node: Schema) -> Schema:
    out: Schema = {}
    kind = node.get("type")
    if isinstance(kind, list):
        out["nullable"] = "null" in kind
        (kind,) = [k for k in kind if k != "null"]
        if not out["nullable"]:
            del out["nullable"]
    branches = node.get("anyOf")
    if branches is not None:  # only durations (number or text), possibly nullable
        if {"type": "null"} in branches:
            out["nullable"] = True
        number = next(b for b in branches if b.get("type") == "number")
        out["x-kubernetes-int-or-string"] = True
        out["pattern"] = DURATION_PATTERN
        node = {**node, **{k: v for k, v in number.items() if k != "type"}}
        kind = None
    if kind is not None:
        out["type"] = kind
    elif "enum" in node and "type" not in out:
        values = [v for v in node["enum"] if v is not None]
        out["type"] = "string" if all(isinstance(v, str) for v in values) else "number"
    for key, value in node.items():
        if key in (
            "type",
            "anyOf",
            "additionalProperties",
            "properties",
            "items",
            "exclusiveMinimum",
            "exclusiveMaximum",
        ):
            continue
        if key == "enum":
            out["enum"] = [v for v in value if v is not None]
        elif key == "default":
            if isinstance(value, str | int | float | bool):  # scalars: the API server fills them in
                out["default"] = value
        elif key in _OPENAPI_KEYS:
            out[key] = value
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            out[flag] = node[bound]
            out[bound] = True
    if "properties" in node:
        out["properties"] = {k: _structural(v) for k, v in node["properties"].items()}
    elif isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"])
    if "items" in node:
        out["items"] = _structural(node["items"])
    return out


# --- reference rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRow:
    """One line of the configuration reference."""

    key: str  # dotted YAML path, list items as ``[]``
    type: str  # "duration", "int", "'hpa' | 'scale'", "section", "list of int (optional)" ...
    default: str  # as written in YAML; "(required)" or "" for sections
    description: str  # the field's description with its unit and allowed range
    unit: str | None
    section: bool


def describe_fields(
    model: type[BaseModel], prefix: str = "", instance: BaseModel | None = None
) -> list[FieldRow]:
    """Rows for every field of ``model`` and of its sub-sections (list items as ``key[].field``).

    Defaults come from ``instance`` when given, so a section's own default (e.g. the scale-down rules'
    300 s window) is shown rather than the bare field default.
    """
    rows: list[FieldRow] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        sub = next(models_in(annotation), None)
        default = _default_value(info, instance, name)
        text = _field_text(info, annotation)
        if sub is not None:
            listed = typing.get_origin(_strip_optional(annotation)) in (list, tuple)
            rows.append(
                FieldRow(key, _type_name(annotation), _show(default) if listed else "", text, None, True)
            )
            child = default if isinstance(default, sub) else None
            rows.extend(describe_fields(sub, f"{key}[]." if listed else f"{key}.", child))
            continue
        rows.append(FieldRow(key, _type_name(annotation), _show(default), text, _unit(info), False))
    return rows


_REQUIRED = object()


def _default_value(info: FieldInfo, instance: BaseModel | None, name: str) -> Any:
    if instance is not None:
        return getattr(instance, name)
    if info.is_required():
        return _REQUIRED
    return info.get_default(call_default_factory=True)


def _show(value: Any) -> str:
    if value is _REQUIRED:
        return "(required)"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Duration):
        return format_seconds(float(value))
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, list | tuple) and value and isinstance(value[0], BaseModel):
        return json.dumps([v.model_dump(by_alias=True) for v in value], separators=(", ", ": "))
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def _unit(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    unit = extra.get("unit") if isinstance(extra, dict) else None
    return str(unit) if unit else None


def _field_text(info: FieldInfo, annotation: Any) -> str:
    text = info.description or ""
    unit = _unit(info)
    if unit:
        text = f"{text} Unit: {unit}."
    allowed = allowed_range(info)
    if allowed:
        text = f"{text} Allowed: {allowed}."
    return text


def _strip_optional(annotation: Any) -> Any:
    if is_optional(annotation):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _strip_annotated(inner)
    return _strip_annotated(annotation)


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _type_name(annotation: Any) -> str:
    if is_optional(annotation):
        return _type_name(_strip_optional(annotation)) + " (optional)"
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) is Literal:
        return " | ".join(repr(v) for v in literal_values(annotation))
    if typing.get_origin(annotation) in (list, tuple):
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if typing.get_origin(annotation) is dict or annotation is dict:
        return "mapping"
    if annotation is Duration:
        return "duration"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def is_optional(annotation: Any) -> bool:
    """``X | None``?"""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return union and type(None) in typing.get_args(annotation)


def literal_values(annotation: Any) -> tuple[Any, ...]:
    """The allowed values of a ``Literal`` (also inside ``X | None``); empty for other types."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        found = literal_values(arg)
        if found:
            return found
    return ()
