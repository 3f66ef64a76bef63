"""The chart's Grafana dashboard and PrometheusRule read what the controller really exports.

The rules pass ``promtool check rules`` and, on fleet-shaped series, ``promtool test rules`` proves that
each alert fires when it should and only for the Lease holder's series; every PromQL expression of the
dashboard is valid PromQL (checked by promtool as a recording rule) and names only metrics the code exports
(:class:`controller.adapters.health.ControllerMetrics`).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chartlib import CHART, of_kind, one, render
from tests.support.tools import require_tool

pytestmark = pytest.mark.helm

FULL = "rel-recharge-autoscaler"
JOB = f'job="{FULL}-metrics"'
METRIC = re.compile(r"\brecharge_[a-z_]+[a-z]")
DASHBOARD = CHART / "dashboards" / "fleet-overview.json"


def exported_metrics() -> set[str]:
    """Every sample name the controller's /metrics can carry (counters as _total and _created)."""
    from controller.adapters.health import ControllerMetrics

    out: set[str] = set()
    for family in ControllerMetrics(scope=("namespace", "scaler")).registry.collect():
        if family.type == "counter":
            out |= {f"{family.name}_total", f"{family.name}_created"}
        else:
            out.add(family.name)
    return out


def promtool(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def rule_groups(*sets: str, values: str = "fleet") -> list[dict[str, Any]]:
    manifests = render(CHART / "ci" / f"{values}-values.yaml", sets=sets)
    rule = one(manifests, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return list(rule["spec"]["groups"])


# --- PrometheusRule ----------------------------------------------------------------------------------------

ALERTS = {
    f"RechargeAutoscaler{name}" for name in (
        "ForecastStale", "ForecastMissing", "ForecastErrorHigh", "ForecastErrorDrifting", "CappedAtMax",
        "ScalerNotReady", "NotLeading", "Absent",
    )
}


@pytest.mark.parametrize(
    ("values", "sets"),
    [("fleet", ()), ("hpa", ("prometheusRule.enabled=true",))],
    ids=["fleet", "single-workload"],
)
def test_prometheus_rules_pass_promtool_check_rules(
    values: str, sets: tuple[str, ...], tmp_path: Path
) -> None:
    groups = rule_groups(*sets, values=values)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    out = promtool("check", "rules", str(path))
    assert f"SUCCESS: {len(ALERTS)} rules found" in out
    rules = [r for g in groups for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    for r in rules:
        assert r["labels"]["severity"] in ("info", "warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert JOB in r["expr"], r["alert"]  # only this release's controller
        assert set(METRIC.findall(r["expr"])) <= exported_metrics(), r["alert"]


def test_rule_thresholds_and_labels_come_from_the_values() -> None:
    groups = rule_groups("prometheusRule.forecastMaxAgeSeconds=7200", "prometheusRule.selector=job=\"x\"")
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert "> 7200" in rules["RechargeAutoscalerForecastStale"]["expr"]
    assert 'job="x"' in rules["RechargeAutoscalerAbsent"]["expr"]
    assert all(r["labels"]["team"] == "payments" for r in rules.values())  # ci/fleet-values.yaml alertLabels


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in {"job": f"{FULL}-metrics", **labels}.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _alert(name: str, at: str, *fired: tuple[dict[str, str], str]) -> dict[str, Any]:
    """An alert_rule_test: ``name`` at ``at`` fires once per (labels, summary) of ``fired`` (none: silent)."""
    base = {"severity": SEVERITY[name], "team": "payments"}
    return {"eval_time": at, "alertname": f"RechargeAutoscaler{name}",
            "exp_alerts": [{"exp_labels": {**base, **labels}, "exp_annotations": {"summary": summary}}
                           for labels, summary in fired]}


SEVERITY = {"ScalerNotReady": "warning", "CappedAtMax": "warning", "ForecastStale": "warning",
            "NotLeading": "critical", "Absent": "critical", "ForecastErrorDrifting": "warning",
            "ForecastErrorHigh": "info"}
LEADER = {"pod": "ctl-a"}
FOLLOWER = {"pod": "ctl-b"}
J = {"job": f"{FULL}-metrics"}


def test_alerts_fire_on_fleet_series(tmp_path: Path) -> None:
    """promtool test rules: what each alert says about a fleet of three scalers, led by pod ctl-a (the
    rules' descriptions are left out: the summaries name what fired)."""
    groups = rule_groups()
    for rule in (r for g in groups for r in g["rules"]):
        rule["annotations"] = {"summary": rule["annotations"]["summary"]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    ok = {"namespace": "payments", "scaler": "recharge", **LEADER}
    capped = {"namespace": "topup", "scaler": "bundles", **LEADER}
    broken = {"namespace": "topup", "scaler": "broken", **LEADER}
    not_found = {"reason": "TargetNotFound"}
    fleet = [
        _series("recharge_autoscaler_leader", LEADER, "1x180"),
        _series("recharge_autoscaler_leader", FOLLOWER, "0x180"),
        _series("recharge_autoscaler_dry_run", LEADER, "0x180"),
        _series("recharge_autoscaler_scaler_ready", {**ok, "reason": "Reconciled"}, "1x180"),
        _series("recharge_autoscaler_scaler_ready", {**broken, **not_found}, "0x180"),
        # a follower's stale copy of the broken scaler: never alerts
        _series("recharge_autoscaler_scaler_ready", {**broken, **FOLLOWER, **not_found}, "0x180"),
        # forecast 1h old, ageing 1 min per minute: past 3h (10800s) after 120 min
        _series("recharge_autoscaler_forecast_age_seconds", ok, "3600+60x180"),
        _series("recharge_autoscaler_forecast_age_seconds", capped, "600x180"),
        _series("recharge_autoscaler_decisions_total", {**capped, "reason": "MaxCapacityExceeded"},
                "0+1x180"),
        _series("recharge_autoscaler_decisions_total", {**ok, "reason": "ForecastPeak"}, "0+1x180"),
    ]
    no_leader = [_series("recharge_autoscaler_leader", LEADER, "0x30"),
                 _series("recharge_autoscaler_leader", FOLLOWER, "0x30"),
                 _series("recharge_autoscaler_dry_run", LEADER, "0x30")]
    # WAPE steady at 8% for a week, then 20%: above 1.5x its 7-day mean (drifting), below 25% (not high);
    # a sample every 4 minutes (within the 5-minute lookback, so the series never goes stale)
    drift = [_series("recharge_autoscaler_leader", LEADER, "1x2900"),
             _series("recharge_autoscaler_forecast_backtest_wape", ok, "0.08x2520 0.2x380")]
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": fleet, "alert_rule_test": [
            _alert("ScalerNotReady", "30m",
                   ({**broken, **J, **not_found},
                    "PredictiveScaler topup/broken is not Ready (TargetNotFound)")),
            _alert("CappedAtMax", "30m",
                   ({"namespace": "topup", "scaler": "bundles"},
                    "topup/bundles needs more than maxReplicas")),
            _alert("ForecastStale", "60m"),
            _alert("ForecastStale", "150m", ({**ok, **J}, "Forecast of payments/recharge is stale")),
            _alert("NotLeading", "30m"),
            _alert("Absent", "30m"),
        ]},
        {"interval": "1m", "input_series": no_leader, "alert_rule_test": [
            _alert("NotLeading", "10m", ({}, "No recharge-autoscaler controller holds the Lease")),
            _alert("Absent", "20m"),
        ]},
        {"interval": "4m", "input_series": drift, "alert_rule_test": [
            _alert("ForecastErrorDrifting", "160h"),
            _alert("ForecastErrorDrifting", "190h",
                   ({**ok, **J}, "Forecast error of payments/recharge is drifting up")),
            _alert("ForecastErrorHigh", "190h"),
        ]},
    ]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    assert "SUCCESS" in promtool("test", "rules", "tests.yaml", cwd=tmp_path)


# --- Grafana dashboard -------------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    manifests = render(CHART / "ci" / "fleet-values.yaml")
    cm = next(m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"] == f"{FULL}-dashboard")
    return dict(json.loads(cm["data"]["recharge-autoscaler-fleet.json"]))


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out += p.get("panels", [])
    return out


def _expressions(dash: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in _panels(dash) for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.+), *[a-z_]+\)", query)
            assert m, query
            exprs.append(m.group(1))
    return exprs


def test_dashboard_json_parses_and_shows_the_fleet_overview() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "namespace", "scaler"}
    titles = " | ".join(p["title"] for p in _panels(dash))
    for needle in ("planned vs actual vs needed", "Forecast error", "Shortfall", "Decisions by reason"):
        assert needle in titles, needle
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids))
    used = {name for expr in _expressions(dash) for name in METRIC.findall(expr)}
    for needed in ("recharge_autoscaler_desired_replicas", "recharge_autoscaler_current_replicas",
                   "recharge_autoscaler_needed_replicas", "recharge_autoscaler_forecast_backtest_wape",
                   "recharge_autoscaler_decisions_total", "recharge_autoscaler_ready_replicas"):
        assert needed in used, needed


def test_every_dashboard_query_is_valid_promql_on_exported_metrics(tmp_path: Path) -> None:
    exported = exported_metrics()
    exprs = _expressions(_dashboard())
    assert len(exprs) >= 15
    for expr in exprs:
        unknown = set(METRIC.findall(expr)) - exported
        assert not unknown, f"{expr}: not exported by the controller: {sorted(unknown)}"
        assert 'namespace=~"$namespace"' in expr or expr.startswith("recharge_autoscaler_desired_replicas") \
            or "recharge_autoscaler_leader" in expr, expr
    # promtool parses every expression, Grafana's variables replaced by what they expand to
    concrete = [e.replace("$__rate_interval", "5m").replace("$namespace", ".*").replace("$scaler", ".*")
                for e in exprs]
    rules = [{"record": f"dashboard:query_{i}:check", "expr": e} for i, e in enumerate(concrete)]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in promtool("check", "rules", str(path))
