"""``forecast-job`` from the command line: the --once summary, exit codes, and the scheduled process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from controller.cli import main
from forecaster.adapters.store import FileStore
from tests.support.tools import REPO_ROOT


def write_history(path: Path, days: int = 15) -> None:
    index = pd.date_range("2026-10-01", periods=days * 48, freq="30min")
    hours = index.hour + index.minute / 60
    values = 200 + 120 * np.sin(2 * np.pi * (hours - 6) / 24)
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "value": values.round(2)}).to_csv(
        path, index=False
    )


def write_config(tmp_path: Path, **sections: Any) -> Path:
    write_history(tmp_path / "history.csv")
    data: dict[str, Any] = {
        "source": {"kind": "file", "file": {"path": "history.csv"}},
        "forecast": {"horizon": "6h", "interval": "1h", "history": "14d", "model": "seasonal_median"},
        "store": {"kind": "file", "file": {"path": "out/forecast.json"}},
        "controller": {"capacityPerReplica": 10},
        **sections,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_once_prints_a_summary_and_stores_the_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["forecast-job", "--config", str(config), "--once"]) == 0
    out = capsys.readouterr().out
    art = FileStore(tmp_path / "out" / "forecast.json").read()
    assert art is not None and len(art.intervals) == 6
    for label in ("source", "history", "quality", "model", "peak", "unit", "horizon", "events", "written"):
        assert f"  {label} " in out, label
    assert "history.csv" in out and "forecast.json" in out and "seasonal_median" in out
    assert "672 points at 30m" in out
    peak = out.split("  peak ")[1].split("  low ")[0]
    assert re.match(r"\s*[\d,.]+ per 30m at ", peak) and "up to " in peak  # every value with its unit
    assert "no interval is missing" in out and "0 interval(s)" not in out


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"source": {"kind": "file", "file": {"path": "missing.csv"}}}, 2, "missing.csv"),
        (
            {
                "source": {
                    "kind": "prometheus",
                    "prometheus": {"url": "http://127.0.0.1:{port}", "query": "up", "retries": 0},
                }
            },
            3,
            "connection failed",
        ),
        ({"forecast": {"horizon": "soon"}}, 2, "forecast.horizon: cannot parse 'soon'"),
    ],
    ids=["missing-history", "prometheus-down", "bad-config"],
)
def test_once_failure_exits_non_zero_and_keeps_the_last_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], code: int, message: str
) -> None:
    config = write_config(tmp_path)
    assert main(["forecast-job", "--config", str(config), "--once"]) == 0
    stored = (tmp_path / "out" / "forecast.json").read_bytes()
    capsys.readouterr()
    text = yaml.safe_dump(yaml.safe_load(config.read_text()) | change).replace("{port}", str(free_port()))
    config.write_text(text)
    assert main(["forecast-job", "--config", str(config), "--once"]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().count("\n") == 0, "one line"
    assert (tmp_path / "out" / "forecast.json").read_bytes() == stored


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "controller:\n  capacityPerReplica: 10\n  maxReplica: 5\n",
            "controller.maxReplica: unknown field; did you mean maxReplicas?",
        ),
        (
            "controller:\n  capacityPerReplica: -1\n  minReplicas: 5\n  maxReplicas: 2\n",
            "controller.capacityPerReplica: must be a positive number of requests per second, got -1",
        ),
        (
            "controller:\n  capacityPerReplica: 10\n  minReplicas: 5\n  maxReplicas: 2\n",
            "controller.maxReplicas: must be >= minReplicas (5), got 2",
        ),
        ("store:\n  kind: configmap\n", "duplicate key 'store' (first given at line"),
        (
            "controller:\n  capacityPerReplica: 10\n  loadMaxAge: 1000000d\n",
            "controller.loadMaxAge: must be positive and at most 1d, got 1000000d",
        ),
    ],
    ids=["controller-typo", "negative-capacity", "max-below-min", "duplicate-section", "absurd-duration"],
)
def test_the_job_validates_the_whole_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    """The job refuses the file `plan` and `run` would refuse (issue 10 item 4): one file, one validation."""
    config = write_config(tmp_path)
    lines = config.read_text().splitlines(keepends=True)
    if text.startswith("controller:"):  # replace the controller section
        start = next(i for i, line in enumerate(lines) if line.startswith("controller:"))
        end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
        lines[start:end] = [text]
    else:
        lines.append(text)
    config.write_text("".join(lines))
    assert main(["forecast-job", "--config", str(config), "--once"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: " in err and message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "forecast.json").exists()


@pytest.mark.slow
def test_sample_config_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What `make run` does, with the forecast written under tmp_path instead of out/."""
    data = yaml.safe_load((REPO_ROOT / "data" / "sample-config.yaml").read_text())
    data["source"]["file"]["path"] = str(REPO_ROOT / "data" / "nyc_taxi.csv")
    data["store"]["file"]["path"] = str(tmp_path / "forecast.json")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    assert main(["forecast-job", "--config", str(config), "--once"]) == 0
    out = capsys.readouterr().out
    art = FileStore(tmp_path / "forecast.json").read()
    assert art is not None and len(art.intervals) == 24 and art.backtest is not None
    assert "Forecast stored: next 1d in 24 intervals of 1h" in out and "Month start" in out


@pytest.mark.slow
def test_scheduled_process_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        schedule={"cron": "0 0 1 1 *", "runOnStart": True},
        metrics={"port": port, "address": "127.0.0.1"},
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "--log-json", "forecast-job", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        metrics = ""
        while time.monotonic() < deadline:
            try:
                metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                if 'recharge_forecast_job_runs_total{outcome="success"} 1.0' in metrics:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        assert 'recharge_forecast_job_runs_total{outcome="success"} 1.0' in metrics
        assert "recharge_forecast_job_history_points 672.0" in metrics
        assert "recharge_forecast_job_run_duration_seconds_count 1.0" in metrics
        assert (tmp_path / "out" / "forecast.json").exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert '"msg": "received SIGTERM; stopping after the current run"' in err
    assert '"outcome": "success"' in err, "structured run log"


def test_once_writes_a_configmap_through_a_kubeconfig(
    tmp_path: Path, kube: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job on the real API server, as a ServiceAccount allowed only what the chart gives the job."""
    from forecaster.artifact import ForecastArtifact

    token = kube.identity(
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["recharge-forecast"],
                "verbs": ["get", "update"],
            },
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        ]
    )
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", token=token)
    config = write_config(
        tmp_path,
        store={
            "kind": "configmap",
            "configmap": {
                "name": "recharge-forecast",
                "namespace": kube.namespace,
                "kubeconfig": str(kubeconfig),
            },
        },
    )
    for _ in range(2):  # the first run creates the ConfigMap, the second replaces it
        assert main(["forecast-job", "--config", str(config), "--once"]) == 0
        assert f"configmap {kube.namespace}/recharge-forecast" in capsys.readouterr().out
    cm = kube.configmap("recharge-forecast")
    assert cm is not None
    art = ForecastArtifact.from_json(cm["data"]["forecast.json"])
    assert len(art.intervals) == 6 and art.model == "seasonal_median"


@pytest.mark.parametrize(
    ("flags", "change", "message"),
    [
        (["--workers", "2"], {}, "--workers: only with --fleet"),
        (["--namespace", "payments"], {}, "--namespace: only with --fleet"),
        (["--fleet", "--workers", "0"], {}, "--workers: must be at least 1, got 0"),
        (["--fleet"], {}, "source.prometheus: required by forecast-job --fleet"),
        (
            [],
            {"source": {"kind": "prometheus", "prometheus": {"url": "http://127.0.0.1:9"}}},
            "source.prometheus.query: required: a PromQL expression returning one series",
        ),
    ],
    ids=["workers-without-fleet", "namespace-without-fleet", "zero-workers", "fleet-without-prometheus",
         "one-series-job-without-query"],
)
def test_fleet_flags_and_sections_are_checked_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], change: dict[str, Any], message: str
) -> None:
    config = write_config(tmp_path, **change)
    assert main(["forecast-job", "--config", str(config), "--once", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out" / "forecast.json").exists()


def test_a_scheduled_fleet_run_fails_only_when_every_scaler_failed() -> None:
    from controller.cli.fleet_job import scheduled_job
    from forecaster.job.config import ScheduleConfig
    from forecaster.job.fleet import FleetRun, TargetRun
    from forecaster.job.metrics import JobMetrics

    runs = [
        FleetRun([TargetRun("a", "succeeded"), TargetRun("b", "failed", error="x"),
                  TargetRun("c", "skipped")], "in-process", 1.0),
        FleetRun([TargetRun("a", "failed", error="x"), TargetRun("c", "skipped")], "in-process", 1.0),
    ]
    metrics = JobMetrics()
    job = scheduled_job(ScheduleConfig(), lambda: runs.pop(0), metrics)
    assert job.run_cycle() is True and job.run_cycle() is False
    value = metrics.registry.get_sample_value
    assert value("recharge_forecast_job_runs_total", {"outcome": "success"}) == 1
    assert value("recharge_forecast_job_runs_total", {"outcome": "failure"}) == 1
    assert value("recharge_forecast_job_last_run_series", {"outcome": "failed"}) == 1
    assert value("recharge_forecast_job_last_run_series", {"outcome": "succeeded"}) == 0
    assert value("recharge_forecast_job_series_total", {"outcome": "skipped"}) == 2


def test_once_against_a_dripping_prometheus_ends_at_the_run_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10, item 3: `timeout: 5s` and a server sending a byte every 2 s; the run ends by runTimeout."""
    from tests.support.faultserver import drip, fault_server

    config = write_config(tmp_path)
    assert main(["forecast-job", "--config", str(config), "--once"]) == 0
    stored = (tmp_path / "out" / "forecast.json").read_bytes()
    capsys.readouterr()
    with fault_server(drip(2.0)) as srv:
        prom = {"url": srv.url, "query": "up", "step": "30m", "timeout": "5s", "retries": 3}
        data = yaml.safe_load(config.read_text()) | {
            "source": {"kind": "prometheus", "prometheus": prom}, "schedule": {"runTimeout": "8s"}
        }
        config.write_text(yaml.safe_dump(data))
        t0 = time.monotonic()
        assert main(["forecast-job", "--config", str(config), "--once"]) == 3
        took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert took < 10, took
    assert "timed out after 5s" in err and "runTimeout" in err and "Traceback" not in err
    assert (tmp_path / "out" / "forecast.json").read_bytes() == stored
