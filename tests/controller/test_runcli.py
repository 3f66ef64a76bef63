"""``recharge-autoscaler run`` end to end against the stand-in API server: a forecast file, a load file, a
kubeconfig, and the real wiring (Kubernetes client, lease, Events, state ConfigMap, probes, SIGTERM)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from controller.loop import register
from forecaster.artifact import ForecastArtifact, Interval
from forecaster.store import FileStore
from tests.kubeapi.fixtures import NAMESPACE, TARGET
from tests.kubeapi.server import KubeApiServer

REPO = Path(__file__).resolve().parents[2]
ANN = "recharge-autoscaler.io/decision"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_inputs(
    tmp: Path, server: KubeApiServer, *, mode: str = "hpa", peak: float = 950.0, extra: str = ""
) -> list[str]:
    now = pd.Timestamp.now(tz="UTC").floor("min")
    start = now.floor("h") - pd.Timedelta("1h")
    ivs = tuple(
        Interval(start + pd.Timedelta(hours=i), peak * 0.6, peak * 0.5, peak * 0.8, peak) for i in range(8)
    )
    FileStore(tmp / "forecast.json").write(
        ForecastArtifact(
            created_at=now - pd.Timedelta("5min"),
            model="seasonal_median",
            timezone="UTC",
            interval_seconds=3600,
            band_level=0.9,
            history_start=start - pd.Timedelta("14D"),
            history_end=start,
            history_points=336,
            source="test",
            horizon_seconds=8 * 3600,
            intervals=ivs,
        )
    )
    (tmp / "load.csv").write_text(
        f"timestamp,value\n{(now - pd.Timedelta('1min')).isoformat()},280\n{now.isoformat()},300\n"
    )
    (tmp / "config.yaml").write_text(f"""
store:
  kind: file
  file: {{path: forecast.json}}
controller:
  capacityPerReplica: 100
  interval: 1s
  target: {{name: {TARGET}, namespace: {NAMESPACE}, mode: {mode}}}
  load: {{kind: file, path: load.csv}}
  leaderElection: {{leaseDuration: 3s, renewDeadline: 2s, retryPeriod: 1s}}
  healthPort: {free_port()}
  metricsPort: {free_port()}
{extra}""")
    kc = server.write_kubeconfig(tmp / "kubeconfig", namespace=NAMESPACE)
    return ["run", "--config", str(tmp / "config.yaml"), "--kubeconfig", str(kc)]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.mark.parametrize("mode", ["hpa", "scale"], ids=["hpa-floor", "direct-scale"])
def test_run_once_scales_annotates_and_records_event(
    kube_seeded: KubeApiServer, tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kube_seeded.hpa_controller = True  # the emulated HPA moves the Deployment up to a raised floor
    code = run_cli([*write_inputs(tmp_path, kube_seeded, mode=mode), "--once"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "outcome: acted" in out
    hpa, dep = kube_seeded.hpa(NAMESPACE, TARGET), kube_seeded.deployment(NAMESPACE, TARGET)
    assert hpa is not None and dep is not None
    acted_on, unchanged = (hpa, dep) if mode == "hpa" else (dep, hpa)
    value = hpa["spec"]["minReplicas"] if mode == "hpa" else dep["spec"]["replicas"]
    assert value > 3  # 950 req/s at 100 req/s per replica needs more; HPA limits cap the first step
    assert dep["spec"]["replicas"] == value  # directly, or through the HPA enforcing its new floor
    note = json.loads(acted_on["metadata"]["annotations"][ANN])
    assert note["replicas"] == value and note["reason"]
    assert ANN not in (unchanged["metadata"].get("annotations") or {})
    events = kube_seeded.events(NAMESPACE)
    assert [e["reason"] for e in events][:1] == ["ScaledUp"]
    assert events[0]["involvedObject"]["kind"] == (
        "HorizontalPodAutoscaler" if mode == "hpa" else "Deployment"
    )
    lease = kube_seeded.lease(NAMESPACE, "recharge-autoscaler")
    assert lease is not None and not lease["spec"].get("holderIdentity")  # released at exit
    state = kube_seeded.configmap(NAMESPACE, "recharge-autoscaler-state")
    assert state is not None and json.loads(state["data"]["state.json"])["replicas"] == value


def test_run_once_dry_run_changes_nothing(
    kube_seeded: KubeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli([*write_inputs(tmp_path, kube_seeded), "--once", "--dry-run"]) == 0
    assert "outcome: dry_run" in capsys.readouterr().out
    assert [r.method for r in kube_seeded.requests if r.method != "GET"] == []


def test_run_once_api_failure_exits_3_without_changes(
    kube_seeded: KubeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = write_inputs(tmp_path, kube_seeded)
    kube_seeded.fail(403, count=5, method="PATCH", path="/horizontalpodautoscalers/")
    assert run_cli([*argv, "--once"]) == 3
    out = capsys.readouterr().out
    assert (
        "outcome: failed" in out
        and "needs 'patch' on 'horizontalpodautoscalers' in namespace payments" in out
    )
    hpa = kube_seeded.hpa(NAMESPACE, TARGET)
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2


def test_run_once_unreadable_forecast_holds_replicas(
    kube_seeded: KubeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = write_inputs(tmp_path, kube_seeded)
    (tmp_path / "forecast.json").write_text("{broken")
    assert run_cli([*argv, "--once"]) == 0
    out = capsys.readouterr().out
    assert "store:" in out
    hpa = kube_seeded.hpa(NAMESPACE, TARGET)
    assert hpa is not None and hpa["spec"]["minReplicas"] >= 2
    assert any(e["type"] == "Warning" for e in kube_seeded.events(NAMESPACE))


def test_missing_store_section_is_a_config_error(kube_seeded: KubeApiServer, tmp_path: Path) -> None:
    from forecaster.errors import ConfigError

    argv = write_inputs(tmp_path, kube_seeded)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(cfg.read_text().replace("store:\n  kind: file\n  file: {path: forecast.json}\n", ""))
    with pytest.raises(ConfigError, match=r"config.yaml: store: section is required by `run`"):
        run_cli([*argv, "--once"])


@pytest.mark.slow
def test_long_running_serves_probes_and_releases_lease_on_sigterm(
    kube_seeded: KubeApiServer, tmp_path: Path
) -> None:
    argv = write_inputs(tmp_path, kube_seeded)
    health_port = int(
        next(
            line.split()[-1]
            for line in (tmp_path / "config.yaml").read_text().splitlines()
            if "healthPort" in line
        )
    )
    code = (
        "import argparse, sys\nfrom controller.loop import register\np = argparse.ArgumentParser()\n"
        "register(p.add_subparsers())\na = p.parse_args(sys.argv[1:])\nsys.exit(a.func(a))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready: Any = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lease = kube_seeded.lease(NAMESPACE, "recharge-autoscaler")
            try:
                ready = requests.get(f"http://127.0.0.1:{health_port}/readyz", timeout=1)
            except requests.ConnectionError:
                ready = None
            if (
                lease
                and lease["spec"].get("holderIdentity")
                and ready is not None
                and ready.status_code == 200
            ):
                break
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, proc.stderr.read() if proc.poll() else ""
        assert requests.get(f"http://127.0.0.1:{health_port}/healthz", timeout=1).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lease = kube_seeded.lease(NAMESPACE, "recharge-autoscaler")
    assert lease is not None and not lease["spec"].get("holderIdentity")
    hpa = kube_seeded.hpa(NAMESPACE, TARGET)
    assert hpa is not None and hpa["spec"]["minReplicas"] > 2
