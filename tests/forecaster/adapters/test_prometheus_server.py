"""PrometheusSource against a real Prometheus server loaded with a known trace (see
tests/support/promserver.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.adapters.prometheus import PrometheusConfig, PrometheusSource
from forecaster.errors import SourceError
from tests.support.promserver import GAP, NAN_AT, PromServer, prometheus_server  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]


def _source(server: PromServer, query: str | None = None, **kw: object) -> PrometheusSource:
    cfg = PrometheusConfig(url=server.url, query=query or server.metric, step=300, retries=0, **kw)  # type: ignore[arg-type]
    return PrometheusSource(cfg)


@pytest.mark.parametrize(
    "per_request", [11_000, 100, 7, 2], ids=["one-request", "chunks-100", "chunks-7", "chunks-2"]
)
def test_round_trip_equals_trace_across_chunks_and_gap(prom: PromServer, per_request: int) -> None:
    trace = prom.trace
    src = _source(prom, max_points_per_request=per_request)
    got = src.history(trace.index[0], trace.index[-1], prom.step)
    assert got.index.equals(trace.index), "one sample per step, no duplicated or dropped boundary"
    np.testing.assert_array_equal(got.to_numpy(), trace.to_numpy())  # NaN in the same places, values exact
    assert got.iloc[GAP[0] : GAP[1]].isna().all() and not (got == 0).any()
    report = src.last_report
    assert report is not None
    assert report.missing == GAP[1] - GAP[0] + 1
    assert report.non_finite == 1, "the NaN sample is reported"
    assert report.requests == math.ceil(len(trace) / per_request)


def test_window_inside_the_trace_is_aligned_to_the_step(prom: PromServer) -> None:
    trace = prom.trace
    src = _source(prom, max_points_per_request=50)
    start = trace.index[10] + pd.Timedelta(seconds=17)  # off-grid: rounds up to the next step
    end = trace.index[300] + pd.Timedelta(seconds=299)
    got = src.history(start, end, prom.step)
    expected = trace.iloc[11:301]
    assert got.index.equals(expected.index)
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
    assert math.isnan(got[trace.index[NAN_AT]])


def test_two_series_are_named_with_a_sum_hint(prom: PromServer) -> None:
    trace = prom.trace
    src = _source(prom, query=prom.multi_metric)
    with pytest.raises(SourceError) as err:
        src.history(trace.index[0], trace.index[50], prom.step)
    text = str(err.value)
    assert 'pod="recharge-a"' in text and 'pod="recharge-b"' in text and "sum(" in text


def test_sum_of_two_series_is_one_series(prom: PromServer) -> None:
    trace = prom.trace
    src = _source(prom, query=f"sum({prom.multi_metric})")
    got = src.history(trace.index[0], trace.index[23], prom.step)
    assert got.tolist() == [2.0] * 24


def test_window_with_no_data_is_an_error(prom: PromServer) -> None:
    src = _source(prom)
    with pytest.raises(SourceError, match="no samples between"):
        src.history(
            pd.Timestamp("2013-01-01", tz="UTC"), pd.Timestamp("2013-01-02", tz="UTC"), pd.Timedelta("5min")
        )


def test_bad_promql_reports_error_type(prom: PromServer) -> None:
    src = _source(prom, query="sum(rate(")
    with pytest.raises(SourceError, match="bad_data"):
        src.history(
            pd.Timestamp("2014-07-01", tz="UTC"), pd.Timestamp("2014-07-02", tz="UTC"), pd.Timedelta("5min")
        )


def test_instant_reads_one_value(prom: PromServer) -> None:
    trace = prom.trace
    src = _source(prom)
    assert src.instant(prom.metric, trace.index[5]) == trace.iloc[5]
    with pytest.raises(SourceError, match="no series"):
        src.instant(prom.metric, trace.index[GAP[0] + 2])
    with pytest.raises(SourceError, match="not a finite number"):
        src.instant(prom.metric, trace.index[NAN_AT])
