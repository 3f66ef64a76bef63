"""Chaos suite: the live loop under faulty Prometheus and API behaviours, restarts, clock jumps and a restart
during a peak (issue 10, "beyond the list").

Every scenario drives the real :class:`controller.loop.ControlLoop` tick by tick (fakes from
tests/controller/test_loop.py, loopback fault servers where the transport matters) and checks the same three
promises on every tick:

1. never fewer replicas than the observed need (capped by the ceiling);
2. never a scale-down while blind (live load missing or stale, no usable forecast, a partial forecast), nor
   within one scale-down stabilisation window after a (re)start;
3. the last good forecast kept: a failed forecast run leaves the stored forecast as it was, and the loop goes
   on deciding from it.

Slow (real sockets, many ticks), but run by ``make test``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from controller.config import ControllerConfig, TargetConfig
from controller.core.decision import Decision
from controller.loop import ControlLoop, MemoryStateStore
from controller.ports import ObservedLoad, TargetStatus
from forecaster.adapters.kube import KubeConflict, KubeForbidden, KubeUnavailable
from forecaster.artifact import ForecastArtifact, Interval
from forecaster.errors import SourceError, StoreError
from tests.controller.test_loop import NOW, FakeLock, FakeTarget, config, forecast, make

pytestmark = pytest.mark.slow

TICK = pd.Timedelta(seconds=30)
WINDOW = pd.Timedelta(seconds=300)  # the default scale-down stabilisation window
CAP = 100.0  # req/s per replica (tests.controller.test_loop.config)
BLIND = {"ObservedLoadMissing", "ObservedLoadStale", "NoForecast", "StaleForecast", "ForecastExhausted",
         "ForecastPartial"}


def need(rate: float, cfg: ControllerConfig) -> int:
    return min(math.ceil(rate * (1 + cfg.headroom) / CAP - 1e-9), cfg.ceiling)


class Killed(BaseException):
    """Stands in for kill -9: not an Exception, so the loop's own fault handling cannot catch it."""


@dataclass
class Record:
    at: pd.Timestamp
    current: int
    decision: Decision | None
    outcome: str
    observed: float | None
    restarted_at: pd.Timestamp


@dataclass
class Load:
    """A live load source whose value, errors and sample age follow a script keyed by tick number."""

    rate: Callable[[pd.Timestamp], float]
    faults: dict[int, Any] = field(default_factory=dict)  # tick -> exception, "nan", "negative", "stale"
    tick: int = 0
    last: float | None = None

    def describe(self) -> str:
        return "chaos load"

    def current(self, now: pd.Timestamp) -> ObservedLoad:
        fault = self.faults.get(self.tick)
        self.last = None
        if isinstance(fault, BaseException):
            raise fault
        value = self.rate(now)
        if fault == "nan":
            return ObservedLoad(float("nan"), now)
        if fault == "negative":
            return ObservedLoad(-value, now)
        if fault == "stale":
            return ObservedLoad(value, now - pd.Timedelta("10min"))
        self.last = value
        return ObservedLoad(value, now)


@dataclass
class Store:
    """A forecast store that can fail, return garbage or a stale artifact on scripted ticks."""

    artifact: ForecastArtifact | None
    faults: dict[int, Any] = field(default_factory=dict)
    tick: int = 0

    def describe(self) -> str:
        return "chaos store"

    def write(self, artifact: ForecastArtifact) -> None:
        self.artifact = artifact

    def read(self) -> ForecastArtifact | None:
        fault = self.faults.get(self.tick)
        if isinstance(fault, BaseException):
            raise fault
        if fault == "none":
            return None
        return self.artifact


class ChaosTarget(FakeTarget):
    """FakeTarget with scripted API faults per tick: on status, on apply, or a kill right after apply."""

    def __init__(self, replicas: int, hpa: bool) -> None:
        super().__init__(replicas=replicas, floor=replicas if hpa else None)
        self.faults: dict[int, tuple[str, BaseException]] = {}
        self.tick = 0

    def status(self) -> TargetStatus:
        where, exc = self.faults.get(self.tick, ("", None))  # type: ignore[arg-type]
        if where == "status" and exc is not None:
            raise exc
        return super().status()

    def apply(self, replicas: int, annotation: str) -> None:
        where, exc = self.faults.get(self.tick, ("", None))  # type: ignore[arg-type]
        if where == "apply" and exc is not None:
            raise exc
        super().apply(replicas, annotation)
        if where == "kill-after-apply":
            raise Killed()

    @property
    def count(self) -> int:
        return self.st.floor if self.st.floor is not None else self.st.replicas


@dataclass
class Chaos:
    """Runs a scenario and checks the promises on every tick."""

    cfg: ControllerConfig
    load: Load
    store: Store
    target: ChaosTarget
    clock: Callable[[int], pd.Timestamp] = lambda k: NOW + k * TICK
    restarts: set[int] = field(default_factory=set)  # ticks before which the controller restarts
    lose_state_on_restart: bool = False
    lease_lost: set[int] = field(default_factory=set)
    records: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state_store = MemoryStateStore()
        self.lock = FakeLock()
        self.loop = self._new_loop()
        self.k = 0  # the next tick
        self.restarted_at = self.clock(0)

    def _new_loop(self) -> ControlLoop:
        lp, _, _ = make(
            self.store, 0.0, self.target, cfg=self.cfg, lock=self.lock, state_store=self.state_store
        )
        lp.deps.load, lp.deps.store = self.load, self.store
        return lp

    def run(self, ticks: int, events: dict[int, Callable[[Chaos], None]] | None = None) -> Chaos:
        """``ticks`` more ticks; ``events[k]`` runs before tick k (change the forecast, the load ...)."""
        for k in range(self.k, self.k + ticks):
            now = self.clock(k)
            if events and k in events:
                events[k](self)
            if k in self.restarts:
                if self.lose_state_on_restart:
                    self.state_store.state = None
                self.loop = self._new_loop()
                self.restarted_at = now
            self.lock.leader = k not in self.lease_lost
            for part in (self.load, self.store, self.target):
                part.tick = k
            current = self.target.count
            try:
                result = self.loop.tick(now)
            except Killed:  # kill -9 right after the target was written, before the state was saved
                self.records.append(Record(now, current, None, "killed", None, self.restarted_at))
                self.loop = self._new_loop()
                self.restarted_at = self.clock(k + 1)
                continue
            if result.outcome == "follower":
                self.restarted_at = self.clock(k + 1)  # it reloads its memory when it leads again
            self.records.append(
                Record(now, current, result.decision, result.outcome, self.load.last, self.restarted_at)
            )
        self.k += ticks
        return self

    def check(self) -> Chaos:
        cfg = self.cfg
        for r in self.records:
            d = r.decision
            if d is None or r.outcome in ("failed", "follower"):
                continue
            where = f"{r.at} ({r.outcome}): {d.explain()}"
            if r.observed is not None:  # 1. never fewer replicas than the observed need
                assert d.replicas >= need(r.observed, cfg), where
            blind = {s.reason for s in d.steps} & BLIND
            if blind:  # 2a. never a scale-down while blind
                assert d.replicas >= min(r.current, cfg.ceiling), where
            if r.at < r.restarted_at + WINDOW:  # 2b. never within the window after a (re)start
                assert d.replicas >= min(r.current, cfg.ceiling), where
        return self

    def replicas(self) -> list[int]:
        return [r.decision.replicas if r.decision else -1 for r in self.records]


def long_forecast(peak: float, *, hours: int = 72, created: pd.Timestamp | None = None) -> ForecastArtifact:
    """A flat hourly forecast over ``hours`` from an hour before NOW (yhat 0.6, band 0.5..0.8, peak_upper 1.0
    of ``peak``)."""
    step = pd.Timedelta("1h")
    start = NOW - step
    created = NOW - pd.Timedelta("10min") if created is None else created
    ivs = tuple(Interval(start + i * step, peak * 0.6, peak * 0.5, peak * 0.8, peak) for i in range(hours))
    return dataclasses.replace(forecast(peak, created=created), intervals=ivs, horizon_seconds=hours * 3600,
                               history_end=start)


def steady(rate: float) -> Callable[[pd.Timestamp], float]:
    return lambda now: rate


def chaos(*, replicas: int = 20, peak: float = 900.0, rate: float = 600.0, mode: str = "hpa",
          **kw: Any) -> Chaos:
    cfg = config(max_replicas=60, target=TargetConfig(name="recharge", namespace="payments", mode=mode))
    load = kw.pop("load", Load(steady(rate)))
    store = kw.pop("store", Store(forecast(peak)))
    return Chaos(cfg, load, store, ChaosTarget(replicas, mode == "hpa"), **kw)


MODES = pytest.mark.parametrize("mode", ["hpa", "scale"])


# -- faulty Prometheus ------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    "fault",
    [SourceError("HTTP 503 (gave up after 2 attempts)"), SourceError("timed out after 6s"), "nan", "negative",
     "stale", SourceError("returned 3 series where one is expected")],
    ids=["5xx", "timeout", "nan", "negative", "stale", "many-series"],
)
def test_faulty_prometheus_never_lets_the_count_fall(mode: str, fault: Any) -> None:
    """Forecast low (needs 10), live load fine, then Prometheus breaks for 20 ticks from tick 15."""
    c = chaos(replicas=30, peak=900.0, rate=500.0, mode=mode)
    c.load.faults = dict.fromkeys(range(15, 35), fault)
    c.run(45).check()
    during = c.replicas()[15:35]
    assert min(during) >= c.records[15].current  # frozen while blind
    assert c.replicas()[-1] < 30  # and it does scale down again once the data is back


@MODES
def test_a_dripping_prometheus_leaves_the_tick_on_time_and_blind(mode: str) -> None:
    """The real live-load connection against a server that sends a byte every 0.3 s."""
    from controller.adapters.liveload import PrometheusLoad
    from controller.cli.run import live_load_connection
    from forecaster.adapters.prometheus import PrometheusSource
    from forecaster.adapters.prometheus_config import PrometheusConfig
    from tests.support.faultserver import drip, fault_server

    with fault_server(drip(0.3)) as srv:
        pcfg = live_load_connection(PrometheusConfig(url=srv.url, query="q"), interval=5.0)
        source = PrometheusLoad(PrometheusSource(pcfg), "sum(rate(x[1m]))")
        c = chaos(replicas=30, peak=500.0, mode=mode)
        c.loop.deps.load = source
        c.load = Load(steady(0.0))
        t0 = time.monotonic()
        result = c.loop.tick(NOW)
        took = time.monotonic() - t0
    assert took < 0.9 * 5.0, took  # inside the 5 s tick
    assert result.decision is not None and result.decision.replicas >= 30
    assert "ObservedLoadMissing" in {s.reason for s in result.decision.steps}


# -- faulty API server ------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    ("where", "exc"),
    [("status", KubeUnavailable("get: HTTP 503 after 4 attempts")),
     ("apply", KubeConflict("patch: conflict (6 attempts)")),
     ("apply", KubeForbidden("forbidden: needs 'patch'")),
     ("status", KubeUnavailable("get: ReadTimeoutError after 4 attempts"))],
    ids=["status-5xx", "apply-409", "apply-403", "status-timeout"],
)
def test_api_faults_change_nothing_and_recover(mode: str, where: str, exc: Exception) -> None:
    """The forecast asks for 36 from 20; the API fails for the first 10 ticks."""
    c = chaos(replicas=20, peak=3600.0, rate=1500.0, mode=mode)
    c.target.faults = {k: (where, exc) for k in range(10)}
    c.run(20).check()
    assert [r.outcome for r in c.records[:10]] == ["failed"] * 10
    assert c.target.applied == [] or min(n for n, _ in c.target.applied) >= 20
    assert c.target.count >= 36  # climbed once the API was back


# -- restarts ---------------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("lose_state", [False, True], ids=["state-kept", "state-lost"])
def test_restarts_never_scale_down_within_the_window(mode: str, lose_state: bool) -> None:
    """The forecast drops (needs 10 of 30) just as the controller restarts, three times."""
    c = chaos(replicas=30, peak=900.0, rate=300.0, mode=mode, restarts={5, 20, 28},
              lose_state_on_restart=lose_state)
    c.run(50).check()
    assert c.replicas()[-1] < 30


@MODES
def test_a_kill_between_apply_and_saving_the_state_holds_after_restart(mode: str) -> None:
    """kill -9 right after the target was written, before the state was saved: the new process has only the
    older state, and still holds the count it finds for a full window."""
    c = chaos(replicas=10, peak=3000.0, rate=800.0, mode=mode)
    c.target.faults = {4: ("kill-after-apply", Killed())}

    def fall(c: Chaos) -> None:  # the forecast and the load fall right after the kill
        c.store.artifact = forecast(600.0)
        c.load.rate = steady(300.0)

    c.run(30, events={5: fall}).check()
    top = c.records[5].current
    assert top > 10  # the write before the kill landed
    assert min(c.replicas()[5:14]) >= top  # held for the window after the restart
    assert c.replicas()[-1] < top  # then it scales down


@MODES
def test_lost_lease_and_back_holds_for_a_window(mode: str) -> None:
    """Another replica led for 3 minutes; coming back, this one holds the count it finds for a window."""
    c = chaos(replicas=30, peak=900.0, rate=300.0, mode=mode, lease_lost=set(range(2, 8)))
    c.run(30).check()
    assert [r.outcome for r in c.records[2:8]] == ["follower"] * 6
    assert min(c.replicas()[8:17]) >= 30
    assert c.replicas()[-1] < 30


@MODES
def test_a_restart_during_a_peak(mode: str) -> None:
    """The live peak needs 44 replicas while the forecast says 25 and the state is lost in a restart: the
    count never falls below the live need, nor below what it was, for a window after the restart."""
    peak_until = NOW + 20 * TICK

    def live(now: pd.Timestamp) -> float:
        return 4000.0 if now < peak_until else 1200.0

    c = chaos(replicas=30, peak=2500.0, mode=mode, load=Load(live), restarts={10},
              lose_state_on_restart=True)
    c.run(40).check()
    reps = c.replicas()
    assert min(reps[3:20]) >= 44  # the observed floor, restart or not
    assert min(reps[20:29]) >= 44  # after the peak: held by the stabilisation window, not dropped at once
    assert reps[-1] < 44


# -- clock jumps ------------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("jump", ["+1h", "-1h", "+1d", "-10min"])
def test_clock_jumps_break_no_promise(mode: str, jump: str) -> None:
    """The wall clock jumps at tick 12 (NTP step, VM resume): the promises hold, and a forecast rise after
    the jump still gets its replicas (memory dated in the 'future' must not freeze scale-ups)."""
    shift = pd.Timedelta(jump.lstrip("+"))
    c = chaos(replicas=10, mode=mode, store=Store(long_forecast(900.0)), load=Load(steady(300.0)),
              clock=lambda k: NOW + k * TICK + (shift if k >= 12 else pd.Timedelta(0)))

    def rise(c: Chaos) -> None:
        c.store.artifact = long_forecast(3600.0, created=c.clock(c.k) - pd.Timedelta("5min"))

    c.run(30).check()
    c.run(8, events={30: rise}).check()
    assert c.target.count >= 36, c.replicas()[-8:]  # 3600 req/s at 100 each: the climb is not frozen


# -- the forecast job under faults: the last good forecast is kept ----------------------------------------


def test_failed_forecast_runs_keep_the_last_good_forecast_and_the_loop_on_it(tmp_path: Path) -> None:
    from forecaster.adapters.prometheus import PrometheusSource
    from forecaster.adapters.prometheus_config import PrometheusConfig
    from forecaster.adapters.store import FileStore
    from forecaster.job.config import ScheduleConfig
    from forecaster.job.runner import ForecastJobError, run_once
    from tests.forecaster.job.test_runner import FakeSource, synthetic
    from tests.forecaster.job.test_runner import config as job_config
    from tests.support.faultserver import drip, fault_server, reply

    store = FileStore(tmp_path / "forecast.json")
    cfg = job_config(tmp_path)
    run_once(cfg, FakeSource(synthetic(NOW)), store, now=NOW)
    good = store.path.read_bytes()
    cfg = cfg.model_copy(update={"schedule": ScheduleConfig(run_timeout=3)})
    behaviours = [drip(0.5), lambda req, sock: reply(sock, 503, "overloaded"),
                  lambda req, sock: reply(sock, 200, {"status": "success", "data": {"resultType": "matrix",
                                                                                   "result": []}}),
                  lambda req, sock: reply(sock, 200, "<html>login</html>")]
    for behaviour in behaviours:
        with fault_server(behaviour) as srv:
            pcfg = PrometheusConfig(url=srv.url, query="q", step=1800, retries=1, timeout=1, backoff=0.1)
            with pytest.raises((SourceError, StoreError, ForecastJobError)):
                run_once(cfg, PrometheusSource(pcfg), store, now=NOW + pd.Timedelta("30min"))
        assert store.path.read_bytes() == good  # untouched by every failed run
    # the controller goes on deciding predictively from the last good forecast
    art = store.read()
    assert art is not None
    start = art.intervals[0].ds + pd.Timedelta("10min")
    c = chaos(replicas=5, mode="hpa", store=Store(art), load=Load(steady(200.0)),
              clock=lambda k: start + k * TICK)
    c.run(5).check()
    assert all(r.decision is not None and r.decision.mode == "predictive" for r in c.records)


# -- the real wiring against the real API server (through the fault proxy): each `run --once` is a restart


@pytest.mark.parametrize("mode", ["hpa", "scale"])
def test_once_runs_against_a_faulty_api_server_never_scale_down(
    kube_seeded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """Each `run --once` is a fresh process: it finds the count, faces API faults, and never scales down."""
    from tests.controller.cli.test_run import run_cli, write_inputs

    def count() -> int:
        if mode == "hpa":
            hpa = kube_seeded.hpa()
            return int(hpa["spec"]["minReplicas"])
        return int(kube_seeded.deployment()["spec"]["replicas"])

    proxy = kube_seeded.proxy
    assert run_cli([*write_inputs(tmp_path, kube_seeded, mode=mode, peak=1500.0, proxy=True), "--once"]) == 0
    high = count()
    assert high > 3
    path = "/horizontalpodautoscalers/" if mode == "hpa" else "/deployments/"
    steps = [
        (lambda: proxy.fail(503, count=8, method="PATCH", path=path), 3),  # 5xx on apply
        (lambda: proxy.fail(409, count=8, method="PATCH", path=path), 3),  # conflicts on apply
        (lambda: proxy.slow(1.0, count=2, method="GET"), 0),  # a slow API server
        (lambda: None, 0),  # no fault at all: a restart with a low forecast
    ]
    for inject, code in steps:
        argv = write_inputs(tmp_path, kube_seeded, mode=mode, peak=100.0, proxy=True)  # the forecast falls
        inject()
        assert run_cli([*argv, "--once"]) == code, capsys.readouterr().out
        proxy.clear()
        assert count() >= high  # unchanged by a failure, held after a restart
