"""One fleet run: each target its own artifact and calendar, every failure kept to its own target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.adapters.store import FileStore
from forecaster.artifact import ForecastArtifact
from forecaster.engine import InProcessEngine, ProcessPoolEngine
from forecaster.errors import SourceError, StoreError
from forecaster.job.config import ForecastConfig, ScheduleConfig
from forecaster.job.fleet import FleetRun, FleetTarget, record_fleet_run, run_fleet_once
from forecaster.job.metrics import JobMetrics
from forecaster.job.runner import ScheduledJob
from forecaster.series.calendar import CalendarConfig

NOW = pd.Timestamp("2026-11-30T20:00:00Z")  # the 6-hour horizon crosses a month start
STEP = pd.Timedelta(minutes=30)
FC = ForecastConfig(horizon=6 * 3600, interval=3600, history=14 * 86400, model="seasonal_median")


def series(end: pd.Timestamp = NOW, days: int = 15, level: float = 200.0) -> pd.Series:
    index = pd.date_range(end=end, periods=days * 48, freq=STEP, name="ds")
    hours = index.hour + index.minute / 60
    return pd.Series(level + 0.6 * level * np.sin(2 * np.pi * (hours - 6) / 24), index=index, name="y")


class Source:
    def __init__(self, query: str, data: dict[str, Any]) -> None:
        self.query, self.data = query, data

    def describe(self) -> str:
        return f"fake: {self.query}"

    def history(self, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta | None) -> pd.Series:
        got = self.data[self.query]
        if isinstance(got, Exception):
            raise got
        return got[(got.index >= start) & (got.index <= end)]


class RefusingStore(FileStore):
    """A store that refuses every write, like a ConfigMap past the 1 MiB limit."""

    def write(self, artifact: ForecastArtifact) -> None:
        raise StoreError(f"{self.describe()}: forecast is 2000000 bytes, a ConfigMap holds at most 1048576")


def targets(tmp_path: Path) -> tuple[list[FleetTarget], dict[str, Any]]:
    data: dict[str, Any] = {
        "good": series(level=200.0),
        "other": series(level=900.0),
        "stale": series(end=NOW - pd.Timedelta(hours=3), level=50.0),
        "empty": SourceError("fake: empty: no samples between a and b"),
        "short": series(days=1)[-2:],
        "bug": RuntimeError("boom\nwith a second line"),
        "big": series(level=10.0),
    }
    no_month_start = CalendarConfig(month_start=False)
    out = [
        FleetTarget(name, name, (RefusingStore if name == "big" else FileStore)(tmp_path / f"{name}.json"),
                    no_month_start if name == "other" else CalendarConfig())
        for name in data
    ]
    return out, data


def run(tmp_path: Path, engine: Any = None, **kw: Any) -> FleetRun:
    ts, data = targets(tmp_path)
    return run_fleet_once(
        FC, STEP, ts, source_for=lambda q: Source(q, data), engine=engine or InProcessEngine(), now=NOW, **kw
    )


def test_each_target_gets_its_own_artifact_and_failures_stay_local(tmp_path: Path) -> None:
    previous = tmp_path / "empty.json"
    previous.write_text("the last good forecast")
    got = run(tmp_path, skipped=[("nohistory", "no spec.history.query")], failed=[("broken", "spec.x: bad")])
    by = {t.id: t for t in got.targets}
    assert [t.id for t in got.targets][:7] == ["good", "other", "stale", "empty", "short", "bug", "big"]
    status = {k: t.status for k, t in by.items()}
    assert status == {"good": "succeeded", "other": "succeeded", "stale": "succeeded", "empty": "failed",
                      "short": "failed", "bug": "failed", "big": "failed", "nohistory": "skipped",
                      "broken": "failed"}
    assert (got.succeeded, got.failed, got.skipped) == (3, 5, 1)
    for name in ("good", "other", "stale"):
        assert FileStore(tmp_path / f"{name}.json").read() == by[name].artifact
    assert previous.read_text() == "the last good forecast"  # a failed target keeps its last forecast
    assert "no samples" in (by["empty"].error or "")
    assert "RuntimeError: boom with a second line" in (by["bug"].error or "")
    assert "1048576" in (by["big"].error or "")
    assert "less than one full 1h interval" in (by["short"].error or "")
    assert all("\n" not in (t.error or "") for t in got.targets)
    # each artifact is its own series' forecast (levels 200 and 900 do not get mixed up)
    assert max(i.yhat for i in by["good"].artifact.intervals) < 400  # type: ignore[union-attr]
    assert min(i.yhat for i in by["other"].artifact.intervals) > 300  # type: ignore[union-attr]
    assert set(got.stages) == {"read", "forecast", "write"} and got.engine == "in-process"


def test_each_target_forecasts_with_its_own_calendar(tmp_path: Path) -> None:
    by = {t.id: t for t in run(tmp_path).targets}
    kinds = {name: [e.kind for e in by[name].artifact.events] for name in ("good", "other")}  # type: ignore[union-attr]
    assert "month_start" in kinds["good"], kinds
    assert "month_start" not in kinds["other"], kinds


def test_a_stale_series_still_covers_the_horizon_and_says_so(tmp_path: Path) -> None:
    by = {t.id: t for t in run(tmp_path).targets}
    fresh, stale = by["good"].artifact, by["stale"].artifact
    assert fresh is not None and stale is not None
    end = lambda a: a.intervals[-1].ds + pd.Timedelta(seconds=a.interval_seconds)  # noqa: E731
    assert end(stale) >= NOW + pd.Timedelta(hours=6) and len(stale.intervals) > len(fresh.intervals)
    assert "stale_history" in [n.code for n in stale.quality]
    assert "stale_history" not in [n.code for n in fresh.quality]


@pytest.mark.slow
def test_a_process_pool_gives_the_same_artifacts(tmp_path: Path) -> None:
    ref = run(tmp_path / "a")
    pool = ProcessPoolEngine(2)
    try:
        got = run(tmp_path / "b", engine=pool)
    finally:
        pool.close()
    assert [(t.id, t.status, t.error is None) for t in got.targets] == [
        (t.id, t.status, t.error is None) for t in ref.targets
    ]
    for a, b in zip(ref.targets, got.targets, strict=True):
        assert (a.artifact is None) == (b.artifact is None)
        if a.artifact is not None and b.artifact is not None:
            assert a.artifact.intervals == b.artifact.intervals and a.artifact.model == b.artifact.model


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    t = FleetTarget("a", "q", FileStore(tmp_path / "a.json"))
    with pytest.raises(ValueError, match="unique"):
        run_fleet_once(FC, STEP, [t, t], source_for=lambda q: Source(q, {}), engine=InProcessEngine(),
                       now=NOW)


def test_metrics_count_each_run_and_the_scheduler_records_it(tmp_path: Path) -> None:
    metrics = JobMetrics()
    runs: list[FleetRun] = []

    def cycle() -> FleetRun:
        got = run(tmp_path)
        record_fleet_run(metrics, got)
        runs.append(got)
        return got

    job = ScheduledJob(cycle, ScheduleConfig(), metrics=metrics, clock=lambda: 1234.0,
                       report=lambda r, s, at: metrics.record_run(seconds=s, finished_at=at))
    assert job.run_cycle() and job.run_cycle()
    value = metrics.registry.get_sample_value
    assert value("recharge_forecast_job_last_run_series", {"outcome": "succeeded"}) == 3
    assert value("recharge_forecast_job_last_run_series", {"outcome": "failed"}) == 4
    assert value("recharge_forecast_job_series_total", {"outcome": "failed"}) == 8
    assert value("recharge_forecast_job_runs_total", {"outcome": "success"}) == 2
    assert value("recharge_forecast_job_last_success_timestamp_seconds") == 1234.0
