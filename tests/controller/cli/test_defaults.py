"""One set of defaults: plan, whatif and report plan alike; the config model, flags and chart agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from controller import cli
from controller.cli.args import controller_config
from controller.config import ControllerConfig, LoadConfig, TargetConfig, WarmupConfig
from forecaster.configbase import Duration
from forecaster.durations import parse_seconds

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "nyc_taxi_rate.csv"


def _model_defaults() -> dict[str, Any]:
    """Every default of the controller section (sub-sections included) as YAML keys; durations in seconds."""
    required = {"capacity_per_replica": True, "target": {"name"}, "load": {"query"}}
    cfg = ControllerConfig(capacity_per_replica=1, target=TargetConfig(name="x"), load=LoadConfig(query="q"))
    return cfg.model_dump(by_alias=True, exclude=required)


def _agree(model: Any, chart: Any, key: str) -> list[str]:
    """Where the chart's value differs from the model's default. The chart leaves a value empty (null or "")
    where its templates fill one in (target, lease name and namespace) or the user must give one."""
    if chart is None or chart == "":
        return []
    if isinstance(model, dict) and isinstance(chart, dict):
        return [p for k in model if k in chart for p in _agree(model[k], chart[k], f"{key}.{k}")]
    if isinstance(model, list | tuple) and isinstance(chart, list):
        if len(model) != len(chart):
            return [f"{key}: chart {chart!r} != model default {model!r}"]
        pairs = enumerate(zip(model, chart, strict=True))
        return [p for i, (m, c) in pairs for p in _agree(m, c, f"{key}[{i}]")]
    if isinstance(chart, str) and not isinstance(model, str):  # a duration written as text
        chart = parse_seconds(chart)
    return [] if chart == model else [f"{key}: chart {chart!r} != model default {model!r}"]


def test_chart_values_use_the_config_models_defaults() -> None:
    values = yaml.safe_load((REPO / "helm" / "recharge-autoscaler" / "values.yaml").read_text())["controller"]
    defaults = _model_defaults()
    assert _agree(defaults, values, "controller") == []
    compared = [k for k in defaults if values.get(k) not in (None, "")]
    assert len(compared) >= 20  # limits, timings, ages, behavior, leader election, warm-up, level correction


def test_flags_left_out_take_the_config_models_defaults() -> None:
    args = cli.build_parser().parse_args(["plan", "--history", str(SAMPLE), "--capacity-per-replica", "2"])
    assert controller_config(args) == ControllerConfig(capacity_per_replica=2.0).evolve(
        warmup=WarmupConfig(enabled=not args.no_warmup)
    )


@pytest.mark.parametrize("name", ["min_replicas", "max_replicas", "startup", "warmup_time", "headroom"])
def test_flag_help_states_the_model_default(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    default = ControllerConfig.model_fields[name].default
    shown = f"{default:g}s" if isinstance(default, Duration) else (f"{default:.0%}" if name == "headroom"
                                                                   else str(default))
    for command in ("plan", "simulate", "whatif", "report"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        flag = "--" + name.replace("_", "-")
        after = text[text.rindex(flag + " "):]
        assert f"config or {shown})" in after[:400], f"{command} {flag} help does not show {shown}"


@pytest.mark.slow
def test_plan_whatif_and_report_give_the_same_baseline(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Only the required flags: the three commands replay the same forecast through the same defaults."""
    history = tmp_path / "rate.csv"
    frame = pd.read_csv(SAMPLE)
    frame.iloc[-24 * 2 * 21:].to_csv(history, index=False)  # three weeks at 30 min: quick to forecast
    required = ["--history", str(history), "--capacity-per-replica", "2"]
    out = tmp_path / "plan.csv"
    assert cli.main(["plan", *required, "--output", str(out), "--quiet"]) == 0
    assert cli.main(["whatif", *required, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    report_dir = tmp_path / "report"
    assert cli.main(["report", *required, "--output", str(report_dir), "--horizon", "24h",
                     "--simulate-days", "0"]) == 0
    plan = pd.read_csv(out)
    whatif = pd.DataFrame(doc["baseline"]["intervals"])
    report = pd.read_csv(report_dir / "plan.csv")
    assert len(plan) == len(whatif) == len(report) == 48
    assert whatif["replicas"].tolist() == plan["replicas"].tolist() == report["replicas"].tolist()
    assert whatif["reason"].tolist() == plan["reason"].tolist()
    assert plan["replicas"].min() >= ControllerConfig(capacity_per_replica=1).min_replicas
