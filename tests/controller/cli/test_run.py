"""``recharge-autoscaler run`` end to end against the real kube-apiserver: a forecast file, a load file, a
kubeconfig, and the real wiring (Kubernetes client, lease, Events, state ConfigMap, probes, SIGTERM).

There is no HPA controller on the test server: in ``hpa`` mode the controller raises the HPA's floor and
the Deployment stays where it is until an HPA controller acts, which is exactly the controller's contract.
"""

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

from controller.cli.run import register
from forecaster.adapters.store import FileStore
from forecaster.artifact import ForecastArtifact, Interval
from tests.support.kube_testbed import TARGET, KubeTestbed

REPO = Path(__file__).resolve().parents[3]
ANN = "recharge-autoscaler.io/decision"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_inputs(
    tmp: Path,
    kube: KubeTestbed,
    *,
    mode: str = "hpa",
    peak: float = 950.0,
    extra: str = "",
    token: str | None = None,
    proxy: bool = False,
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
  target: {{name: {TARGET}, namespace: {kube.namespace}, mode: {mode}}}
  load: {{kind: file, path: load.csv}}
  leaderElection: {{leaseDuration: 3s, renewDeadline: 2s, retryPeriod: 1s}}
  healthPort: {free_port()}
  metricsPort: {free_port()}
{extra}""")
    kc = kube.kubeconfig(tmp / "kubeconfig", token=token, proxy=proxy)
    return ["run", "--config", str(tmp / "config.yaml"), "--kubeconfig", str(kc)]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.mark.parametrize("mode", ["hpa", "scale"], ids=["hpa-floor", "direct-scale"])
def test_run_once_scales_annotates_and_records_event(
    kube_seeded: KubeTestbed, tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = kube_seeded
    code = run_cli([*write_inputs(tmp_path, kube, mode=mode), "--once"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "outcome: acted" in out
    hpa, dep = kube.hpa(), kube.deployment()
    assert hpa is not None and dep is not None
    acted_on, unchanged = (hpa, dep) if mode == "hpa" else (dep, hpa)
    value = hpa["spec"]["minReplicas"] if mode == "hpa" else dep["spec"]["replicas"]
    assert value > 3  # 950 req/s at 100 req/s per replica needs more; HPA limits cap the first step
    if mode == "hpa":
        assert dep["spec"]["replicas"] == 3  # the HPA controller, not ours, moves the Deployment
    else:
        assert hpa["spec"]["minReplicas"] == 2
    note = json.loads(acted_on["metadata"]["annotations"][ANN])
    assert note["replicas"] == value and note["reason"]
    assert ANN not in (unchanged["metadata"].get("annotations") or {})
    events = kube.events()
    assert [e["reason"] for e in events][:1] == ["ScaledUp"]
    assert events[0]["involvedObject"]["kind"] == (
        "HorizontalPodAutoscaler" if mode == "hpa" else "Deployment"
    )
    lease = kube.lease("recharge-autoscaler")
    assert lease is not None and not lease["spec"].get("holderIdentity")  # released at exit
    state = kube.configmap("recharge-autoscaler-state")
    assert state is not None and json.loads(state["data"]["state.json"])["replicas"] == value


def test_run_once_dry_run_changes_nothing(
    kube_seeded: KubeTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli([*write_inputs(tmp_path, kube_seeded, proxy=True), "--once", "--dry-run"]) == 0
    assert "outcome: dry_run" in capsys.readouterr().out
    seen = kube_seeded.proxy.calls()
    assert seen and [r.method for r in seen if r.method != "GET"] == []


# Everything the controller needs in hpa mode (what the chart grants, without resourceNames) except `patch` on
# the HPA.
ALL_BUT_HPA_PATCH = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update", "create"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update", "create"]},
]


def test_run_once_forbidden_patch_exits_3_without_changes(
    kube_seeded: KubeTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = kube_seeded.identity(ALL_BUT_HPA_PATCH)
    argv = write_inputs(tmp_path, kube_seeded, token=token)
    assert run_cli([*argv, "--once"]) == 3
    out = capsys.readouterr().out
    assert "outcome: failed" in out
    assert f"needs 'patch' on 'horizontalpodautoscalers' in namespace {kube_seeded.namespace}" in out
    hpa = kube_seeded.hpa()
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2
    lease = kube_seeded.lease("recharge-autoscaler")
    assert lease is not None and not lease["spec"].get(
        "holderIdentity"
    )  # taken and released as that identity


@pytest.mark.parametrize("status", [503, 429])
def test_run_once_api_outage_exits_3_without_changes(
    kube_seeded: KubeTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """An overloaded or stopping API server (429/503 with Retry-After, as kube-apiserver sends them): the
    shared policy's retries (4 attempts, 0.5 + 1 + 2 s back-off) and no others, so the tick ends on time."""
    argv = write_inputs(tmp_path, kube_seeded, proxy=True)
    kube_seeded.proxy.fail(status, count=100, path="/deployments/")
    started = time.monotonic()
    assert run_cli([*argv, "--once"]) == 3
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert "outcome: failed" in out and f"HTTP {status}" in out
    assert len(kube_seeded.proxy.calls("GET", "/deployments/")) == 4  # the client itself retried none
    assert elapsed < 10, elapsed
    hpa = kube_seeded.hpa()
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2


def test_run_once_hung_api_server_gives_up_within_the_timeouts(
    kube_seeded: KubeTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reads that never answer: each attempt ends at the adapter's timeout and is not retried underneath."""
    argv = write_inputs(tmp_path, kube_seeded, proxy=True)
    hung = kube_seeded.proxy.slow(5, count=100, method="GET", path="/deployments/")
    from controller.adapters import kube as kube_adapter

    original = kube_adapter.KubeScaleTarget.__init__

    def short_timeout(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **{**kwargs, "timeout": 0.5, "backoff": 0.1})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kube_adapter.KubeScaleTarget, "__init__", short_timeout)
        started = time.monotonic()
        assert run_cli([*argv, "--once"]) == 3
        elapsed = time.monotonic() - started
    assert "outcome: failed" in capsys.readouterr().out
    assert hung.hits == 4  # the reads that reached the proxy (their answers are still on hold)
    assert elapsed < 8, elapsed  # 4 x 0.5 s timeouts + 0.7 s back-off, plus the rest of the tick


def test_run_once_unreadable_forecast_holds_replicas(
    kube_seeded: KubeTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = write_inputs(tmp_path, kube_seeded)
    (tmp_path / "forecast.json").write_text("{broken")
    assert run_cli([*argv, "--once"]) == 0
    out = capsys.readouterr().out
    assert "store:" in out
    hpa = kube_seeded.hpa()
    assert hpa is not None and hpa["spec"]["minReplicas"] >= 2
    assert any(e["type"] == "Warning" for e in kube_seeded.events())


def test_run_once_paused_target_is_left_alone(
    kube_seeded: KubeTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kube_seeded.patch(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        TARGET,
        {"metadata": {"annotations": {"recharge-autoscaler.io/paused": "true"}}},
    )
    argv = write_inputs(tmp_path, kube_seeded, proxy=True)
    assert run_cli([*argv, "--once"]) == 0
    assert "outcome: paused" in capsys.readouterr().out
    assert kube_seeded.proxy.calls("PATCH", "/horizontalpodautoscalers/|/deployments/") == []
    hpa = kube_seeded.hpa()
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2


def test_missing_store_section_is_a_config_error(kube_seeded: KubeTestbed, tmp_path: Path) -> None:
    from forecaster.errors import ConfigError

    argv = write_inputs(tmp_path, kube_seeded)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(cfg.read_text().replace("store:\n  kind: file\n  file: {path: forecast.json}\n", ""))
    with pytest.raises(ConfigError, match=r"config.yaml: store: section is required by `run`"):
        run_cli([*argv, "--once"])


@pytest.mark.slow
def test_long_running_serves_probes_and_releases_lease_on_sigterm(
    kube_seeded: KubeTestbed, tmp_path: Path
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
        "import argparse, sys\nfrom controller.cli.run import register\np = argparse.ArgumentParser()\n"
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
            lease = kube_seeded.lease("recharge-autoscaler")
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
        assert ready is not None and ready.status_code == 200, (
            proc.stderr.read() if proc.poll() and proc.stderr is not None else ""
        )
        assert requests.get(f"http://127.0.0.1:{health_port}/healthz", timeout=1).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lease = kube_seeded.lease("recharge-autoscaler")
    assert lease is not None and not lease["spec"].get("holderIdentity")
    hpa = kube_seeded.hpa()
    assert hpa is not None and hpa["spec"]["minReplicas"] > 2


# --- live load query bounded by the tick; forecast ConfigMap namespace ------------------------------------


def _prom_cfg(interval: str, **prom: Any) -> tuple[Any, dict[str, Any]]:
    from controller.config import ControllerConfig, LoadConfig, TargetConfig
    from forecaster.configbase import Duration
    from forecaster.durations import parse_duration

    cfg = ControllerConfig(
        capacity_per_replica=100.0,
        target=TargetConfig(name=TARGET, namespace="payments", mode="hpa"),
        load=LoadConfig(kind="prometheus", query="sum(rate(http_requests_total[1m]))"),
        interval=Duration(parse_duration(interval, what="interval").total_seconds()),
    )
    return cfg, {"source": {"prometheus": {"query": "up", **prom}}}


@pytest.mark.parametrize(
    ("interval", "prom"),
    [
        ("30s", {}),  # defaults: 30 s timeout, 3 retries, 1 s back-off
        (
            "30s",
            {"timeout": "2m", "connectTimeout": "1m", "retries": 10, "backoff": "20s", "maxBackoff": "1m"},
        ),
        ("9s", {"timeout": "1s", "retries": 0}),
        ("5m", {}),
    ],
    ids=["defaults", "generous-history-settings", "already-tight", "long-interval"],
)
def test_live_load_connection_is_bounded_inside_the_tick(interval: str, prom: dict[str, Any]) -> None:
    from controller.cli.run import build_load
    from forecaster.adapters.prometheus import PrometheusConfig
    from forecaster.configbase import parse

    cfg, raw = _prom_cfg(interval, url="http://127.0.0.1:9", **prom)
    source = build_load(cfg, raw, Path("."))
    pc = source.source.cfg  # type: ignore[attr-defined]
    tick = float(cfg.interval)
    assert pc.retries <= 1
    assert pc.connect_timeout + pc.timeout <= tick / 3 + 1e-9
    # a tick makes up to two instant queries (value and timestamp()), each with its retry
    worst = 2 * ((pc.retries + 1) * (pc.connect_timeout + pc.timeout) + pc.retries * pc.max_backoff)
    assert worst < tick
    configured = parse(PrometheusConfig, raw["source"]["prometheus"], "source.prometheus")
    assert pc.timeout <= configured.timeout and pc.connect_timeout <= configured.connect_timeout
    assert pc.retries <= configured.retries and pc.url == configured.url  # only ever tighter


def test_hung_prometheus_yields_missing_load_within_the_tick() -> None:
    """A Prometheus that accepts connections but never answers: the live query gives up inside the tick."""
    from controller.cli.run import build_load
    from forecaster.errors import SourceError

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cfg, raw = _prom_cfg("3s", url=f"http://127.0.0.1:{port}")
        load = build_load(cfg, raw, Path("."))
        started = time.monotonic()
        with pytest.raises(SourceError, match="timed out"):
            load.current(pd.Timestamp.now(tz="UTC"))
        assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    ("sa_namespace", "store_ns", "expected"),
    [
        ("autoscaling", None, "autoscaling"),  # in a pod: the pod's namespace, as the forecast job does
        (None, None, "default"),  # outside a pod: "default", as the job and the field's docs say
        ("autoscaling", "forecasts", "forecasts"),  # explicit namespace always wins
    ],
    ids=["pod-namespace", "no-pod-falls-back-to-default", "explicit"],
)
def test_forecast_configmap_namespace_default_matches_the_job(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sa_namespace: str | None,
    store_ns: str | None,
    expected: str,
) -> None:
    from kubernetes import client

    from controller.cli import run as runcli
    from controller.cli.job import build_store
    from controller.configfile import load_controller_config
    from forecaster.adapters import kube as kubeapi
    from forecaster.job.config import load_job_config

    sa_file = tmp_path / "namespace"
    if sa_namespace is not None:
        sa_file.write_text(sa_namespace + "\n")
    monkeypatch.setattr(kubeapi, "SERVICE_ACCOUNT_NAMESPACE", str(sa_file))
    ns_line = f", namespace: {store_ns}" if store_ns else ""
    (tmp_path / "config.yaml").write_text(f"""
store:
  kind: configmap
  configmap: {{name: recharge-autoscaler-forecast{ns_line}}}
controller:
  capacityPerReplica: 100
  target: {{name: {TARGET}, namespace: payments, mode: hpa}}
  load: {{kind: file, path: load.csv}}
""")
    path = str(tmp_path / "config.yaml")
    cfg = load_controller_config(path)
    loop = runcli.build_loop(argparse.Namespace(config=path, dry_run=False), cfg, client.ApiClient())
    assert loop.deps.store.describe().startswith(f"configmap {expected}/recharge-autoscaler-forecast ")
    # The forecast job resolves the same ConfigMap from the same section.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    job_cfg = tmp_path / "job.yaml"
    name = "{name: recharge-autoscaler-forecast"
    job_yaml = (tmp_path / "config.yaml").read_text().replace(name, f"{{kubeconfig: {kubeconfig}, {name[1:]}")
    job_cfg.write_text(job_yaml + "source: {kind: file, file: {path: h.csv}}\n")
    job_store = build_store(load_job_config(job_cfg))
    assert job_store.describe() == loop.deps.store.describe()


def test_live_load_timeout_message_names_the_real_timeout() -> None:
    """Issue 10, item 5: with a 2 s interval each attempt gets 0.2 s in all; the message said "after 0s"."""
    from controller.cli.run import build_load
    from forecaster.errors import SourceError

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cfg, raw = _prom_cfg("2s", url=f"http://127.0.0.1:{port}")
        load = build_load(cfg, raw, Path("."))
        per_attempt = load.source.cfg.timeout  # type: ignore[attr-defined]
        assert 0 < per_attempt < 1
        with pytest.raises(SourceError, match=rf"timed out after {per_attempt:g}s") as err:
            load.current(pd.Timestamp.now(tz="UTC"))
        assert "after 0s" not in str(err.value)


@pytest.mark.slow
def test_probes_listen_only_on_the_bind_address(kube_seeded: KubeTestbed, tmp_path: Path) -> None:
    """Issue 10, item 9: controller.bindAddress decides where /healthz, /readyz and /metrics listen."""
    from tests.controller.adapters.test_health import _outside_address

    outside = _outside_address()
    if outside is None:
        pytest.skip("no non-loopback interface to connect from")
    argv = write_inputs(tmp_path, kube_seeded, extra="  bindAddress: 127.0.0.1\n")
    text = (tmp_path / "config.yaml").read_text()
    health_port = int(next(ln.split()[-1] for ln in text.splitlines() if "healthPort" in ln))
    metrics_port = int(next(ln.split()[-1] for ln in text.splitlines() if "metricsPort" in ln))
    code = (
        "import argparse, sys\nfrom controller.cli.run import register\np = argparse.ArgumentParser()\n"
        "register(p.add_subparsers())\na = p.parse_args(sys.argv[1:])\nsys.exit(a.func(a))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=REPO, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                requests.get(f"http://127.0.0.1:{health_port}/healthz", timeout=1)
                requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200
        for port in (health_port, metrics_port):
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://{outside}:{port}/healthz", timeout=2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("which", ["healthPort", "metricsPort"])
def test_port_in_use_is_one_line_naming_the_port_and_setting(
    kube_seeded: KubeTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    """Issue 10, item 14: a port already in use ended in a raw OSError traceback."""
    from controller.cli import main

    argv = write_inputs(tmp_path, kube_seeded)
    text = (tmp_path / "config.yaml").read_text()
    port = int(next(ln.split()[-1] for ln in text.splitlines() if which in ln))
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", port))
        busy.listen(1)
        saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = main(argv)
        finally:
            for s, h in saved.items():
                signal.signal(s, h)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"controller.{which}" in err and str(port) in err and "in use" in err
