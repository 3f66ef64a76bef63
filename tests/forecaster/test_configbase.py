"""Config building: unknown keys, wrong types and range checks all name the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from forecaster.configbase import Duration, build, check, describe, doc, load_yaml
from forecaster.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    period: Duration = field(default=Duration(60), metadata=doc("How often.", unit="s"))
    mode: Literal["hpa", "scale"] = field(default="hpa", metadata=doc("Mode."))


@dataclass(frozen=True)
class Outer:
    name: str = field(metadata=doc("Target name."))
    min_replicas: int = field(default=1, metadata=doc("Lower bound.", unit="replicas"))
    ratio: float = field(default=0.1, metadata=doc("Headroom."))
    tags: list[str] = field(default_factory=list, metadata=doc("Tags."))
    url: str | None = field(default=None, metadata=doc("Optional URL."))
    inner: Inner = field(default_factory=Inner, metadata=doc("Nested section."))

    def __post_init__(self) -> None:
        check(self.min_replicas >= 0, "controller.minReplicas", "must be >= 0")


def test_builds_with_defaults_and_camel_case() -> None:
    cfg = build(Outer, {"name": "recharge", "minReplicas": 3, "inner": {"period": "5m"}}, "controller")
    assert cfg.min_replicas == 3
    assert cfg.inner.period == 300.0
    assert cfg.inner.mode == "hpa"
    assert cfg.ratio == 0.1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, r"controller\.name: required field is missing"),
        ({"name": "x", "minReplica": 1}, r"controller\.minReplica: unknown field"),
        ({"name": "x", "minReplicas": "3"}, r"controller\.minReplicas: expected an integer"),
        ({"name": "x", "minReplicas": True}, r"controller\.minReplicas: expected an integer"),
        ({"name": "x", "ratio": "a lot"}, r"controller\.ratio: expected a number"),
        ({"name": "x", "inner": {"mode": "direct"}}, r"controller\.inner\.mode: 'direct' is not one of"),
        ({"name": "x", "inner": {"period": "soon"}}, r"controller\.inner\.period: cannot parse"),
        ({"name": "x", "tags": "a"}, r"controller\.tags: expected a list"),
        ({"name": "x", "minReplicas": -1}, r"controller\.minReplicas: must be >= 0"),
        ({"name": "x", "inner": 5}, r"controller\.inner: expected a mapping"),
    ],
    ids=[
        "missing",
        "unknown",
        "str-int",
        "bool-int",
        "str-float",
        "literal",
        "duration",
        "list",
        "range",
        "section",
    ],
)
def test_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(Outer, data, "controller")


def test_optional_accepts_none_and_value() -> None:
    assert build(Outer, {"name": "x", "url": None}).url is None
    assert build(Outer, {"name": "x", "url": "http://a"}).url == "http://a"


def test_describe_lists_every_field_with_units() -> None:
    rows = {r[0]: r for r in describe(Outer, "controller.")}
    assert "controller.inner.period" in rows
    assert "Unit: s." in rows["controller.inner.period"][3]
    assert rows["controller.name"][2] == "(required)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2", r"line \d+"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
    ids=["syntax", "not-mapping"],
)
def test_load_yaml_errors(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_yaml(p)


def test_load_yaml_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "nope.yaml")
