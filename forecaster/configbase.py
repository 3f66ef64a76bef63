"""Typed configuration on pydantic v2: one base model, readable durations, one-line errors naming the field.

Every config section in the product is a frozen :class:`ConfigModel`: unknown keys are refused, YAML keys
are the camelCase aliases of the Python field names, and each field carries its documentation and unit in
``Field(description=..., json_schema_extra={"unit": ...})``. The same models give the generated
``docs/configuration.md``, the Helm chart's ``values.schema.json`` and a CRD schema
(:mod:`forecaster.configschema`).

Whatever goes wrong while a section is validated, from YAML (:func:`parse`) or from Python keyword
arguments, the caller sees one :class:`~forecaster.errors.ConfigError` line that names the dotted path of
the field, e.g. ``controller.maxReplicas: must be >= minReplicas (3), got 2`` or
``controller.maxReplica: unknown field; did you mean maxReplicas? ...``. Cross-field rules raise
:class:`FieldError` with the key they concern, relative to the model that checks them.

Durations are :class:`Duration` (seconds as a float) written ``30s``, ``5m``, ``2h``, ``7d`` in YAML; each
duration field declares its allowed range with :class:`Between`, so ``loadMaxAge: 1000000d`` is refused at
validation instead of overflowing a timestamp later. :func:`read_yaml` refuses duplicate keys.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self, TypeVar

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from forecaster.durations import format_seconds, parse_seconds
from forecaster.errors import ConfigError

M = TypeVar("M", bound="ConfigModel")

DURATION_PATTERN = r"^((\d+(\.\d+)?[smhdw])+|\d+(\.\d+)?)$"
"""What a duration may look like as text: ``90``, ``90s``, ``1h30m``, ``7d``, ``1w``."""


class FieldError(ConfigError, ValueError):
    """A rule about ``key`` failed. Raised inside a validator, ``key`` is relative to the model checking it.

    It is a ``ValueError`` so pydantic attributes it to the model's place in the file, and a
    :class:`ConfigError` so the CLI reports it (exit 2) when raised outside validation.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


def check(condition: bool, key: str, message: str) -> None:
    """Raise :class:`FieldError` (``key: message``) unless ``condition`` holds."""
    if not condition:
        raise FieldError(key, message)


class Duration(float):
    """A duration in seconds; config files may write it as ``30s``, ``5m``, ``2h`` or ``7d``.

    Every duration field also states its range with :class:`Between` (``Annotated[Duration, Between(...)]``).
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._parse, serialization=core_schema.plain_serializer_function_ser_schema(float)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {
            "anyOf": [{"type": "number"}, {"type": "string", "pattern": DURATION_PATTERN}],
            "x-duration": True,
        }

    @classmethod
    def _parse(cls, value: Any) -> Duration:
        return value if type(value) is cls else cls(parse_seconds(value))


@dataclass(frozen=True)
class Between:
    """The allowed range of a duration field, e.g. ``Annotated[Duration, Between("1s", "1d")]``.

    ``open_low`` excludes the lower bound (``Between("0s", "1h", open_low=True)``: positive, at most 1 h).
    The error names the range: ``controller.loadMaxAge: must be between 1s and 1d, got 1000000d``.
    """

    low: str
    high: str
    open_low: bool = False

    @property
    def low_seconds(self) -> float:
        return parse_seconds(self.low)

    @property
    def high_seconds(self) -> float:
        return parse_seconds(self.high)

    def describe(self) -> str:
        """The range in words: ``between 1s and 1d`` or ``positive and at most 1h``."""
        if self.open_low:
            if self.low_seconds == 0:
                return f"positive and at most {self.high}"
            return f"more than {self.low} and at most {self.high}"
        return f"between {self.low} and {self.high}"

    def _check(self, value: Duration) -> Duration:
        lo, hi = self.low_seconds, self.high_seconds
        if value < lo or (self.open_low and value == lo) or value > hi:
            raise ValueError(f"must be {self.describe()}, got {format_seconds(float(value))}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        out = dict(handler(schema))
        number = {
            "type": "number",
            ("exclusiveMinimum" if self.open_low else "minimum"): self.low_seconds,
            "maximum": self.high_seconds,
        }
        out["anyOf"] = [number, *out.get("anyOf", [])[1:]]
        out["x-duration"] = {"low": self.low, "high": self.high, "openLow": self.open_low}
        return out


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


NonEmptyStr = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]
"""A string that must not be empty or blank (names, keys, annotations)."""


@dataclass(frozen=True)
class Explain:
    """Field metadata: the message shown when a bound (range or length) fails, instead of the generic one.

    E.g. ``Annotated[int, Explain("must be a TCP port in 1..65535"), Field(ge=1, le=65535)]``.
    """

    message: str


class ConfigModel(BaseModel):
    """Base of every config section: frozen, unknown keys refused, camelCase YAML keys, strict types.

    Strict means no silent coercion: ``"3"`` is not an integer and ``1`` is not ``true``; integers are
    accepted where a number is expected. Construct from YAML data with :func:`parse`, from Python with
    keyword arguments (field names or YAML keys), and derive a changed copy with :meth:`evolve`, which
    validates again.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        allow_inf_nan=False,
        hide_input_in_errors=True,
    )

    config_path: ClassVar[str] = ""
    """Where this section sits in the config file; prefixes errors raised from Python construction."""

    positional: ClassVar[tuple[str, ...]] = ()
    """Field names that may also be passed positionally (small value-like sections, e.g. a policy)."""

    def __init__(self, /, *args: Any, **data: Any) -> None:
        if args:
            if len(args) > len(self.positional):
                raise TypeError(
                    f"{type(self).__name__} takes at most {len(self.positional)} positional arguments "
                    f"({len(args)} given)"
                )
            data.update(zip(self.positional, args, strict=False))
        try:
            self.__pydantic_validator__.validate_python(data, self_instance=self)
        except ValidationError as exc:
            raise config_error(exc, type(self), self.config_path) from None

    # Not a "custom" __init__ for pydantic: nested sections and model_validate() do not go through it, so
    # only a construction from Python turns its errors into a ConfigError here (parse() does the same).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes`` (field names) applied and validated again, like ``dataclasses.replace``."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(changes)
        return type(self)(**values)


def parse(cls: type[M], data: Any, path: str = "") -> M:
    """Validate the plain mapping ``data`` (from YAML) as section ``cls`` found at ``path`` in the file.

    Keys must be the camelCase YAML keys (a Python field name is an unknown key here); missing keys take the
    field default, ``None`` means an empty section. Any problem raises one :class:`ConfigError` line naming
    the dotted field path.
    """
    try:
        return cls.model_validate({} if data is None else data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise config_error(exc, cls, path) from None


# --- errors -------------------------------------------------------------------------------------------------


def config_error(exc: ValidationError, cls: type[BaseModel], path: str = "") -> ConfigError:
    """The first error of ``exc`` as one ``ConfigError`` line: ``dotted.path: what is wrong``."""
    err = exc.errors(include_url=False)[0]
    kind = err["type"]
    loc = tuple(err["loc"])
    loc = _yaml_loc(cls, loc[:-1]) + loc[-1:] if kind == "extra_forbidden" else _yaml_loc(cls, loc)
    if kind == "value_error" and isinstance((err.get("ctx") or {}).get("error"), FieldError):
        inner: FieldError = err["ctx"]["error"]
        return ConfigError(f"{_join(path, loc, inner.key)}: {inner.message}")
    where = _join(path, loc)
    if kind == "extra_forbidden":
        return ConfigError(f"{where}: {_unknown(cls, loc, top_level=not path and len(loc) == 1)}")
    if kind == "missing":
        return ConfigError(f"{where}: required field is missing")
    return ConfigError(f"{where or path or 'config'}: {_message(err, cls, loc)}")


def _yaml_loc(cls: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """``loc`` with field names (from Python construction) turned into their YAML keys."""
    out: list[Any] = []
    for part in loc:
        model = model_at(cls, tuple(out)) if isinstance(part, str) else None
        info = _field_by_key(model, part) if model is not None else None
        out.append(info.alias or part if info is not None else part)
    return tuple(out)


def _join(path: str, loc: tuple[Any, ...], key: str = "") -> str:
    out = path
    for part in (*loc, *([key] if key else [])):
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("["):
            out += part
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _unknown(cls: type[BaseModel], loc: tuple[Any, ...], *, top_level: bool) -> str:
    key = str(loc[-1])
    model = model_at(cls, loc[:-1])
    allowed = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not close and to_camel(key) in allowed:
        close = [to_camel(key)]
    hint = f"; did you mean {close[0]}?" if close else ""
    what = "unknown top-level section" if top_level else "unknown field"
    return f"{what}{hint} (allowed here: {', '.join(allowed)})"


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "model": "a mapping",
    "dict": "a mapping",
    "list": "a list",
    "tuple": "a list",
}


def _message(err: Any, cls: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind: str = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        return f"{value!r} is not one of {str(ctx.get('expected', '')).replace(' or ', ', ')}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{_range(field_at(cls, loc), ctx)}, got {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {value!r}"
    if kind in ("too_short", "string_too_short"):
        explain = _explain(field_at(cls, loc))
        return explain or "must not be empty"
    head = kind.split("_", 1)[0]
    if kind.endswith(("_type", "_parsing", "_from_float")) and head in _TYPE_WORDS:
        shown = type(value).__name__ if head in ("model", "dict", "list", "tuple") else repr(value)
        return f"expected {_TYPE_WORDS[head]}, got {shown}"
    return str(err["msg"])


def _explain(info: FieldInfo | None) -> str | None:
    found = [m.message for m in (info.metadata if info is not None else ()) if isinstance(m, Explain)]
    return found[0] if found else None


def _range(info: FieldInfo | None, ctx: dict[str, Any]) -> str:
    """``must be in [0, 1)``, ``must be between 1 and 1800`` or ``must be >= 0``, from the field's bounds."""
    explain = _explain(info)
    if explain:
        return explain
    text = allowed_range(info) if info is not None else ""
    if not text:  # an item of a list: only the bound that failed is known
        symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
        ((name, bound),) = [(k, v) for k, v in ctx.items() if k in symbol] or [("", "?")]
        text = f"{symbol.get(name, '')} {bound}"
    return f"must be {text}"


def allowed_range(info: FieldInfo) -> str:
    """The field's bounds in words: ``between 1 and 1800``, ``in [0, 1)``, ``>= 0``, ``positive and at most
    1h`` (durations); empty when it has none."""
    meta = list(info.metadata)
    for m in meta:
        if isinstance(m, Between):
            return m.describe()
    lo = next((m for m in meta if isinstance(m, Ge | Gt)), None)
    hi = next((m for m in meta if isinstance(m, Le | Lt)), None)
    if lo is None or hi is None:
        if lo is not None:
            return f">= {lo.ge}" if isinstance(lo, Ge) else f"> {lo.gt}"
        if hi is not None:
            return f"<= {hi.le}" if isinstance(hi, Le) else f"< {hi.lt}"
        return ""
    low = lo.ge if isinstance(lo, Ge) else lo.gt
    high = hi.le if isinstance(hi, Le) else hi.lt
    if isinstance(lo, Ge) and isinstance(hi, Le) and isinstance(low, int) and isinstance(high, int):
        return f"between {low} and {high}"
    opening, closing = "[" if isinstance(lo, Ge) else "(", "]" if isinstance(hi, Le) else ")"
    return f"in {opening}{low:g}, {high:g}{closing}"


# --- walking the models -------------------------------------------------------------------------------------


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """Model classes inside an annotation: ``X``, ``X | None``, ``tuple[X, ...]``, ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from models_in(arg)


def model_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class found by following ``loc`` (YAML keys and list indexes) down from ``cls``."""
    model: type[BaseModel] | None = cls
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = _field_by_key(model, str(part))
        model = next(models_in(info.annotation), None) if info is not None else None
    return model


def field_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> FieldInfo | None:
    """The field at ``loc``; for an item of a list (``paydays[0]``), the list's field."""
    while loc and isinstance(loc[-1], int):
        loc = loc[:-1]
    if not loc:
        return None
    model = model_at(cls, loc[:-1])
    return _field_by_key(model, str(loc[-1])) if model is not None else None


def _field_by_key(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


# --- YAML ---------------------------------------------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML says the last would win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; SafeLoader reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first given at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, *, what: str = "config file") -> Any:
    """Safe-load a YAML file; a missing, unreadable or malformed one (or one with a key given twice) is a
    ConfigError naming the file and, for syntax errors and duplicate keys, the line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"{p}: cannot read {what} ({reason})") from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        if problem.startswith("found duplicate key"):
            raise ConfigError(f"{p}: {problem.removeprefix('found ')}; the second is{at}") from None
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
