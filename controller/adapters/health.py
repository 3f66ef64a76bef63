"""The controller's probes and metrics: ``/healthz``, ``/readyz`` and ``/metrics`` over HTTP.

Kubernetes restarts a pod whose liveness probe fails and stops routing to one whose readiness probe fails; an
SRE's dashboards and alerts read ``/metrics``. So:

- ``/healthz`` is 200 while the control loop is alive (it ticked within ``stale_after`` seconds), 503 when
  it is wedged - a restart is the right fix for that and for nothing else;
- ``/readyz`` tells operators whether this controller can act right now. 503 with the reason when the last
  tick could not act: an API server error on the target or the Lease, or an internal error. 200 otherwise:
  the body is the tick's outcome (``acted``, ``unchanged``, ``dry_run``, ``paused``, ``follower``), or
  ``degraded: <kind>: <fault>`` when the tick acted despite a fault (forecast store, live load metrics,
  state ConfigMap) - those faults already steer decide() to the safe side, so they do not fail readiness;
- ``/metrics`` exposes desired vs current replicas, the decision reasons, warm-ups, forecast age and errors
  by kind, from a private registry (no global state, several instances per process in tests). Names carry
  their unit (``_seconds``, ``_requests_per_second``) and pass ``promtool check metrics``.

Probes and metrics can share one port or use two (``healthPort`` / ``metricsPort``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

PREFIX = "recharge_autoscaler"


class ControllerMetrics:
    """Prometheus metrics of the live loop, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.desired_replicas = Gauge(
            f"{PREFIX}_desired_replicas", "Replicas the last decision asked for.", registry=r
        )
        self.current_replicas = Gauge(
            f"{PREFIX}_current_replicas", "Replicas the target had at the last tick.", registry=r
        )
        self.ready_replicas = Gauge(
            f"{PREFIX}_ready_replicas", "Ready replicas of the target at the last tick.", registry=r
        )
        self.hpa_floor = Gauge(
            f"{PREFIX}_hpa_min_replicas", "HPA minReplicas at the last tick (hpa mode).", registry=r
        )
        self.forecast_age = Gauge(
            f"{PREFIX}_forecast_age_seconds",
            "Age of the forecast used by the last decision (NaN when none).",
            registry=r,
        )
        self.observed_load = Gauge(
            f"{PREFIX}_observed_load_requests_per_second",
            "Live request rate at the last successful read.",
            registry=r,
        )
        self.leader = Gauge(
            f"{PREFIX}_leader",
            "1 when this replica acts as the leader (holds the Lease, or leader election is off); "
            "0 for a follower and in a dry run (no Lease is taken).",
            registry=r,
        )
        self.dry_run = Gauge(
            f"{PREFIX}_dry_run", "1 when this controller runs dry (decides, changes nothing).", registry=r
        )
        self.last_tick = Gauge(
            f"{PREFIX}_last_tick_timestamp_seconds", "Unix time of the last completed tick.", registry=r
        )
        self.decisions = Counter(f"{PREFIX}_decisions", "Decisions by reason.", ["reason"], registry=r)
        self.scale_changes = Counter(
            f"{PREFIX}_scale_changes", "Applied changes of replicas, by direction.", ["direction"], registry=r
        )
        self.warmups = Counter(f"{PREFIX}_warmups", "Warm-up calls by result.", ["result"], registry=r)
        self.errors = Counter(
            f"{PREFIX}_errors", "Faults by kind (api, forbidden, store, metrics, ...).", ["kind"], registry=r
        )
        self.ticks = Counter(
            f"{PREFIX}_ticks",
            "Loop ticks by outcome (acted, unchanged, dry_run, paused, follower, failed).",
            ["outcome"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthState:
    """Liveness and readiness as the loop reports them; thread-safe."""

    def __init__(self, *, stale_after: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self._lock = threading.Lock()
        self._beat: float | None = None
        self._ready = False
        self._reason = "no tick completed yet"

    def heartbeat(self) -> None:
        with self._lock:
            self._beat = self.clock()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        with self._lock:
            self._ready, self._reason = ready, reason or ("ok" if ready else "not ready")

    def live(self) -> tuple[bool, str]:
        with self._lock:
            if self._beat is None:
                return True, "starting"
            age = self.clock() - self._beat
            if age > self.stale_after:
                return False, f"control loop has not ticked for {age:.0f}s (limit {self.stale_after:.0f}s)"
            return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, self._reason


class _Handler(BaseHTTPRequestHandler):
    state: HealthState | None
    metrics: ControllerMetrics | None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/healthz", "/livez") and self.state is not None:
            ok, why = self.state.live()
            self._send(200 if ok else 503, f"{why}\n".encode())
        elif path == "/readyz" and self.state is not None:
            ok, why = self.state.ready()
            self._send(200 if ok else 503, f"{why}\n".encode())
        elif path == "/metrics" and self.metrics is not None:
            self._send(200, self.metrics.render(), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b"not found\n")

    do_HEAD = do_GET


class HealthServer:
    """Serves probes on ``health_port``, metrics on ``metrics_port`` (one server if the ports are equal)."""

    def __init__(
        self,
        state: HealthState,
        metrics: ControllerMetrics,
        *,
        host: str = "0.0.0.0",
        health_port: int = 8080,
        metrics_port: int = 9090,
    ) -> None:
        self.state, self.metrics, self.host = state, metrics, host
        self.health_port, self.metrics_port = health_port, metrics_port
        self._servers: list[ThreadingHTTPServer] = []

    def _serve(self, port: int, state: HealthState | None, metrics: ControllerMetrics | None) -> int:
        handler = type("Handler", (_Handler,), {"state": state, "metrics": metrics})
        httpd = ThreadingHTTPServer((self.host, port), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, args=(0.1,), name=f"http-{port}", daemon=True).start()
        self._servers.append(httpd)
        return int(httpd.server_address[1])

    def start(self) -> HealthServer:
        """Bind and serve in background threads; ports 0 pick free ports (see :attr:`ports`)."""
        if self.health_port == self.metrics_port and self.health_port != 0:
            self.health_port = self.metrics_port = self._serve(self.health_port, self.state, self.metrics)
        else:
            self.health_port = self._serve(self.health_port, self.state, None)
            self.metrics_port = self._serve(self.metrics_port, None, self.metrics)
        return self

    @property
    def ports(self) -> tuple[int, int]:
        return self.health_port, self.metrics_port

    def stop(self) -> None:
        for httpd in self._servers:
            httpd.shutdown()
            httpd.server_close()
        self._servers.clear()
