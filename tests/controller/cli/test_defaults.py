"""One set of defaults: plan, whatif and report plan alike; the config model, flags and chart agree."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from controller import cli
from controller.config import ControllerConfig
from forecaster.configbase import Duration, key_of
from forecaster.durations import parse_duration

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "nyc_taxi_rate.csv"


def _scalar_defaults() -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(ControllerConfig):
        if f.default is not dataclasses.MISSING and f.default is not None:
            out[key_of(f)] = f.default
    return out


def test_chart_values_use_the_config_models_defaults() -> None:
    values = yaml.safe_load((REPO / "helm" / "recharge-autoscaler" / "values.yaml").read_text())["controller"]
    compared = 0
    for key, default in _scalar_defaults().items():
        if key not in values or values[key] is None:
            continue
        chart = values[key]
        if isinstance(default, Duration):
            chart = parse_duration(str(chart), what=key, allow_zero=True).total_seconds()
        assert chart == default, f"controller.{key}: chart {values[key]!r} != model default {default!r}"
        compared += 1
    assert compared >= 8  # min/max replicas, start-up, warm-up, headroom, tolerance, ages, interval ...


@pytest.mark.parametrize("name", ["min_replicas", "max_replicas", "startup", "warmup_time", "headroom"])
def test_flag_help_states_the_model_default(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    default = next(f.default for f in dataclasses.fields(ControllerConfig) if f.name == name)
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
