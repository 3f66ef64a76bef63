"""One forecast run for a fleet: every target's history query, one batch call, one artifact per target.

Why this module exists: a fleet of workloads needs one job, not one CronJob per workload. A run reads each
target's series from Prometheus (one range query per target, a few in parallel), hands every series that
could be read to :func:`forecaster.batch.forecast_many` in one call (in-process, local processes or Dask,
each series with its own calendar), and writes each artifact to that target's own store. Each store holds
only its target's last good artifact: a target whose query fails, whose history is too short, whose models
fail or whose artifact its store refuses (a ConfigMap past 1 MiB) is ``failed`` with a one-line error, its
previous artifact stays, and the others are still written.

Which targets exist is not known here (the forecaster never imports the controller): the caller lists them
(:mod:`controller.fleet.forecast_job` reads the PredictiveScalers) and passes :class:`FleetTarget` records,
plus the ids it already skipped or found broken. The per-run counts go to :class:`~forecaster.job.metrics.
JobMetrics` (:func:`record_fleet_run`) and to the CLI's summary.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from forecaster.adapters.prometheus_config import PrometheusConfig
from forecaster.artifact import ForecastArtifact, QualityNote
from forecaster.durations import format_duration
from forecaster.engine import Engine
from forecaster.errors import AutoscalerError, SourceError
from forecaster.job.config import ForecastConfig
from forecaster.job.metrics import JobMetrics
from forecaster.ports import ForecastStore, HistorySource
from forecaster.series.calendar import CalendarConfig

log = logging.getLogger(__name__)

IO_CONCURRENCY = 4
"""Prometheus queries (and store writes) in flight at once: enough to hide latency, gentle on the server."""

Status = Literal["succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class FleetTarget:
    """One series of the fleet: its query, its calendar, and the store of its own last good artifact."""

    id: str  # unique in the run, e.g. "namespace/scaler"
    query: str
    store: ForecastStore
    calendar: CalendarConfig = field(default_factory=CalendarConfig)


@dataclass(frozen=True)
class TargetRun:
    """What one run did for one target."""

    id: str
    status: Status
    store: str = ""
    error: str | None = None  # failed: one line; skipped: the reason
    artifact: ForecastArtifact | None = None
    points: int = 0
    seconds: float = 0.0  # forecasting time of this series


@dataclass(frozen=True)
class FleetRun:
    """Every target's outcome (in input order), the engine and where the time went."""

    targets: list[TargetRun]
    engine: str
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)  # read, forecast, write: wall seconds

    def count(self, status: Status) -> int:
        return sum(1 for t in self.targets if t.status == status)

    @property
    def succeeded(self) -> int:
        return self.count("succeeded")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")


@dataclass
class _Read:
    observed: pd.Series | None = None
    notes: tuple[QualityNote, ...] = ()
    horizon: pd.Timedelta | None = None
    source: str = ""
    error: str | None = None


def prometheus_sources(cfg: PrometheusConfig) -> Callable[[str], HistorySource]:
    """A factory of history sources on one Prometheus connection, one HTTP session per thread (a fleet of a
    thousand queries reuses a few connections instead of opening one each)."""
    import requests

    from forecaster.adapters.prometheus import PrometheusSource

    local = threading.local()

    def source(query: str) -> HistorySource:
        if getattr(local, "session", None) is None:
            local.session = requests.Session()
        return PrometheusSource(cfg.evolve(query=query), session=local.session)

    return source


def run_fleet_once(
    fc: ForecastConfig,
    step: pd.Timedelta,
    targets: Sequence[FleetTarget],
    *,
    source_for: Callable[[str], HistorySource],
    engine: Engine,
    now: pd.Timestamp,
    skipped: Iterable[tuple[str, str]] = (),
    failed: Iterable[tuple[str, str]] = (),
    concurrency: int = IO_CONCURRENCY,
    progress: Callable[[int, int], None] | None = None,
) -> FleetRun:
    """Read, forecast (one batch call on ``engine``) and store every target; never raises for one target.

    ``skipped`` and ``failed`` are (id, reason) pairs the caller already decided (no history query, a
    broken spec); they are reported with the others. ``step`` is the query resolution (the history's
    interval); the window of each query ends at ``now`` and spans ``forecast.history``.
    """
    from forecaster.batch import BatchSettings, forecast_many

    t0 = time.perf_counter()
    now = _utc(now)
    ids = [t.id for t in targets]
    if len(set(ids)) != len(ids):
        raise ValueError("fleet targets must have unique ids")
    out: dict[str, TargetRun] = {sid: TargetRun(sid, "skipped", error=why) for sid, why in skipped}
    out.update({sid: TargetRun(sid, "failed", error=why) for sid, why in failed})
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="fleet-io")
    try:
        reads = dict(zip(ids, pool.map(lambda t: _read(t, source_for, fc, step, now), targets), strict=True))
        t_read = time.perf_counter()
        base = BatchSettings(
            horizon=pd.Timedelta(seconds=fc.horizon), freq=pd.Timedelta(seconds=fc.interval), model=fc.model,
            band_level=fc.band_level, folds=fc.folds,
            candidates=tuple(fc.candidates) if fc.candidates else None, timezone=fc.timezone,
            step=step, created_at=now,
        )
        series, per_series = [], {}
        for t in targets:
            r = reads[t.id]
            if r.error is not None or r.observed is None:
                out[t.id] = TargetRun(t.id, "failed", t.store.describe(), error=r.error)
                continue
            series.append((t.id, r.observed))
            per_series[t.id] = replace(base, calendar=t.calendar, horizon=r.horizon or base.horizon,
                                       source=r.source)
        batch = forecast_many(series, base, engine=engine, per_series=per_series, progress=progress)
        t_fc = time.perf_counter()
        by_id = {t.id: t for t in targets}
        done = list(pool.map(lambda o: _store(by_id[o.id], o, reads[o.id]), batch.outcomes))
        out.update({r.id: r for r in done})
    finally:
        pool.shutdown(wait=True)
    t1 = time.perf_counter()
    order = [*ids, *(sid for sid in out if sid not in reads)]
    return FleetRun(
        [out[sid] for sid in order], batch.engine, t1 - t0,
        {"read": t_read - t0, "forecast": t_fc - t_read, "write": t1 - t_fc},
    )


def _read(
    target: FleetTarget, source_for: Callable[[str], HistorySource], fc: ForecastConfig, step: pd.Timedelta,
    now: pd.Timestamp,
) -> _Read:
    """One target's history window (samples only, in the forecast zone), its quality notes and horizon.

    As :func:`forecaster.job.runner.run_once` reads one series: the window is (now - history, now]; a
    series whose last sample is older than one step gets a horizon extended to still cover ``now +
    horizon``, and a note saying so.
    """
    source: HistorySource | None = None
    try:
        source = source_for(target.query)
        where = source.describe()
        start = now - pd.Timedelta(seconds=fc.history)
        raw = source.history(start, now, step)
        observed = raw[raw.index > start].dropna()
        if observed.empty:
            raise SourceError(
                f"{where}: every sample between {start.isoformat()} and {now.isoformat()} is missing"
            )
    except AutoscalerError as exc:
        return _Read(error=_one_line(str(exc)))
    except Exception as exc:  # a client bug on one query must not stop the fleet
        log.debug("reading %s failed", target.id, exc_info=True)
        return _Read(error=_one_line(f"read history failed ({type(exc).__name__}: {exc})"))
    notes: list[QualityNote] = []
    report = getattr(source, "last_report", None)
    if report is not None and getattr(report, "non_finite", 0) > 0:
        notes.append(QualityNote(
            "non_finite", "warning",
            f"{report.non_finite} NaN/Inf samples from the source were treated as missing",
        ))
    for w in getattr(report, "warnings", ()) or ():
        notes.append(QualityNote("source_warning", "warning", f"Prometheus warning: {w}"))
    horizon = pd.Timedelta(seconds=fc.horizon)
    interval = pd.Timedelta(seconds=fc.interval)
    last = pd.Timestamp(observed.index[-1]).tz_convert("UTC")
    lag = now - (last + step)
    if lag > pd.Timedelta(0):
        extra = interval * math.ceil(lag / interval)
        horizon += extra
        notes.append(QualityNote(
            "stale_history", "warning" if lag >= interval else "info",
            f"the latest sample ({last.isoformat()}) is {format_duration(lag + step)} old; the forecast "
            f"starts after it and was extended by {format_duration(extra)} to still cover the horizon",
        ))
    return _Read(observed.tz_convert(fc.timezone), tuple(notes), horizon, where)


def _store(target: FleetTarget, outcome: Any, read: _Read) -> TargetRun:
    """Write one forecast to the target's own store; any failure is this target's and keeps its last one."""
    where = target.store.describe()
    points = int(read.observed.size) if read.observed is not None else 0
    if outcome.error is not None or outcome.artifact is None:
        return TargetRun(target.id, "failed", where, outcome.error or "no forecast", points=points,
                         seconds=outcome.seconds)
    artifact: ForecastArtifact = outcome.artifact
    if read.notes:
        artifact = replace(artifact, quality=tuple(artifact.quality) + read.notes)
    error = None
    try:
        target.store.write(artifact)
    except AutoscalerError as exc:
        error = str(exc)
    except Exception as exc:
        log.debug("writing %s failed", where, exc_info=True)
        error = f"{where}: write failed ({type(exc).__name__}: {exc})"
    if error is not None:
        return TargetRun(target.id, "failed", where, _one_line(error), points=points, seconds=outcome.seconds)
    return TargetRun(target.id, "succeeded", where, artifact=artifact, points=points, seconds=outcome.seconds)


def record_fleet_run(metrics: JobMetrics, run: FleetRun) -> None:
    """The run's per-target counts in the job's metrics (the run itself is recorded by the scheduler)."""
    metrics.record_series(succeeded=run.succeeded, failed=run.failed, skipped=run.skipped)


def log_fleet_run(run: FleetRun) -> None:
    """One line per failed target, then the counts (a structured line for log pipelines)."""
    for t in run.targets:
        if t.status == "failed":
            log.warning("forecast for %s failed, its last good forecast is kept: %s", t.id, t.error,
                        extra={"event": "fleet_target", "target": t.id, "outcome": "failure"})
    log.info(
        "fleet forecast run: %d succeeded, %d failed, %d skipped in %.1fs on %s",
        run.succeeded, run.failed, run.skipped, run.seconds, run.engine,
        extra={"event": "fleet_forecast_run", "succeeded": run.succeeded, "failed": run.failed,
               "skipped": run.skipped, "seconds": round(run.seconds, 3), "engine": run.engine},
    )


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _one_line(text: str) -> str:
    return " ".join(text.split())
