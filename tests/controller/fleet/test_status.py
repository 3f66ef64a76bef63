"""The scaler status's next peak: the memoised lookup gives the interval a plain scan gives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from controller.fleet.status import forecast_status, next_peak
from forecaster.artifact import ForecastArtifact, Interval
from tests.controller.fleet.conftest import artifact


def scan(forecast: ForecastArtifact, now: pd.Timestamp) -> tuple[pd.Timestamp, float] | None:
    """The reference: every interval not yet over, the first of the highest ``peak_upper``."""
    step = pd.Timedelta(seconds=forecast.interval_seconds)
    ahead = [i for i in forecast.intervals if i.ds + step > now]
    if not ahead:
        return None
    best = max(ahead, key=lambda i: i.peak_upper)
    return best.ds, float(best.peak_upper)


def with_peaks(base: ForecastArtifact, peaks: np.ndarray) -> ForecastArtifact:
    pairs = zip(base.intervals, peaks, strict=True)
    ivs = tuple(Interval(i.ds, p / 2, p / 3, p / 2, float(p)) for i, p in pairs)
    return replace(base, intervals=ivs)


@pytest.mark.parametrize("seed", range(6))
def test_next_peak_equals_a_scan_at_every_moment(seed: int) -> None:
    rng = np.random.default_rng(seed)
    now = pd.Timestamp("2026-12-01T12:02:00Z")
    base = artifact(now, 100.0, hours=6)
    peaks = rng.integers(1, 6, len(base.intervals)).astype(float) * 10  # few values: many ties
    fc = with_peaks(base, peaks)
    start, end = fc.intervals[0].ds, fc.intervals[-1].ds + pd.Timedelta(minutes=5)
    moments = [start - pd.Timedelta(hours=1), start, end - pd.Timedelta(seconds=1), end,
               end + pd.Timedelta(days=1)]
    moments += [start + pd.Timedelta(seconds=int(s)) for s in rng.integers(0, 6 * 3600 + 300, 60)]
    for t in moments:
        assert next_peak(fc, t) == scan(fc, t), t
    assert next_peak(fc, end) is None


def test_forecast_status_names_the_next_peak() -> None:
    now = pd.Timestamp("2026-12-01T12:02:00Z")
    fc = artifact(now, 1000.0, peak_at=10)
    status = forecast_status(fc, now)
    assert status["nextPeakRate"] == pytest.approx(1320.0)  # 1,000 x 1.1 (the peak) x 1.2 (peak band)
    assert status["nextPeakTime"] == "2026-12-01T12:45:00Z"  # interval 10 from 11:55
    later = forecast_status(fc, pd.Timestamp("2026-12-01T12:50:00Z"))
    assert later["nextPeakRate"] == pytest.approx(1200.0)  # the peak is over: the first of the rest
    assert later["nextPeakTime"] == "2026-12-01T12:50:00Z"  # 12:45-12:50 has ended
