"""The scheduled forecast job: read history, forecast, validate, store; once or on a cron schedule.

One cycle (:func:`run_once`) reads the configured history window from a ``HistorySource``, cleans it,
runs :func:`forecaster.pipeline.run_forecast`, converts the result to a validated ``ForecastArtifact`` and
only then writes it through a ``ForecastStore``. Any failure before the write leaves the last good forecast
in place: the controller keeps acting on it (and sees its age) instead of on a half-baked one.

:class:`ScheduledJob` runs cycles with APScheduler: a cron trigger, ``max_instances=1`` so runs never
overlap, ``coalesce`` so a backlog collapses into one run, a misfire grace time, metrics per run, and a
graceful stop on SIGTERM/SIGINT (the running cycle finishes; the store write is atomic anyway).
The wiring (which source, which store, the clock) is done by :mod:`controller.cli.job`.
"""

from __future__ import annotations

import contextvars
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pandas as pd

from forecaster import budget
from forecaster.artifact import ForecastArtifact, QualityNote
from forecaster.durations import format_duration
from forecaster.errors import AutoscalerError, OperationalError, SourceError, StoreError
from forecaster.job.config import JobConfig, ScheduleConfig
from forecaster.job.metrics import JobMetrics
from forecaster.ports import ForecastStore, HistorySource

log = logging.getLogger(__name__)


class ForecastJobError(OperationalError):
    """A forecast run failed in a way no narrower error describes (e.g. every model failed)."""


class RunTimeout(ForecastJobError):
    """The run passed ``schedule.runTimeout``; nothing was stored."""


@dataclass(frozen=True)
class JobRun:
    """Everything one successful cycle produced, for the summary, logs and metrics."""

    artifact: ForecastArtifact
    result: Any  # forecaster.pipeline.ForecastResult
    series: Any  # forecaster.series.cleaning.CleanSeries
    source: str
    store: str
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    points: int  # finite samples read
    missing: int  # missing intervals on the cleaned grid
    notes: tuple[QualityNote, ...]
    seconds: float


def run_once(
    cfg: JobConfig,
    source: HistorySource,
    store: ForecastStore,
    *,
    now: pd.Timestamp,
    calendar: Any = None,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> JobRun:
    """One forecast cycle. Writes to ``store`` only after a successful, validated forecast.

    The history window ends at ``now`` (or at the source's last sample if it ends earlier, e.g. a file) and
    spans ``forecast.history``. Raises an AutoscalerError subclass on failure; the store is then untouched.

    The whole cycle must end within ``schedule.runTimeout``: it runs in a worker thread under that budget
    (requests are shortened to what is left, stages are not started after it), and the caller gives up at
    the deadline with :class:`RunTimeout`. A stage that cannot be interrupted (a model fit) may keep the
    worker busy for a while; it is then barred from writing, and the next run refuses to start until it
    has ended, so abandoned runs never pile up.
    """
    return _deadline_run(float(cfg.schedule.run_timeout), store, lambda gate: _cycle(
        cfg, source, store, now=now, calendar=calendar, progress=progress, clock=clock, gate=gate))


class _Gate:
    """Where the run is, and whether it may still write: the write and the give-up exclude each other."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stage = "start"
        self.cancelled = False
        self.writing = False

    def enter(self, stage: str) -> None:
        with self.lock:
            if self.cancelled:
                raise RunTimeout("run cancelled")
            self.stage = stage
            if stage == "write forecast":
                self.writing = True

    def cancel(self) -> bool:
        """Bar any further stage; False when the write has already begun (it is then waited for)."""
        with self.lock:
            if self.writing:
                return False
            self.cancelled = True
            return True


_abandoned: list[threading.Thread] = []  # runs given up at their deadline whose stage is still running


def _deadline_run(seconds: float, store: ForecastStore, cycle: Callable[[_Gate], JobRun]) -> JobRun:
    _abandoned[:] = [t for t in _abandoned if t.is_alive()]
    if _abandoned:
        raise ForecastJobError(
            "a run that passed schedule.runTimeout is still finishing an uninterruptible stage; this run is "
            "skipped and the last good forecast is kept"
        )
    gate = _Gate()
    out: dict[str, Any] = {}

    def work() -> None:
        try:
            with budget.run_budget(seconds):
                out["run"] = cycle(gate)
        except BaseException as exc:  # handed to the caller's thread
            out["error"] = exc

    ctx = contextvars.copy_context()
    worker = threading.Thread(target=ctx.run, args=(work,), name="forecast-run", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if gate.cancel():
            _abandoned.append(worker)
            raise RunTimeout(
                f"forecast run passed schedule.runTimeout ({format_duration(pd.Timedelta(seconds=seconds))}) "
                f"during {gate.stage}; nothing stored, the last good forecast in {store.describe()} is kept"
            )
        worker.join()  # the write began in time; the store's own timeouts bound it
    if "error" in out:
        exc = out["error"]
        if isinstance(exc, RunTimeout):
            raise RunTimeout(
                f"forecast run passed schedule.runTimeout ({format_duration(pd.Timedelta(seconds=seconds))}) "
                f"during {gate.stage} ({exc}); nothing stored, the last good forecast in {store.describe()} "
                "is kept"
            ) from None
        raise exc
    run: JobRun = out["run"]
    return run


def _cycle(
    cfg: JobConfig,
    source: HistorySource,
    store: ForecastStore,
    *,
    now: pd.Timestamp,
    calendar: Any,
    progress: Callable[[str], None] | None,
    clock: Callable[[], float],
    gate: _Gate,
) -> JobRun:
    from forecaster.pipeline import run_forecast, to_artifact
    from forecaster.series.cleaning import clean

    def _stage(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if budget.expired():
            raise RunTimeout(f"{name} not started")
        gate.enter(name)
        return _call_stage(name, fn, *args, **kwargs)

    started = clock()
    fc = cfg.forecast
    now = _utc(now)
    step = (
        pd.Timedelta(seconds=cfg.source.prometheus.step)
        if cfg.source.prometheus and cfg.source.kind == "prometheus"
        else None
    )
    interval = pd.Timedelta(seconds=fc.interval)
    horizon = pd.Timedelta(seconds=fc.horizon)
    where = source.describe()

    end = now
    end_of_data = getattr(source, "end_of_data", None)
    if callable(end_of_data):
        end = min(end, _utc(_stage("read history", end_of_data)))
    start = end - pd.Timedelta(seconds=fc.history)
    raw = _stage("read history", source.history, start, end, step)
    raw = raw[raw.index > start]  # the window is (start, end]: exactly `history` long
    observed = raw.dropna()
    if observed.empty:
        raise SourceError(
            f"{where}: every sample between {start.isoformat()} and {end.isoformat()} is missing"
        )
    from forecaster.series.io import MAX_VALUE

    if float(observed.abs().max()) > MAX_VALUE:  # inf/NaN bands and 300-digit numbers otherwise
        raise SourceError(
            f"{where}: samples up to {float(observed.abs().max()):g} are too large to forecast (at most "
            f"{MAX_VALUE:g}); check the query and its unit. The last good forecast is kept"
        )
    observed = observed.tz_convert(fc.timezone) if isinstance(observed.index, pd.DatetimeIndex) else observed
    series = _stage("clean history", clean, observed, where=where, freq=step)

    notes: list[QualityNote] = []
    report = getattr(source, "last_report", None)
    if report is not None and getattr(report, "non_finite", 0) > 0:
        notes.append(
            QualityNote(
                "non_finite",
                "warning",
                f"{report.non_finite} NaN/Inf samples from the source were treated as missing",
            )
        )
    for w in getattr(report, "warnings", ()) or ():
        notes.append(QualityNote("source_warning", "warning", f"Prometheus warning: {w}"))
    last = pd.Timestamp(series.y.index[-1]).tz_convert("UTC")
    lag = end - (last + series.freq)
    if lag > pd.Timedelta(0):
        extra = interval * math.ceil(lag / interval)
        horizon = horizon + extra
        age = format_duration(lag + series.freq)
        notes.append(
            QualityNote(
                "stale_history",
                "warning" if lag >= interval else "info",
                f"the latest sample ({last.isoformat()}) is {age} old; the forecast starts after it and was "
                f"extended by {format_duration(extra)} to still cover the horizon",
            )
        )

    if calendar is None:
        from forecaster.series.calendar import EventCalendar

        calendar = _stage("load calendar", EventCalendar, fc.calendar, fc.timezone)
    result = _stage(
        "forecast",
        run_forecast,
        series,
        horizon,
        freq=interval,
        model=fc.model,
        calendar=calendar,
        band_level=fc.band_level,
        folds=fc.folds,
        candidates=fc.candidates,
        progress=progress,
    )
    artifact = _stage(
        "build forecast artifact", to_artifact, result, created_at=now, source=where, series=series
    )
    if notes:
        from dataclasses import replace

        artifact = replace(artifact, quality=tuple(artifact.quality) + tuple(notes))
    try:
        artifact.to_json()  # validate before touching the store
    except StoreError as exc:
        raise ForecastJobError(f"forecast failed validation, nothing stored: {exc}") from None
    if budget.expired():
        raise RunTimeout("write not started")
    gate.enter("write forecast")
    try:
        store.write(artifact)
    except AutoscalerError:
        raise
    except Exception as exc:
        log.debug("writing to %s failed", store.describe(), exc_info=True)
        raise StoreError(f"{store.describe()}: write failed ({type(exc).__name__}: {exc})") from None
    missing = int(series.missing.sum()) if hasattr(series, "missing") else int(series.y.isna().sum())
    return JobRun(
        artifact=artifact,
        result=result,
        series=series,
        source=where,
        store=store.describe(),
        window_start=start,
        window_end=end,
        points=int(observed.size),
        missing=missing,
        notes=tuple(artifact.quality),
        seconds=clock() - started,
    )


def _call_stage(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; expected errors pass through, anything else becomes a one-line ForecastJobError."""
    try:
        return fn(*args, **kwargs)
    except AutoscalerError:
        raise
    except Exception as exc:
        log.debug("%s failed", name, exc_info=True)  # the traceback, for --log-level DEBUG
        raise ForecastJobError(
            f"{name} failed ({type(exc).__name__}: {exc}); the stored forecast was kept"
        ) from None


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class ScheduledJob:
    """Runs forecast cycles on a cron schedule without overlap, records metrics, stops on SIGTERM/SIGINT."""

    def __init__(
        self,
        cycle: Callable[[], Any],
        schedule: ScheduleConfig,
        *,
        metrics: JobMetrics | None = None,
        clock: Callable[[], float] = time.time,
        report: Callable[[Any, float, float], None] | None = None,
    ) -> None:
        """``report(run, seconds, finished_at)``, when given, replaces the one-series success metrics and log
        line (a fleet run reports its own counts); failures and skips are recorded here either way."""
        self._cycle = cycle
        self._report = report
        self.schedule = schedule
        self.metrics = metrics
        self._clock = clock
        self._running = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler: Any = None
        self._stop_requested = False
        self._signal: int | None = None
        self.runs = 0
        self.failures = 0

    def run_cycle(self) -> bool:
        """One guarded cycle: never raises, never overlaps another, records the outcome."""
        if self._stopping.is_set():
            return False
        if not self._running.acquire(blocking=False):
            log.warning("previous forecast run still in progress; skipping this one")
            if self.metrics:
                self.metrics.record_skipped()
            return False
        t0 = time.monotonic()
        try:
            run = self._cycle()
        except Exception as exc:
            self.failures += 1
            seconds = time.monotonic() - t0
            if self.metrics:
                self.metrics.record_failure(seconds=seconds, finished_at=self._clock())
            level = logging.ERROR
            log.log(
                level,
                "forecast run failed after %.1fs: %s",
                seconds,
                exc,
                exc_info=not isinstance(exc, AutoscalerError),
                extra={"event": "forecast_run", "outcome": "failure", "seconds": round(seconds, 3)},
            )
            return False
        else:
            seconds = time.monotonic() - t0
            if self._report is not None:
                self._report(run, seconds, self._clock())
                return True
            peak = max((i.peak_upper for i in run.artifact.intervals), default=math.nan)
            if self.metrics:
                self.metrics.record_success(
                    seconds=seconds,
                    finished_at=self._clock(),
                    points=run.points,
                    missing=run.missing,
                    backtest=run.artifact.backtest,
                    peak_upper=peak,
                )
            bt = run.artifact.backtest or {}
            for note in run.notes:
                if note.severity != "info":
                    log.warning("forecast quality (%s): %s", note.code, note.message)
            log.info(
                "forecast stored in %s: model %s, %d intervals, peak_upper %.1f, backtest WAPE %s",
                run.store,
                run.artifact.model,
                len(run.artifact.intervals),
                peak,
                _pct(bt.get("wape")),
                extra={
                    "event": "forecast_run",
                    "outcome": "success",
                    "seconds": round(seconds, 3),
                    "model": run.artifact.model,
                    "points": run.points,
                    "missing": run.missing,
                    "wape": bt.get("wape"),
                    "peak_upper": peak,
                },
            )
            return True
        finally:
            self.runs += 1
            self._running.release()

    def build_scheduler(self, trigger: Any = None) -> Any:
        """An APScheduler scheduler (not started) with the forecast job: no overlap, coalesced backlog."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger

        sched = BackgroundScheduler(timezone=self.schedule.timezone)
        if trigger is None:
            trigger = CronTrigger.from_crontab(self.schedule.cron, timezone=self.schedule.timezone)
        kwargs: dict[str, Any] = {}
        if self.schedule.run_on_start:
            kwargs["next_run_time"] = pd.Timestamp.now(tz="UTC").to_pydatetime()
        sched.add_job(
            self.run_cycle,
            trigger,
            id="forecast",
            name="forecast",
            misfire_grace_time=int(self.schedule.misfire_grace_time),
            max_instances=1,
            coalesce=True,
            **kwargs,
        )

        def on_event(event: Any) -> None:
            if event.code == EVENT_JOB_MAX_INSTANCES:
                log.warning("previous forecast run still in progress; skipped a scheduled run")
                if self.metrics:
                    self.metrics.record_skipped()
            else:
                log.warning("a scheduled forecast run was missed by more than misfireGraceTime")

        sched.add_listener(on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._scheduler = sched
        return sched

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Ask the job to stop; a running cycle finishes. Safe from a signal handler and from any thread.

        It only sets flags: shutting the scheduler down inside a signal handler can deadlock on locks the
        interrupted main thread holds, so :meth:`run_forever` does that in the main thread.
        """
        self._signal = signum
        self._stop_requested = True

    def run_forever(self, *, trigger: Any = None, install_signals: bool = True, poll: float = 0.1) -> int:
        """Run the schedule until stop()/SIGTERM/SIGINT; returns 0 after a graceful stop.

        The scheduler runs in a background thread; the calling (main) thread waits for a stop request, then
        stops scheduling and waits for a cycle in progress to finish (the store write is atomic regardless).
        """
        sched = self.build_scheduler(trigger)
        previous: dict[signal.Signals, Any] = {}
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.stop)
        try:
            sched.start()
            log.info("forecast job scheduled: cron %r (%s)", self.schedule.cron, self.schedule.timezone)
            while not self._stop_requested:
                time.sleep(poll)
            if self._signal is not None:
                log.warning("received %s; stopping after the current run", signal.Signals(self._signal).name)
            self._stopping.set()
            sched.shutdown(wait=True)  # waits for a cycle in progress
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("forecast job stopped after %d runs (%d failed)", self.runs, self.failures)
        return 0


def _pct(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(v) else f"{v:.1%}"
