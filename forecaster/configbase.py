"""Typed, documented configuration: frozen dataclasses built from YAML, with errors that name the field.

Every config section in the product is a frozen dataclass whose fields carry their documentation in
``field(metadata=doc("...", unit="s", default_text=...))``. :func:`build` turns a plain mapping (from
``yaml.safe_load``) into the dataclass, rejecting unknown keys and wrong types with a message that names the
dotted path of the offending field (``controller.maxReplicas``). Range checks live in each dataclass's
``__post_init__`` and raise :class:`ConfigError` through :func:`check`.

:func:`describe` walks the same metadata to produce the reference page ``docs/configuration.md`` so that
code, docs and the Helm schema describe one set of fields.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from forecaster.durations import parse_duration
from forecaster.errors import ConfigError

T = TypeVar("T")


class Duration(float):
    """A duration in seconds; config files may write it as ``30s``, ``5m``, ``2h`` or ``7d``."""


def doc(text: str, *, unit: str | None = None) -> dict[str, Any]:
    """Field metadata: a one-line description and an optional unit, rendered in the config reference."""
    return {"doc": text, "unit": unit}


def check(condition: bool, path: str, message: str) -> None:
    """Raise ConfigError(``path: message``) unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{path}: {message}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def key_of(f: dataclasses.Field[Any]) -> str:
    """The YAML key of a dataclass field: camelCase, as Kubernetes and Helm users expect."""
    return str(f.metadata.get("key") or _camel(f.name))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{path}: value {value!r} matches none of the allowed types"
        )
    if origin is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{path}: {value!r} is not one of {allowed}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        item_t = args[0] if args else Any
        items = [_coerce(v, item_t, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, f"{path}.{k}") for k, v in value.items()}
    if tp is Duration:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a duration like 30s, 5m or 2h, got {value!r}")
        try:
            return Duration(parse_duration(value, what=path, allow_zero=True).total_seconds())
        except Exception as exc:  # UserError from parse_duration
            raise ConfigError(str(exc)) from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping or None), validating keys and types.

    Unknown keys are rejected (typos must not be silently ignored); missing keys take the field default.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    fields = {key_of(f): f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"{where}{unknown[0]}: unknown field; allowed fields here are {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for key, f in fields.items():
        fpath = f"{path}.{key}" if path else key
        if key in data:
            kwargs[f.name] = _coerce(data[key], hints[f.name], fpath)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{fpath}: required field is missing")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from None


def read_yaml(path: str | Path, *, what: str = "config file") -> Any:
    """Safe-load a YAML file; a missing, unreadable or malformed one is a ConfigError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"{p}: cannot read {what} ({reason})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{p}: not valid YAML{at} ({problem})") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Safe-load a YAML config file into a mapping, with clear errors for missing or malformed files."""
    p = Path(path)
    data = read_yaml(p)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args if a is not type(None)) + " (optional)"
    if origin in (list, tuple):
        return f"list of {_type_name(args[0]) if args else 'any'}"
    if origin is dict:
        return "mapping"
    if tp is Duration:
        return "duration"
    if dataclasses.is_dataclass(tp):
        return "section"
    return getattr(tp, "__name__", str(tp))


def describe(cls: type[Any], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """Rows of (key path, type, default, doc) for every field, recursing into nested sections."""
    rows: list[tuple[str, str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f"{prefix}{key_of(f)}"
        tp = hints[f.name]
        meta_doc = f.metadata.get("doc", "")
        unit = f.metadata.get("unit")
        if unit:
            meta_doc = f"{meta_doc} Unit: {unit}."
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            dv = f.default_factory()
            default = "" if dataclasses.is_dataclass(dv) else repr(dv)
        else:
            default = "(required)"
        rows.append((key, _type_name(tp), default, meta_doc))
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            rows.extend(describe(tp, key + "."))
    return rows
