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

The probes are unauthenticated, so their bodies are one status word (``acted``, ``degraded``, ``failed``,
``ok``, ``stale``, ...): the reasons name internal URLs, the PromQL and RBAC gaps (issue 10, item 9). The
reasons above are shown, redacted, only with ``?verbose`` to a client on the loopback interface, which is
where ``kubectl port-forward`` connects from. The servers listen on ``controller.bindAddress``.

Probes and metrics can share one port or use two (``healthPort`` / ``metricsPort``).
"""

from __future__ import annotations

import errno
import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from forecaster.errors import ConfigError
from forecaster.redact import redact

PREFIX = "recharge_autoscaler"


class ControllerMetrics:
    """Prometheus metrics of the live loop, in their own registry.

    ``scope`` names labels that every metric carries in front of its own, e.g. ``("namespace", "scaler")``
    for the fleet, where one registry holds every scaler's series; :meth:`view` then gives one scaler's
    loop an object with the same attributes, bound to that scaler's label values.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, scope: Sequence[str] = ()) -> None:
        self.registry = registry or CollectorRegistry()
        self.scope = tuple(scope)
        r, s = self.registry, list(self.scope)
        self.desired_replicas = Gauge(
            f"{PREFIX}_desired_replicas", "Replicas the last decision asked for.", s, registry=r
        )
        self.current_replicas = Gauge(
            f"{PREFIX}_current_replicas", "Replicas the target had at the last tick.", s, registry=r
        )
        self.ready_replicas = Gauge(
            f"{PREFIX}_ready_replicas", "Ready replicas of the target at the last tick.", s, registry=r
        )
        self.hpa_floor = Gauge(
            f"{PREFIX}_hpa_min_replicas", "HPA minReplicas at the last tick (hpa mode).", s, registry=r
        )
        self.forecast_age = Gauge(
            f"{PREFIX}_forecast_age_seconds",
            "Age of the forecast used by the last decision (NaN when none).",
            s,
            registry=r,
        )
        self.observed_load = Gauge(
            f"{PREFIX}_observed_load_requests_per_second",
            "Live request rate at the last successful read.",
            s,
            registry=r,
        )
        self.needed_replicas = Gauge(
            f"{PREFIX}_needed_replicas",
            "Replicas the live load needs now (observed rate x (1 + headroom) / capacityPerReplica); "
            "NaN while the load is missing or stale.",
            s,
            registry=r,
        )
        self.forecast_backtest_wape = Gauge(
            f"{PREFIX}_forecast_backtest_wape",
            "Backtest WAPE (0..1) of the forecast used by the last decision, from its artifact; NaN when "
            "there is no forecast or it carries no backtest.",
            s,
            registry=r,
        )
        self.scaler_ready = Gauge(
            f"{PREFIX}_scaler_ready",
            "1 when the scaler's Ready condition is True, else 0; reason is the condition's reason "
            "(fleet only: one series per scaler).",
            [*s, "reason"],
            registry=r,
        )
        self._ready_reason: dict[tuple[str, ...], str] = {}  # member -> the reason of its scaler_ready series
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
            f"{PREFIX}_last_tick_timestamp_seconds", "Unix time of the last completed tick.", s, registry=r
        )
        self.decisions = Counter(f"{PREFIX}_decisions", "Decisions by reason.", [*s, "reason"], registry=r)
        self.scale_changes = Counter(
            f"{PREFIX}_scale_changes", "Applied changes of replicas, by direction.", [*s, "direction"],
            registry=r,
        )
        self.warmups = Counter(f"{PREFIX}_warmups", "Warm-up calls by result.", [*s, "result"], registry=r)
        self.errors = Counter(
            f"{PREFIX}_errors", "Faults by kind (api, forbidden, store, metrics, ...).", [*s, "kind"],
            registry=r,
        )
        self.ticks = Counter(
            f"{PREFIX}_ticks",
            "Loop ticks by outcome (acted, unchanged, dry_run, paused, follower, failed).",
            [*s, "outcome"],
            registry=r,
        )

    def view(self, **labels: str) -> Any:
        """The metrics of one member of the scope (e.g. one scaler), with the attributes the loop uses."""
        if set(labels) != set(self.scope):
            raise ValueError(f"view needs exactly the labels {self.scope}, got {sorted(labels)}")
        out = _View()
        for name in _SCOPED:
            setattr(out, name, _Bound(getattr(self, name), labels))
        # One lease and one mode for the whole process: their owner sets these gauges, not a member.
        out.leader = _Ignored()
        out.dry_run = _Ignored()
        return out

    def set_ready(self, ready: bool, reason: str, **labels: str) -> None:
        """Set one member's ``scaler_ready`` series, dropping its series of any other reason.

        The fleet calls this for every scaler on every tick, so the member's current reason is remembered
        instead of found by a scan of every series (that scan made a 1,000-scaler round quadratic:
        docs/benchmarks.md, "Fleet controller")."""
        values = tuple(labels[k] for k in self.scope)
        old = self._ready_reason.get(values)
        if old is not None and old != reason:
            self.scaler_ready.remove(*values, old)
        self._ready_reason[values] = reason
        self.scaler_ready.labels(**labels, reason=reason).set(1 if ready else 0)

    def forget(self, **labels: str) -> None:
        """Drop every series of one member of the scope (a deleted scaler), so cardinality stays bounded."""
        values = tuple(labels[k] for k in self.scope)
        self._ready_reason.pop(values, None)
        for name in (*_SCOPED, "scaler_ready"):
            metric = getattr(self, name)
            for sample_labels in list(metric._metrics):
                if sample_labels[: len(values)] == values:
                    metric.remove(*sample_labels)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_SCOPED = (
    "desired_replicas", "current_replicas", "ready_replicas", "hpa_floor", "forecast_age", "observed_load",
    "needed_replicas", "forecast_backtest_wape", "last_tick", "decisions", "scale_changes", "warmups",
    "errors", "ticks",
)


class _View:
    """One scope member's metrics (see :meth:`ControllerMetrics.view`)."""

    leader: Any
    dry_run: Any


class _Ignored:
    """A gauge stand-in whose writes go nowhere."""

    def set(self, value: float) -> None:
        pass


class _Bound:
    """A labelled metric with the scope's label values filled in: ``.set()``/``.inc()``/``.labels(...)``."""

    __slots__ = ("_labels", "_metric")

    def __init__(self, metric: Any, labels: dict[str, str]) -> None:
        self._metric, self._labels = metric, labels

    def labels(self, **more: str) -> Any:
        return self._metric.labels(**self._labels, **more)

    def set(self, value: float) -> None:
        self._metric.labels(**self._labels).set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._metric.labels(**self._labels).inc(amount)


class HealthState:
    """Liveness and readiness as the loop reports them; thread-safe."""

    def __init__(self, *, stale_after: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self._lock = threading.Lock()
        self._beat: float | None = None
        self._ready = False
        self._reason = "no tick completed yet"
        self._status = "starting"

    def heartbeat(self) -> None:
        with self._lock:
            self._beat = self.clock()

    def set_ready(self, ready: bool, reason: str = "", *, status: str | None = None) -> None:
        """Readiness with its full ``reason`` (verbose view) and a one-word ``status`` (everyone else)."""
        with self._lock:
            self._ready, self._reason = ready, reason or ("ok" if ready else "not ready")
            single = self._reason.replace("_", "").isalpha()  # already one word: acted, follower, ...
            self._status = status or (self._reason if single else "ok" if ready else "not_ready")

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

    def status(self) -> str:
        """The one-word readiness status shown to any client."""
        with self._lock:
            return self._status


def verbose_allowed(client_address: str) -> bool:
    """Only a client on the loopback interface (``kubectl port-forward``, a shell in the pod) sees reasons."""
    try:
        addr = ipaddress.ip_address(client_address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


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
        path, _, query = self.path.partition("?")
        verbose = "verbose" in query.split("&") and verbose_allowed(str(self.client_address[0]))
        if path in ("/healthz", "/livez") and self.state is not None:
            ok, why = self.state.live()
            word = why if why in ("ok", "starting") else "stale"
            self._send(200 if ok else 503, f"{redact(why) if verbose else word}\n".encode())
        elif path == "/readyz" and self.state is not None:
            ok, why = self.state.ready()
            self._send(200 if ok else 503, f"{redact(why) if verbose else self.state.status()}\n".encode())
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
        settings: tuple[str, str] = ("controller.healthPort", "controller.metricsPort"),
    ) -> None:
        self.state, self.metrics, self.host = state, metrics, host
        self.health_port, self.metrics_port = health_port, metrics_port
        self.settings = settings  # what an error about each port names
        self._servers: list[ThreadingHTTPServer] = []

    def _serve(
        self, port: int, state: HealthState | None, metrics: ControllerMetrics | None, setting: str
    ) -> int:
        handler = type("Handler", (_Handler,), {"state": state, "metrics": metrics})
        try:
            httpd = ThreadingHTTPServer((self.host, port), handler)
        except OSError as exc:
            self.stop()  # a server already started for the other port
            why = "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise ConfigError(
                f"{setting}: cannot listen on {self.host}:{port}: {why}; stop what holds it or set {setting} "
                "to a free port"
            ) from None
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, args=(0.1,), name=f"http-{port}", daemon=True).start()
        self._servers.append(httpd)
        return int(httpd.server_address[1])

    def start(self) -> HealthServer:
        """Bind and serve in background threads; ports 0 pick free ports (see :attr:`ports`)."""
        h, m = self.settings
        if self.health_port == self.metrics_port and self.health_port != 0:
            port = self._serve(self.health_port, self.state, self.metrics, f"{h}/{m}")
            self.health_port = self.metrics_port = port
        else:
            self.health_port = self._serve(self.health_port, self.state, None, h)
            self.metrics_port = self._serve(self.metrics_port, None, self.metrics, m)
        return self

    @property
    def ports(self) -> tuple[int, int]:
        return self.health_port, self.metrics_port

    def stop(self) -> None:
        for httpd in self._servers:
            httpd.shutdown()
            httpd.server_close()
        self._servers.clear()
