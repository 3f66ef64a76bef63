"""The controller section: YAML keys, defaults, units on every field, and errors that name the field."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from controller.config import ControllerConfig, ScalingPolicy, parse_controller_config
from controller.configfile import load_controller_config
from forecaster.configbase import Duration, models_in
from forecaster.configschema import describe_fields
from forecaster.errors import ConfigError, UserError

FULL = {
    "target": {"name": "recharge", "namespace": "payments", "mode": "scale"},
    "capacityPerReplica": 120,
    "headroom": 0.2,
    "minReplicas": 3,
    "maxReplicas": 40,
    "startup": "2m",
    "warmupTime": "45s",
    "tolerance": 0.05,
    "behavior": {
        "scaleUp": {"policies": [{"type": "Pods", "value": 10, "periodSeconds": 30}], "selectPolicy": "Max"},
        "scaleDown": {"policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
                      "stabilizationWindowSeconds": 600},
    },
    "forecastMaxAge": "6h",
    "loadMaxAge": "90s",
    "maxCapacity": "exceed",
    "burstBuffer": 5,
    "interval": "15s",
    "dryRun": True,
    "leaderElection": {"leaseName": "ra", "leaseDuration": "30s", "renewDeadline": "20s",
                       "retryPeriod": "5s"},
    "warmup": {"enabled": True, "url": "http://recharge.payments:8080/warmup", "lead": "10m",
               "rampThreshold": 0.5},
    "load": {"kind": "prometheus", "query": "sum(rate(recharge_requests_total[1m]))"},
    "healthPort": 8081,
    "metricsPort": 9091,
}


def test_full_section_round_trips_camel_case_keys() -> None:
    c = parse_controller_config(FULL)
    assert c.target is not None and (c.target.namespace, c.target.mode, c.target.hpa) == ("payments", "scale",
                                                                                         "recharge")
    assert (c.capacity_per_replica, c.min_replicas, c.max_replicas, c.ceiling) == (120.0, 3, 40, 45)
    assert (float(c.startup), float(c.warmup_time), c.lead.total_seconds()) == (120.0, 45.0, 165.0)
    assert c.behavior.scale_up.policies == (ScalingPolicy("Pods", 10, 30),)
    assert c.behavior.scale_down.stabilization_window_seconds == 600
    assert c.behavior.scale_up.stabilization_window_seconds == 0
    assert float(c.forecast_max_age) == 6 * 3600 and c.interval_td.total_seconds() == 15
    assert c.warmup.enabled and float(c.warmup.lead) == 600 and c.warmup.ramp_threshold == 0.5
    assert c.load is not None and c.load.kind == "prometheus"
    c.check_runnable()


def test_defaults_are_hpa_like_and_safe() -> None:
    c = ControllerConfig(capacity_per_replica=50.0)
    assert (c.min_replicas, c.max_replicas, c.headroom, c.tolerance) == (2, 50, 0.1, 0.1)
    assert c.max_capacity == "honour" and c.ceiling == 50 and not c.dry_run
    assert c.pause_annotation == "recharge-autoscaler.io/paused"
    assert float(c.interval) == 30
    assert c.behavior.scale_down.stabilization_window_seconds == 300


def _with(path: str, value: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(FULL))
    node = data
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return data


_DELETE = object()
BAD = [
    ("capacity-zero", "capacityPerReplica", 0, "controller.capacityPerReplica: must be a positive"),
    ("capacity-missing", "capacityPerReplica", _DELETE, "controller.capacityPerReplica: required field"),
    ("capacity-text", "capacityPerReplica", "lots", "controller.capacityPerReplica: expected a number"),
    ("max-below-min", "maxReplicas", 2, "controller.maxReplicas: must be >= minReplicas (3), got 2"),
    ("min-negative", "minReplicas", -1, "controller.minReplicas: must be >= 0"),
    ("headroom-negative", "headroom", -0.1, "controller.headroom"),
    ("tolerance-one", "tolerance", 1.0, "controller.tolerance"),
    ("unknown-key", "maxReplica", 3, "controller.maxReplica: unknown field; did you mean maxReplicas?"),
    (
        "snake-case-key",
        "max_replicas",
        3,
        "controller.max_replicas: unknown field; did you mean maxReplicas?",
    ),
    ("bad-duration", "startup", "2 minutes", "controller.startup: cannot parse"),
    ("bad-mode", "target.mode", "patch", "controller.target.mode: 'patch' is not one of"),
    ("empty-target", "target.name", " ", "controller.target.name: must not be empty"),
    ("bad-max-capacity", "maxCapacity", "ignore", "controller.maxCapacity"),
    ("negative-buffer", "burstBuffer", -2, "controller.burstBuffer"),
    ("zero-interval", "interval", 0, "controller.interval: must be positive"),
    (
        "absurd-load-age",
        "loadMaxAge",
        "1000000d",
        "controller.loadMaxAge: must be positive and at most 1d, got 1000000d",
    ),
    (
        "absurd-forecast-age",
        "forecastMaxAge",
        "400d",
        "controller.forecastMaxAge: must be positive and at most 366d",
    ),
    ("long-startup", "startup", "2h", "controller.startup: must be between 0s and 1h, got 2h"),
    (
        "absurd-lease",
        "leaderElection.leaseDuration",
        "1000000d",
        "controller.leaderElection.leaseDuration: must be",
    ),
    (
        "absurd-warmup-lead",
        "warmup.lead",
        "30d",
        "controller.warmup.lead: must be between 0s and 1d, got 30d",
    ),
    ("absurd-level-window", "levelCorrection", {"window": "1000w"}, "levelCorrection.window: must"),
    ("policy-type", "behavior.scaleUp.policies", [{"type": "Cpu", "value": 1}],
     "controller.behavior.scaleUp.policies[0].type"),
    ("policy-value", "behavior.scaleUp.policies", [{"type": "Pods", "value": 0}], "value: must be > 0"),
    ("no-policies", "behavior.scaleDown.policies", [], "needs at least one policy"),
    ("renew-ge-lease", "leaderElection.renewDeadline", "40s", "controller.leaderElection.renewDeadline"),
    ("warmup-url-scheme", "warmup.url", "ftp://x", "controller.warmup.url: must start with http"),
    ("warmup-threshold", "warmup.rampThreshold", 0, "controller.warmup.rampThreshold"),
    ("load-no-query", "load", {"kind": "prometheus"}, "controller.load.query: is required"),
    ("load-file-no-path", "load", {"kind": "file"}, "controller.load.path: is required"),
    ("same-ports", "metricsPort", 8081, "controller.metricsPort: must differ from healthPort"),
    ("port-range", "healthPort", 70000, "controller.healthPort: must be a TCP port"),
]


@pytest.mark.parametrize(("path", "value", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_values_name_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_controller_config(_with(path, value))
    assert message in str(err.value)
    assert isinstance(err.value, UserError)


RUNNABLE = [
    ("no-target", {"capacityPerReplica": 10, "load": {"query": "q"}}, "controller.target: is required"),
    ("no-load", {"capacityPerReplica": 10, "target": {"name": "r"}}, "controller.load: is required"),
    ("warmup-no-url", {"capacityPerReplica": 10, "target": {"name": "r"}, "load": {"query": "q"},
                       "warmup": {"enabled": True}}, "controller.warmup.url: is required"),
]


@pytest.mark.parametrize(("data", "message"), [r[1:] for r in RUNNABLE], ids=[r[0] for r in RUNNABLE])
def test_check_runnable(data: dict[str, Any], message: str) -> None:
    cfg = parse_controller_config(data)  # fine for offline use
    with pytest.raises(ConfigError, match=message):
        cfg.check_runnable()


STORE = {"kind": "file", "file": {"path": "forecast.json"}}


def test_load_from_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"store": STORE, "controller": FULL}))
    assert load_controller_config(path) == parse_controller_config(FULL)
    path.write_text(yaml.safe_dump({"store": STORE}))
    with pytest.raises(ConfigError, match="has no 'controller' section"):
        load_controller_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_controller_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (yaml.safe_dump({"store": {"kind": "file"}, "controller": FULL}), "store.file: required"),
        (yaml.safe_dump({"sauce": {}, "controller": FULL}), "sauce: unknown top-level section; did you mean"),
        ("controller: {capacityPerReplica: 1}\nstore: {kind: file}\nstore: {kind: configmap}\n",
         "duplicate key 'store' (first given at line 2); the second is at line 3"),
    ],
    ids=["invalid-job-section", "unknown-section", "duplicate-section"],
)
def test_the_whole_file_is_validated_when_the_controller_reads_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_controller_config(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def _sections(cls: type[BaseModel]) -> list[type[BaseModel]]:
    out = [cls]
    for info in cls.model_fields.values():
        for inner in models_in(info.annotation):
            if inner not in out:
                out += _sections(inner)
    return out


def test_every_field_is_documented_with_units_where_numeric() -> None:
    rows = describe_fields(ControllerConfig, "controller.")
    assert len(rows) > 40
    for row in rows:
        assert row.description.strip(), f"{row.key} has no doc"
    for cls in _sections(ControllerConfig):
        for name, info in cls.model_fields.items():
            base = {info.annotation, *typing.get_args(info.annotation)}
            if base & {int, float, Duration}:
                extra = info.json_schema_extra
                assert isinstance(extra, dict) and extra.get("unit"), f"{cls.__name__}.{name} needs a unit"


@pytest.mark.parametrize("section", ["controller", "fleet"])
def test_bind_address_must_be_an_ip_address(section: str) -> None:
    """Issue 10, item 9: the probe and metrics servers listen on bindAddress, for `run` and for `fleet`."""
    from controller.config import ControllerConfig, FleetConfig
    from forecaster.errors import ConfigError

    model = ControllerConfig if section == "controller" else FleetConfig
    extra = {"capacity_per_replica": 1.0} if section == "controller" else {}
    assert model(**extra, bind_address="::").bind_address == "::"
    with pytest.raises((ConfigError, ValueError), match="must be an IP address"):
        model(**extra, bind_address="all-interfaces")
