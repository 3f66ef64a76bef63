"""``recharge-autoscaler fleet``: the fleet's config file, and the one-command migration of a single-workload
config file to a PredictiveScaler (``--migrate-config``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import ControllerConfig
from controller.configfile import load_config
from controller.fleet.spec import API_VERSION, KIND, SHARED_FIELDS, controller_config, parse_spec
from forecaster.errors import ConfigError
from tests.support.tools import REPO_ROOT

PROM = {"url": "http://prometheus.monitoring:9090"}


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_fleet_file_needs_only_the_prometheus_connection(tmp_path: Path) -> None:
    # Every scaler names its own history and live-load queries; the file only says where Prometheus is.
    path = _write(tmp_path, {"source": {"kind": "prometheus", "prometheus": PROM},
                             "fleet": {"namespaces": ["payments"], "interval": "20s"}})
    cfg = load_config(path, environ={})
    assert cfg.fleet is not None and cfg.fleet.namespaces == ["payments"] and cfg.fleet.interval == 20
    # ... but the forecast job of a single workload still needs its history query.
    single = _write(tmp_path, {"source": {"kind": "prometheus", "prometheus": PROM},
                               "store": {"kind": "file", "file": {"path": "f.json"}}})
    with pytest.raises(ConfigError, match=r"source\.prometheus\.query: required"):
        load_config(single, environ={})


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", "fleet", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT, check=False)


FULL: dict[str, Any] = {
    "source": {"kind": "prometheus",
               "prometheus": {**PROM, "query": "sum(rate(recharge_requests_total[5m]))"}},
    "forecast": {"timezone": "Asia/Jakarta", "calendar": {"country": "ID", "paydays": [1, 25, 31]}},
    "store": {"kind": "configmap", "configmap": {"name": "recharge-forecast", "namespace": "payments"}},
    "controller": {
        "target": {"namespace": "payments", "name": "recharge-api", "mode": "hpa", "hpaName": "recharge-hpa"},
        "load": {"kind": "prometheus", "query": "sum(rate(recharge_requests_total[1m]))"},
        "capacityPerReplica": 120, "headroom": 0.15, "minReplicas": 3, "maxReplicas": 40,
        "startup": "90s", "warmupTime": "45s", "forecastMaxAge": "3h", "tolerance": 0.05,
        "maxCapacity": "exceed", "burstBuffer": 6, "interval": "15s",
        "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 10, "periodSeconds": 30}]},
                     "scaleDown": {"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                                   "stabilizationWindowSeconds": 600}},
        "levelCorrection": {"enabled": False},
        "warmup": {"enabled": True, "url": "http://recharge-api.payments:8080/internal/warmup",
                   "lead": "10m"},
    },
}


def _scale_mode() -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(FULL))
    doc["controller"]["target"] = {"namespace": "payments", "name": "recharge-api", "mode": "scale"}
    return doc


def _dry_run() -> dict[str, Any]:
    doc = _scale_mode()
    doc["controller"]["dryRun"] = True
    return doc


@pytest.mark.parametrize("doc", [FULL, _scale_mode(), _dry_run()], ids=["hpa", "scale", "dry-run"])
def test_migrate_config_prints_a_scaler_that_round_trips(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = _write(tmp_path, doc)
    proc = _run("--migrate-config", str(path))
    assert proc.returncode == 0, proc.stderr
    manifest = yaml.safe_load(proc.stdout)
    assert (manifest["apiVersion"], manifest["kind"]) == (API_VERSION, KIND)
    assert manifest["metadata"] == {"name": "recharge-api", "namespace": "payments"}
    spec = parse_spec(manifest["spec"])  # a valid spec, as the controller validates it
    back = controller_config(spec, namespace="payments")
    original = load_config(path, environ={}).require_controller()
    assert {f: getattr(back, f) for f in SHARED_FIELDS} == {f: getattr(original, f) for f in SHARED_FIELDS}
    target, was = back.require_target(), original.require_target()
    assert (target.name, target.namespace) == (was.name, was.namespace)
    assert back.dry_run == original.dry_run
    if original.dry_run:
        assert spec.mode == "dryRun"
    else:
        assert (spec.mode, target.mode, target.hpa_name) == (was.mode, was.mode, was.hpa_name)
    # the rest of the file: the history query, the calendar, the forecast ConfigMap
    assert spec.history.query == "sum(rate(recharge_requests_total[5m]))"
    assert (spec.calendar.country, spec.calendar.paydays) == ("ID", [1, 25, 31])
    assert spec.forecast_config_map == "recharge-forecast"
    # what is one per fleet is named on stderr, not silently dropped
    assert "controller.interval" in proc.stderr


def test_migrated_scaler_is_only_what_differs_from_the_defaults(tmp_path: Path) -> None:
    doc = {"controller": {"target": {"name": "api"}, "capacityPerReplica": 50,
                          "load": {"kind": "prometheus", "query": "q"}}}
    proc = _run("--migrate-config", str(_write(tmp_path, doc)))
    assert proc.returncode == 0, proc.stderr
    manifest = yaml.safe_load(proc.stdout)
    assert manifest["metadata"] == {"name": "api", "namespace": "default"}  # the target's, as `run` reads it
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert manifest["spec"] == {"scaleTargetRef": ref, "mode": "hpa", "capacityPerReplica": 50.0,
                                "load": {"query": "q"}}
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"controller": {"capacityPerReplica": 50}}, "controller.target"),
        ({"store": {"kind": "file", "file": {"path": "f.json"}}}, "has no 'controller' section"),
        ({"controller": {"target": {"name": "api"}, "capacityPerReplica": 0}},
         "controller.capacityPerReplica"),
    ],
    ids=["no-target", "no-controller", "invalid"],
)
def test_migrate_config_refuses_what_cannot_become_a_scaler(
    tmp_path: Path, doc: dict[str, Any], message: str
) -> None:
    proc = _run("--migrate-config", str(_write(tmp_path, doc)))
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr


def test_default_controller_config_is_not_a_process_field_leak() -> None:
    # scaler_manifest carries SHARED_FIELDS only: a new ControllerConfig field lands in one of the two sets.
    from controller.fleet.spec import PROCESS_FIELDS

    assert set(ControllerConfig.model_fields) <= PROCESS_FIELDS | set(SHARED_FIELDS)
