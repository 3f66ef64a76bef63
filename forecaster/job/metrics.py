"""Prometheus metrics of the long-running forecast job, so SREs can alert on a job that stopped producing.

The useful alert is "no successful forecast for N runs":
``recharge_forecast_job_last_success_timestamp_seconds`` older than a few schedule periods. A fleet run
(``forecast-job --fleet``) also says how many of its series succeeded, failed and were skipped
(``recharge_forecast_job_last_run_series{outcome}`` for the last run, ``recharge_forecast_job_series_total``
since start); a run counts
as a success when it stored at least one forecast or had nothing to forecast. Metrics live in
their own registry (never the global one), so tests and several jobs in one process do not collide;
:meth:`JobMetrics.serve` exposes it over HTTP.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_PREFIX = "recharge_forecast_job"


class JobMetrics:
    """Run duration, outcomes, freshness and forecast quality of the forecast job."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.run_duration = Histogram(
            f"{_PREFIX}_run_duration_seconds",
            "Wall time of one forecast run (read, fit, backtest, store).",
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.runs = Counter(f"{_PREFIX}_runs", "Forecast runs by outcome.", ["outcome"], registry=r)
        for outcome in ("success", "failure", "skipped"):
            self.runs.labels(outcome=outcome)
        self.last_success = Gauge(
            f"{_PREFIX}_last_success_timestamp_seconds",
            "Unix time of the last run that stored a forecast.",
            registry=r,
        )
        self.last_failure = Gauge(
            f"{_PREFIX}_last_failure_timestamp_seconds", "Unix time of the last failed run.", registry=r
        )
        self.points_read = Gauge(
            f"{_PREFIX}_history_points",
            "Samples read from the history source in the last successful run.",
            registry=r,
        )
        self.missing_points = Gauge(
            f"{_PREFIX}_history_missing_points",
            "Missing intervals in the history of the last successful run.",
            registry=r,
        )
        self.backtest_wape = Gauge(
            f"{_PREFIX}_backtest_wape",
            "Backtest WAPE (0..1) of the chosen model in the last successful run.",
            registry=r,
        )
        self.backtest_coverage = Gauge(
            f"{_PREFIX}_backtest_coverage",
            "Share of backtest actuals inside the forecast band in the last successful run.",
            registry=r,
        )
        self.peak_upper = Gauge(
            f"{_PREFIX}_forecast_peak_upper",
            "Highest peak_upper in the stored forecast's horizon.",
            registry=r,
        )
        self.series = Gauge(
            f"{_PREFIX}_last_run_series",
            "Series of the last fleet run by outcome (succeeded, failed, skipped).",
            ["outcome"],
            registry=r,
        )
        self.series_total = Counter(
            f"{_PREFIX}_series", "Series forecast by fleet runs, by outcome.", ["outcome"], registry=r
        )
        self.backtest_wape.set(math.nan)
        self.backtest_coverage.set(math.nan)

    def record_success(
        self,
        *,
        seconds: float,
        finished_at: float,
        points: int,
        missing: int,
        backtest: dict[str, Any] | None,
        peak_upper: float,
    ) -> None:
        self.run_duration.observe(seconds)
        self.runs.labels(outcome="success").inc()
        self.last_success.set(finished_at)
        self.points_read.set(points)
        self.missing_points.set(missing)
        bt = backtest or {}
        self.backtest_wape.set(_num(bt.get("wape")))
        self.backtest_coverage.set(_num(bt.get("coverage")))
        self.peak_upper.set(peak_upper)

    def record_run(self, *, seconds: float, finished_at: float) -> None:
        """A successful run that is not one series' (a fleet run: its counts via :meth:`record_series`)."""
        self.run_duration.observe(seconds)
        self.runs.labels(outcome="success").inc()
        self.last_success.set(finished_at)

    def record_failure(self, *, seconds: float, finished_at: float) -> None:
        self.run_duration.observe(seconds)
        self.runs.labels(outcome="failure").inc()
        self.last_failure.set(finished_at)

    def record_series(self, *, succeeded: int, failed: int, skipped: int) -> None:
        """The per-series outcome counts of one fleet run."""
        for outcome, n in (("succeeded", succeeded), ("failed", failed), ("skipped", skipped)):
            self.series.labels(outcome=outcome).set(n)
            self.series_total.labels(outcome=outcome).inc(n)

    def record_skipped(self) -> None:
        self.runs.labels(outcome="skipped").inc()

    def serve(self, port: int, address: str = "0.0.0.0") -> tuple[Any, Any]:
        """Start the /metrics HTTP server in a daemon thread; returns (server, thread)."""
        return start_http_server(port, addr=address, registry=self.registry)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
