"""Config models: unknown keys (with a suggestion), wrong types, ranges and duplicate YAML keys all name the
field in one line; durations are readable and bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

import pytest
from pydantic import Field, model_validator

from forecaster.configbase import Between, ConfigModel, Duration, check, load_yaml, parse, read_yaml
from forecaster.configschema import describe_fields
from forecaster.errors import ConfigError


class Inner(ConfigModel):
    period: Annotated[Duration, Between("1s", "1d")] = Field(
        Duration(60), description="How often.", json_schema_extra={"unit": "s"}
    )
    mode: Literal["hpa", "scale"] = Field("hpa", description="Mode.")


class Outer(ConfigModel):
    config_path = "controller"

    name: str = Field(description="Target name.")
    min_replicas: int = Field(1, ge=0, description="Lower bound.", json_schema_extra={"unit": "replicas"})
    max_replicas: int = Field(5, description="Upper bound.", json_schema_extra={"unit": "replicas"})
    ratio: float = Field(0.1, description="Headroom.")
    tags: list[str] = Field(default_factory=list, description="Tags.")
    url: str | None = Field(None, description="Optional URL.")
    inner: Inner = Field(default_factory=Inner, description="Nested section.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        check(
            self.max_replicas >= self.min_replicas,
            "maxReplicas",
            f"must be >= minReplicas ({self.min_replicas})",
        )
        return self


def test_builds_with_defaults_and_camel_case() -> None:
    cfg = parse(Outer, {"name": "recharge", "minReplicas": 3, "inner": {"period": "5m"}}, "controller")
    assert cfg.min_replicas == 3
    assert cfg.inner.period == 300.0 and isinstance(cfg.inner.period, Duration)
    assert cfg.inner.mode == "hpa"
    assert cfg.ratio == 0.1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, r"controller\.name: required field is missing"),
        (
            {"name": "x", "minReplica": 1},
            r"controller\.minReplica: unknown field; did you mean minReplicas\?",
        ),
        (
            {"name": "x", "min_replicas": 1},
            r"controller\.min_replicas: unknown field; did you mean minReplicas\?",
        ),
        ({"name": "x", "colour": 1}, r"controller\.colour: unknown field \(allowed here: inner, maxReplicas"),
        (
            {"name": "x", "inner": {"perod": "5m"}},
            r"controller\.inner\.perod: unknown field; did you mean period",
        ),
        ({"name": "x", "minReplicas": "3"}, r"controller\.minReplicas: expected an integer"),
        ({"name": "x", "minReplicas": True}, r"controller\.minReplicas: expected an integer"),
        ({"name": "x", "minReplicas": 2.5}, r"controller\.minReplicas: expected an integer"),
        ({"name": "x", "ratio": "a lot"}, r"controller\.ratio: expected a number"),
        ({"name": "x", "ratio": float("nan")}, r"controller\.ratio: must be a finite number"),
        ({"name": 5}, r"controller\.name: expected a string"),
        ({"name": "x", "inner": {"mode": "direct"}}, r"controller\.inner\.mode: 'direct' is not one of"),
        ({"name": "x", "inner": {"period": "soon"}}, r"controller\.inner\.period: cannot parse"),
        (
            {"name": "x", "inner": {"period": "0s"}},
            r"controller\.inner\.period: must be between 1s and 1d, got 0s",
        ),
        ({"name": "x", "inner": {"period": "1000000d"}}, r"must be between 1s and 1d, got 1000000d"),
        ({"name": "x", "inner": {"period": True}}, r"controller\.inner\.period: expected a duration"),
        ({"name": "x", "tags": "a"}, r"controller\.tags: expected a list"),
        ({"name": "x", "tags": ["a", 1]}, r"controller\.tags\[1\]: expected a string"),
        ({"name": "x", "minReplicas": -1}, r"controller\.minReplicas: must be >= 0, got -1"),
        (
            {"name": "x", "minReplicas": 3, "maxReplicas": 2},
            r"controller\.maxReplicas: must be >= minReplicas \(3\)",
        ),
        ({"name": "x", "inner": 5}, r"controller\.inner: expected a mapping"),
    ],
    ids=[
        "missing",
        "unknown",
        "snake-case-key",
        "unknown-no-suggestion",
        "unknown-nested",
        "str-int",
        "bool-int",
        "float-int",
        "str-float",
        "nan",
        "int-str",
        "literal",
        "duration",
        "duration-below",
        "duration-absurd",
        "duration-bool",
        "list",
        "list-item",
        "range",
        "cross-field",
        "section",
    ],
)
def test_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(Outer, data, "controller")


def test_python_construction_errors_name_the_yaml_key_too() -> None:
    with pytest.raises(ConfigError, match=r"^controller\.minReplicas: must be >= 0, got -1$"):
        Outer(name="x", min_replicas=-1)
    with pytest.raises(ConfigError, match=r"^controller\.inner\.period: must be between 1s and 1d"):
        Outer(name="x", inner={"period": Duration(0)})


def test_evolve_validates_again() -> None:
    cfg = Outer(name="x", max_replicas=5)
    assert cfg.evolve(min_replicas=4).min_replicas == 4
    assert cfg.min_replicas == 1  # frozen, unchanged
    with pytest.raises(ConfigError, match=r"controller\.maxReplicas: must be >= minReplicas \(6\)"):
        cfg.evolve(min_replicas=6)


def test_models_are_frozen() -> None:
    cfg = Outer(name="x")
    with pytest.raises(Exception, match="frozen"):
        cfg.name = "y"  # type: ignore[misc]


def test_optional_accepts_none_and_value() -> None:
    assert parse(Outer, {"name": "x", "url": None}).url is None
    assert parse(Outer, {"name": "x", "url": "http://a"}).url == "http://a"


def test_describe_lists_every_field_with_units_and_ranges() -> None:
    rows = {r.key: r for r in describe_fields(Outer, "controller.")}
    assert "controller.inner.period" in rows
    assert "Unit: s." in rows["controller.inner.period"].description
    assert "Allowed: between 1s and 1d." in rows["controller.inner.period"].description
    assert rows["controller.inner.period"].default == "1m"
    assert rows["controller.name"].default == "(required)"
    assert rows["controller.minReplicas"].description.endswith("Allowed: >= 0.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2", r"line \d+"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("store:\n  kind: file\nforecast: {}\nstore:\n  kind: configmap\n", r"duplicate key 'store'.*line 4"),
        (
            "controller:\n  minReplicas: 1\n  minReplicas: 2\n",
            r"duplicate key 'minReplicas' \(first given at line 2\)",
        ),
    ],
    ids=["syntax", "not-mapping", "duplicate-section", "duplicate-nested-key"],
)
def test_load_yaml_errors(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_yaml(p)


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("base: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\n")
    assert read_yaml(p)["derived"] == {"a": 1, "b": 3}


def test_load_yaml_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "nope.yaml")
