"""Probes and metrics over HTTP: liveness follows the heartbeat, readiness the last tick, metrics render."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests

from controller.adapters.health import ControllerMetrics, HealthServer, HealthState
from tests.support.tools import tool_path


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def served() -> Iterator[tuple[HealthState, ControllerMetrics, HealthServer, Clock]]:
    clock = Clock()
    state = HealthState(stale_after=90, clock=clock)
    metrics = ControllerMetrics()
    server = HealthServer(state, metrics, host="127.0.0.1", health_port=0, metrics_port=0).start()
    yield state, metrics, server, clock
    server.stop()


def get(port: int, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)


@pytest.mark.parametrize(
    ("beat_age", "code", "text"),
    [(None, 200, "starting"), (10, 200, "ok"), (91, 503, "has not ticked for 91s")],
    ids=["before-first-tick", "fresh", "wedged"],
)
def test_healthz_follows_heartbeat(
    served: tuple[HealthState, ControllerMetrics, HealthServer, Clock],
    beat_age: float | None,
    code: int,
    text: str,
) -> None:
    state, _, server, clock = served
    if beat_age is not None:
        state.heartbeat()
        clock.t += beat_age
    r = get(server.health_port, "/healthz?verbose")  # the reason: loopback only (terse otherwise)
    assert (r.status_code, text in r.text) == (code, True)


@pytest.mark.parametrize(
    ("ready", "reason", "code"),
    [
        (None, "no tick completed yet", 503),
        (True, "acted", 200),
        (False, "forbidden: the service account needs 'patch'", 503),
    ],
    ids=["initial", "ready", "api-error"],
)
def test_readyz_reports_last_tick(
    served: tuple[HealthState, ControllerMetrics, HealthServer, Clock],
    ready: bool | None,
    reason: str,
    code: int,
) -> None:
    state, _, server, _ = served
    if ready is not None:
        state.set_ready(ready, reason)
    r = get(server.health_port, "/readyz?verbose")  # the reason: loopback only (terse otherwise)
    assert r.status_code == code
    assert reason in r.text


def test_metrics_endpoint_renders_controller_metrics(
    served: tuple[HealthState, ControllerMetrics, HealthServer, Clock],
) -> None:
    _, m, server, _ = served
    m.desired_replicas.set(11)
    m.current_replicas.set(3)
    m.decisions.labels(reason="ForecastPeak").inc()
    m.errors.labels(kind="forbidden").inc(2)
    m.warmups.labels(result="ok").inc()
    m.forecast_age.set(120)
    r = get(server.metrics_port, "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    body = r.text
    for line in (
        "recharge_autoscaler_desired_replicas 11.0",
        "recharge_autoscaler_current_replicas 3.0",
        'recharge_autoscaler_decisions_total{reason="ForecastPeak"} 1.0',
        'recharge_autoscaler_errors_total{kind="forbidden"} 2.0',
        'recharge_autoscaler_warmups_total{result="ok"} 1.0',
        "recharge_autoscaler_forecast_age_seconds 120.0",
    ):
        assert line in body
    assert get(server.health_port, "/metrics").status_code == 404  # split ports: probes only on health port
    assert get(server.metrics_port, "/healthz").status_code == 404


def test_two_metric_sets_do_not_collide() -> None:
    a, b = ControllerMetrics(), ControllerMetrics()
    a.desired_replicas.set(1)
    b.desired_replicas.set(2)
    assert b"desired_replicas 1.0" in a.render() and b"desired_replicas 2.0" in b.render()


def test_shared_port_serves_everything() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = HealthServer(
        HealthState(), ControllerMetrics(), host="127.0.0.1", health_port=port, metrics_port=port
    ).start()
    try:
        assert server.ports == (port, port)
        assert get(port, "/healthz").status_code == 200
        assert get(port, "/metrics").status_code == 200
        assert get(port, "/nope").status_code == 404
    finally:
        server.stop()


@pytest.mark.parametrize(
    "outcome", ["acted", "unchanged", "dry_run", "paused", "follower", "failed"], ids=lambda o: o
)
def test_ticks_help_names_every_outcome(outcome: str) -> None:
    (family,) = [f for f in ControllerMetrics().registry.collect() if f.name.endswith("_ticks")]
    assert outcome in family.documentation


def _every_metric_set() -> ControllerMetrics:
    m = ControllerMetrics()
    for gauge in (m.desired_replicas, m.current_replicas, m.ready_replicas, m.hpa_floor, m.forecast_age,
                  m.observed_load, m.needed_replicas, m.forecast_backtest_wape, m.leader, m.last_tick,
                  m.dry_run):
        gauge.set(1)
    m.decisions.labels(reason="ForecastPeak").inc()
    m.scale_changes.labels(direction="up").inc()
    m.warmups.labels(result="ok").inc()
    m.errors.labels(kind="store").inc()
    m.ticks.labels(outcome="acted").inc()
    return m


@pytest.mark.skipif(tool_path("promtool") is None, reason="no promtool (scripts/install-test-tools.sh)")
def test_promtool_accepts_the_metrics() -> None:
    """``promtool check metrics`` lints names, units, types and help texts of the exposition."""
    res = subprocess.run([str(tool_path("promtool")), "check", "metrics"], input=_every_metric_set().render(),
                         capture_output=True, timeout=60, check=False)
    assert res.returncode == 0, (res.stdout + res.stderr).decode()


def test_gauges_of_a_quantity_name_their_unit() -> None:
    """A gauge of a rate or a time carries its unit in the name; counts (replicas, flags) need none."""
    names = {f.name for f in _every_metric_set().registry.collect() if f.type == "gauge"}
    assert "recharge_autoscaler_observed_load_requests_per_second" in names
    assert "recharge_autoscaler_forecast_age_seconds" in names
    assert not any(n.endswith("_observed_load") for n in names)  # the old, unit-less name is gone


# -- exposure (issue 10, item 9) ---------------------------------------------------------------------

SECRET_REASON = "forbidden: needs 'patch' on hpa; prometheus http://prom.internal:9090 query sum(rate(x[1m]))"


def _outside_address() -> str | None:
    """A non-loopback address of this machine, so a request arrives from 'outside' the pod."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else str(addr)


@pytest.mark.parametrize("ready", [True, False], ids=["degraded", "failed"])
def test_probe_bodies_are_a_status_word_unless_verbose_from_loopback(ready: bool) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("no non-loopback interface to send from")
    state = HealthState()
    state.heartbeat()
    word = "degraded" if ready else "failed"
    state.set_ready(ready, ("degraded: " if ready else "") + SECRET_REASON, status=word)
    server = HealthServer(state, ControllerMetrics(), host="0.0.0.0", health_port=0, metrics_port=0).start()
    try:
        port = server.health_port
        for path in ("/readyz", "/readyz?verbose"):
            r = requests.get(f"http://{outside}:{port}{path}", timeout=5)
            assert r.status_code == (200 if ready else 503)
            assert r.text == ("degraded\n" if ready else "failed\n"), r.text  # nothing internal
        assert requests.get(f"http://{outside}:{port}/healthz?verbose", timeout=5).text == "ok\n"
        local = requests.get(f"http://127.0.0.1:{port}/readyz?verbose", timeout=5)
        assert "prom.internal" in local.text and "needs 'patch'" in local.text  # port-forward: full story
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).text == f"{word}\n"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("ready", "reason", "word"),
    [(True, "follower", "follower"), (True, "3 scalers, 0 failed, 0 invalid", "ok"),
     (False, "caches not synced yet", "not_ready"),
     (False, "forbidden: needs 'get' on 'leases'", "not_ready")],
    ids=["one-word", "fleet-summary", "fleet-not-synced", "reason-only"],
)
def test_status_word_without_an_explicit_one(ready: bool, reason: str, word: str) -> None:
    """Callers that give only a reason (the fleet reconciler) still show one word to anyone."""
    state = HealthState()
    state.set_ready(ready, reason)
    assert state.status() == word


def test_a_busy_port_names_the_setting_of_its_caller() -> None:
    import socket

    from forecaster.errors import ConfigError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        server = HealthServer(HealthState(), ControllerMetrics(), host="127.0.0.1", health_port=port,
                              metrics_port=0, settings=("fleet.healthPort", "fleet.metricsPort"))
        match = rf"fleet.healthPort: cannot listen on 127.0.0.1:{port}: .*in use"
        with pytest.raises(ConfigError, match=match):
            server.start()


def test_scaler_ready_keeps_one_series_per_scaler_without_scanning_the_others() -> None:
    """A reason change replaces that scaler's series; other scalers' series are untouched; forget drops it.
    The fleet sets every scaler's series every tick, so set_ready must not walk every series (a
    1,000-scaler round was quadratic): iterating the metric's series fails the test."""
    m = ControllerMetrics(scope=("namespace", "scaler"))

    def series() -> dict[tuple[str, ...], float]:
        fam = next(f for f in m.registry.collect() if f.name == "recharge_autoscaler_scaler_ready")
        return {(s.labels["scaler"], s.labels["reason"]): s.value for s in fam.samples}

    for n in range(50):
        m.set_ready(True, "Reconciled", namespace="ns", scaler=f"s{n}")

    class NoScan(dict):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            raise AssertionError("set_ready scanned every series")

    m.scaler_ready._metrics = NoScan(m.scaler_ready._metrics)
    m.set_ready(False, "TargetNotFound", namespace="ns", scaler="s7")
    m.set_ready(False, "TargetNotFound", namespace="ns", scaler="s7")
    m.scaler_ready._metrics = dict(m.scaler_ready._metrics)
    got = series()
    assert got[("s7", "TargetNotFound")] == 0 and ("s7", "Reconciled") not in got
    assert len(got) == 50 and all(v == 1 for (s, _), v in got.items() if s != "s7")
    m.forget(namespace="ns", scaler="s7")
    m.set_ready(True, "Reconciled", namespace="ns", scaler="s7")  # back after a delete: one series again
    assert series()[("s7", "Reconciled")] == 1 and len(series()) == 50
