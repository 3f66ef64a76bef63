"""The forecast job: one cycle end to end, the last good forecast surviving every failure, the scheduler."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from apscheduler.triggers.interval import IntervalTrigger

from forecaster.adapters.prometheus import PrometheusSource
from forecaster.adapters.store import FileStore
from forecaster.artifact import ForecastArtifact, Interval
from forecaster.errors import SourceError, StoreError
from forecaster.job.config import JobConfig, ScheduleConfig, parse_job_config
from forecaster.job.metrics import JobMetrics
from forecaster.job.runner import ForecastJobError, JobRun, ScheduledJob, run_once
from tests.support.promserver import PromServer, prometheus_server  # noqa: F401

NOW = pd.Timestamp("2026-11-26T10:00:00Z")
STEP = pd.Timedelta(minutes=30)


def synthetic(end: pd.Timestamp, days: int = 21) -> pd.Series:
    """A daily-seasonal request rate at 30-minute resolution ending at ``end`` (inclusive)."""
    index = pd.date_range(end=end, periods=days * 48, freq=STEP, name="ds")
    hours = index.hour + index.minute / 60
    values = 200 + 120 * np.sin(2 * np.pi * (hours - 6) / 24) + 10 * (index.day_of_week >= 5)
    return pd.Series(values, index=index, name="y", dtype=float)


class FakeSource:
    """A live source (like Prometheus) over a fixed series; optionally failing."""

    def __init__(self, data: pd.Series, error: Exception | None = None) -> None:
        self.data = data
        self.error = error
        self.calls: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def describe(self) -> str:
        return "fake synthetic"

    def history(self, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta | None) -> pd.Series:
        self.calls.append((start, end))
        if self.error is not None:
            raise self.error
        return self.data[(self.data.index >= start) & (self.data.index <= end)]


def config(tmp_path: Path, **forecast: Any) -> JobConfig:
    data = {
        "source": {"kind": "file", "file": {"path": "unused.csv"}},
        "store": {"kind": "file", "file": {"path": "forecast.json"}},
        "forecast": {
            "horizon": "6h",
            "interval": "1h",
            "history": "14d",
            "model": "seasonal_median",
            **forecast,
        },
    }
    return parse_job_config(data, base_dir=tmp_path, environ={})


@pytest.fixture
def good(tmp_path: Path) -> tuple[FileStore, bytes]:
    """A store that already holds a good forecast (written by a successful run)."""
    store = FileStore(tmp_path / "forecast.json")
    run_once(config(tmp_path), FakeSource(synthetic(NOW)), store, now=NOW)
    return store, store.path.read_bytes()


def test_cycle_writes_what_the_store_reads_back(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "forecast.json")
    source = FakeSource(synthetic(NOW))
    run = run_once(config(tmp_path), source, store, now=NOW)
    assert store.read() == run.artifact
    art = run.artifact
    assert art.created_at == NOW and art.source == "fake synthetic" and art.model == "seasonal_median"
    assert art.interval_seconds == 3600 and len(art.intervals) == 6
    first = art.intervals[0].ds
    assert first <= NOW + STEP < first + pd.Timedelta(hours=1), (
        "the forecast starts right after the last sample"
    )
    assert source.calls == [(NOW - pd.Timedelta(days=14), NOW)]
    assert run.points == 14 * 48 and run.missing == 0, "the window (now - 14d, now] at 30m"
    peak = max(i.yhat for i in art.intervals)
    assert 250 < peak < 360, "the daily shape is forecast"


def test_stale_history_extends_the_horizon_and_says_so(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "forecast.json")
    run = run_once(config(tmp_path), FakeSource(synthetic(NOW - pd.Timedelta(hours=2))), store, now=NOW)
    last = run.artifact.intervals[-1].ds + pd.Timedelta(hours=1)
    assert last >= NOW + pd.Timedelta(hours=6), "still covers the configured horizon after now"
    assert "stale_history" in [n.code for n in run.notes]


def test_gaps_and_nan_from_the_source_are_missing_not_zero(tmp_path: Path) -> None:
    data = synthetic(NOW)
    data.iloc[-100:-90] = math.nan
    run = run_once(config(tmp_path), FakeSource(data), FileStore(tmp_path / "f.json"), now=NOW)
    assert run.missing == 10
    assert run.series.y.isna().sum() >= 10 and not (run.series.y == 0).any()


@pytest.mark.parametrize(
    ("breaker", "error", "match"),
    [
        ("source", SourceError("prometheus http://p:9090: connection failed"), "connection failed"),
        ("source-bug", KeyError("values"), r"read history failed \(KeyError"),
        ("model", RuntimeError("all models failed"), r"forecast failed \(RuntimeError: all models failed\)"),
        ("store", OSError(28, "No space left on device"), "No space left on device"),
        ("empty", None, "every sample .* is missing"),
        ("huge", None, r"fake synthetic: samples up to [\d.]+e\+302 are too large to forecast"),
    ],
    ids=[
        "source-down", "source-bug", "model-failure", "store-write-midway", "all-missing", "meaningless-scale"
    ],
)
def test_failed_run_keeps_the_last_good_forecast(
    tmp_path: Path,
    good: tuple[FileStore, bytes],
    monkeypatch: pytest.MonkeyPatch,
    breaker: str,
    error: Exception | None,
    match: str,
) -> None:
    store, before = good
    data = synthetic(NOW + pd.Timedelta(hours=1))
    source = FakeSource(data, error if breaker.startswith("source") else None)
    if breaker == "model":
        import forecaster.pipeline

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise error  # type: ignore[misc]

        monkeypatch.setattr(forecaster.pipeline, "run_forecast", broken)
    if breaker == "store":

        def fail(*args: Any, **kwargs: Any) -> None:
            raise error  # type: ignore[misc]

        monkeypatch.setattr(os, "replace", fail)
    if breaker == "empty":
        source = FakeSource(data * math.nan)
    if breaker == "huge":
        source = FakeSource(data * 1e300)
    with pytest.raises((SourceError, ForecastJobError, StoreError), match=match) as err:
        run_once(config(tmp_path), source, store, now=NOW + pd.Timedelta(hours=1))
    monkeypatch.undo()
    assert store.path.read_bytes() == before, "the previous forecast is untouched"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temp files left"
    assert "\n" not in str(err.value), "one line"


class BrokenStore:
    def __init__(self) -> None:
        self.written: list[ForecastArtifact] = []

    def describe(self) -> str:
        return "configmap ns/forecast"

    def write(self, artifact: ForecastArtifact) -> None:
        raise ConnectionResetError("api server went away")

    def read(self) -> ForecastArtifact | None:
        return None


def test_unexpected_store_exception_becomes_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"configmap ns/forecast: write failed .*api server went away"):
        run_once(config(tmp_path), FakeSource(synthetic(NOW)), BrokenStore(), now=NOW)


# -- scheduler ---------------------------------------------------------------------------------------


class SlowCycle:
    """A cycle that takes ``seconds`` and records how many runs overlapped."""

    def __init__(self, seconds: float, fail_first: int = 0) -> None:
        self.seconds = seconds
        self.fail_first = fail_first
        self.active = 0
        self.max_active = 0
        self.started = 0
        self.finished = 0
        self.lock = threading.Lock()

    def __call__(self) -> JobRun:
        with self.lock:
            self.active += 1
            self.started += 1
            self.max_active = max(self.max_active, self.active)
            n = self.started
        try:
            time.sleep(self.seconds)
            if n <= self.fail_first:
                raise SourceError("prometheus down")
            return _fake_run()
        finally:
            with self.lock:
                self.active -= 1
                self.finished += 1


def _fake_run() -> JobRun:
    interval = Interval(NOW, 100.0, 90.0, 110.0, 130.0)
    artifact = ForecastArtifact(
        created_at=NOW,
        model="seasonal_median",
        timezone="UTC",
        interval_seconds=3600,
        band_level=0.9,
        history_start=NOW - pd.Timedelta(days=1),
        history_end=NOW,
        history_points=10,
        source="fake",
        horizon_seconds=3600,
        intervals=(interval,),
        backtest={"wape": 0.05, "coverage": 0.9},
    )
    return JobRun(
        artifact=artifact,
        result=None,
        series=None,
        source="fake",
        store="file x",
        window_start=NOW,
        window_end=NOW,
        points=10,
        missing=1,
        notes=(),
        seconds=0.1,
    )


def fast_schedule() -> ScheduleConfig:
    return ScheduleConfig(cron="* * * * *", run_on_start=False, misfire_grace_time=1)


def test_runs_never_overlap_and_skips_are_counted() -> None:
    cycle = SlowCycle(0.35)
    metrics = JobMetrics()
    job = ScheduledJob(cycle, fast_schedule(), metrics=metrics)
    threading.Timer(1.3, job.stop).start()
    t0 = time.monotonic()
    assert job.run_forever(trigger=IntervalTrigger(seconds=0.1), install_signals=False) == 0
    assert time.monotonic() - t0 < 3
    assert cycle.max_active == 1
    assert cycle.started >= 2 and cycle.finished == cycle.started, "the running cycle finished before return"
    assert metrics.runs.labels(outcome="skipped")._value.get() >= 1
    assert metrics.runs.labels(outcome="success")._value.get() == cycle.finished


def test_failures_are_counted_and_the_schedule_keeps_going() -> None:
    cycle = SlowCycle(0.05, fail_first=2)
    metrics = JobMetrics()
    job = ScheduledJob(cycle, fast_schedule(), metrics=metrics, clock=lambda: 1_800_000_000.0)
    threading.Timer(0.8, job.stop).start()
    job.run_forever(trigger=IntervalTrigger(seconds=0.1), install_signals=False)
    assert metrics.runs.labels(outcome="failure")._value.get() == 2
    assert metrics.runs.labels(outcome="success")._value.get() >= 1
    assert metrics.last_success._value.get() == 1_800_000_000.0
    assert metrics.points_read._value.get() == 10
    assert metrics.backtest_wape._value.get() == pytest.approx(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_after_the_running_cycle(sig: signal.Signals) -> None:
    cycle = SlowCycle(0.6)
    job = ScheduledJob(cycle, fast_schedule(), metrics=JobMetrics())
    before = signal.getsignal(sig)

    def send() -> None:
        while cycle.started == 0:
            time.sleep(0.01)
        os.kill(os.getpid(), sig)

    threading.Thread(target=send, daemon=True).start()
    t0 = time.monotonic()
    assert job.run_forever(trigger=IntervalTrigger(seconds=0.05)) == 0
    assert time.monotonic() - t0 < 3
    assert cycle.started == 1 and cycle.finished == 1, "the cycle in progress completed; no new one started"
    assert signal.getsignal(sig) == before, "handlers are restored"


def test_run_on_start_runs_immediately() -> None:
    cycle = SlowCycle(0.0)
    job = ScheduledJob(cycle, ScheduleConfig(cron="0 0 1 1 *", run_on_start=True), metrics=None)
    threading.Timer(0.5, job.stop).start()
    job.run_forever(install_signals=False)
    assert cycle.finished == 1


@pytest.mark.slow
@pytest.mark.prometheus
def test_cycle_reads_a_real_prometheus(tmp_path: Path, prom: PromServer) -> None:
    """History from a real server through the job: gap and NaN stay missing, the forecast is stored."""
    cfg = parse_job_config(
        {
            "source": {
                "kind": "prometheus",
                "prometheus": {
                    "url": prom.url,
                    "query": prom.metric,
                    "step": "5m",
                    "maxPointsPerRequest": 200,
                },
            },
            "store": {"kind": "file", "file": {"path": "forecast.json"}},
            "forecast": {"horizon": "6h", "interval": "1h", "history": "3d", "model": "seasonal_median"},
        },
        base_dir=tmp_path,
        environ={},
    )
    store = FileStore(tmp_path / "forecast.json")
    now = prom.trace.index[-1] + pd.Timedelta(seconds=10)
    run = run_once(cfg, PrometheusSource(cfg.source.prometheus), store, now=now)  # type: ignore[arg-type]
    assert run.points == int(prom.trace.notna().sum()), "every finite sample of the 3-day trace"
    assert run.missing == int(prom.trace.isna().sum()), "the gap and the NaN sample"
    codes = [n.code for n in run.notes]
    assert "non_finite" in codes and "short_history" in codes
    assert store.read() == run.artifact and run.artifact.source.startswith("prometheus http://127.0.0.1:")


# -- whole-run deadline (issue 10, item 3) -----------------------------------------------------------


def test_a_run_past_its_deadline_fails_cleanly_and_never_writes_late(
    tmp_path: Path, good: tuple[FileStore, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model stage that never returns in time: the run fails at the deadline, and the stage finishing
    later must not store its forecast behind the caller's back."""
    import forecaster.pipeline

    store, before = good
    real = forecaster.pipeline.run_forecast
    released = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        released.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(forecaster.pipeline, "run_forecast", slow)
    cfg = config(tmp_path)
    cfg = cfg.__class__(**{**cfg.__dict__, "schedule": ScheduleConfig(run_timeout=1)})
    t0 = time.monotonic()
    with pytest.raises(ForecastJobError, match=r"schedule.runTimeout \(1s\).*forecast.*last good forecast"):
        run_once(cfg, FakeSource(synthetic(NOW + pd.Timedelta(hours=1))), store, now=NOW + STEP)
    assert time.monotonic() - t0 < 2.5
    released.set()  # the abandoned stage now completes ...
    time.sleep(1.0)
    assert store.path.read_bytes() == before  # ... and is discarded, not written


def test_a_slow_prometheus_cannot_outlast_the_run_deadline(
    tmp_path: Path, good: tuple[FileStore, bytes]
) -> None:
    """Per-request timeouts of 5 s with 3 retries would take 20 s and more; the run has 2 s."""
    from forecaster.adapters.prometheus import PrometheusConfig
    from tests.support.faultserver import drip, fault_server

    store, before = good
    with fault_server(drip(0.3)) as srv:
        pcfg = PrometheusConfig(url=srv.url, query="up", step=1800, timeout=5, retries=3, backoff=0.1)
        cfg = config(tmp_path)
        cfg = cfg.__class__(**{**cfg.__dict__, "schedule": ScheduleConfig(run_timeout=2)})
        t0 = time.monotonic()
        with pytest.raises((SourceError, ForecastJobError), match=r"runTimeout"):
            run_once(cfg, PrometheusSource(pcfg), store, now=NOW)
        assert time.monotonic() - t0 < 3.5
    assert store.path.read_bytes() == before
