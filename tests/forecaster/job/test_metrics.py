"""JobMetrics: the series an SRE alerts on, in a private registry, served over HTTP."""

from __future__ import annotations

import math

import requests

from forecaster.job.metrics import JobMetrics


def test_success_and_failure_are_recorded_and_served() -> None:
    m = JobMetrics()
    assert math.isnan(m.backtest_wape._value.get()), "no backtest yet: NaN, not a fake zero"
    m.record_failure(seconds=3.0, finished_at=100.0)
    m.record_success(
        seconds=12.0,
        finished_at=200.0,
        points=8064,
        missing=3,
        backtest={"wape": 0.07, "coverage": 0.88},
        peak_upper=1400.0,
    )
    server, _thread = m.serve(0, "127.0.0.1")
    try:
        text = requests.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    for line in (
        'recharge_forecast_job_runs_total{outcome="success"} 1.0',
        'recharge_forecast_job_runs_total{outcome="failure"} 1.0',
        'recharge_forecast_job_runs_total{outcome="skipped"} 0.0',
        "recharge_forecast_job_last_success_timestamp_seconds 200.0",
        "recharge_forecast_job_last_failure_timestamp_seconds 100.0",
        "recharge_forecast_job_history_points 8064.0",
        "recharge_forecast_job_history_missing_points 3.0",
        "recharge_forecast_job_backtest_wape 0.07",
        "recharge_forecast_job_backtest_coverage 0.88",
        "recharge_forecast_job_forecast_peak_upper 1400.0",
        "recharge_forecast_job_run_duration_seconds_count 2.0",
    ):
        assert line in text, line


def test_registries_are_independent() -> None:
    a, b = JobMetrics(), JobMetrics()
    a.record_skipped()
    assert b.runs.labels(outcome="skipped")._value.get() == 0
