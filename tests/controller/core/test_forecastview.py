"""The per-artifact memo of the decision core: same answers as the plain code, never stale, never leaking."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pandas as pd
import pytest

from controller.config import WarmupConfig
from controller.core.forecastview import _MEMO, view
from controller.core.warmup import detect_ramps, planned_ramps
from forecaster.configbase import Duration
from tests.support.builders import T0, artifact

HOUR = pd.Timedelta(hours=1)


def wavy(n: int, seed: int, step: int = 300) -> list[float]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) * step / 3600.0
    return list(np.maximum(0.0, 500 + 400 * np.sin(t / 24 * 2 * np.pi * 4) + rng.normal(0, 80, n)))


@pytest.mark.parametrize(
    ("seed", "step", "threshold", "window"),
    [(0, 300, 0.3, HOUR), (1, 60, 0.2, HOUR / 2), (2, 3600, 0.3, HOUR), (3, 300, 0.5, 2 * HOUR),
     (4, 900, 0.1, HOUR / 4)],
    ids=["5min", "1min-short-window", "hourly-step-equals-window", "wide-window", "step-above-window"],
)
def test_memoised_ramps_equal_detect_ramps_for_every_lookahead(
    seed: int, step: int, threshold: float, window: pd.Timedelta
) -> None:
    values = wavy(2 * 86400 // step, seed, step)
    art = artifact([v * 1.2 for v in values], yhat=values, step=step)
    cfg = WarmupConfig(
        ramp_threshold=threshold, ramp_window=Duration(window.total_seconds()), lookahead=Duration(7200)
    )
    for k in range(0, 2 * 86400, 1800):
        now = T0 + pd.Timedelta(seconds=k)
        lo, hi = now - pd.Timedelta(seconds=step), now + pd.Timedelta(seconds=7200)
        want = detect_ramps(art.intervals, start=lo, end=hi, threshold=threshold, window=window)
        assert planned_ramps(art, now=now, config=cfg) == sorted(want, key=lambda r: r.start), now


def test_non_contiguous_artifact_falls_back_to_the_plain_detection() -> None:
    values = wavy(300, 5)
    art = artifact([v * 1.2 for v in values], yhat=values)
    gap = art.intervals[:100] + tuple(
        dataclasses.replace(i, ds=i.ds + 2 * HOUR) for i in art.intervals[100:]
    )
    holed = dataclasses.replace(art, intervals=gap)
    assert view(art).contiguous and not view(holed).contiguous
    cfg = WarmupConfig(lookahead=Duration(7200))
    for k in range(0, 20 * 3600, 900):
        now = T0 + pd.Timedelta(seconds=k)
        want = detect_ramps(holed.intervals, start=now - pd.Timedelta(minutes=5), end=now + 2 * HOUR,
                            threshold=0.3, window=HOUR)
        assert planned_ramps(holed, now=now, config=cfg) == want


def test_memo_is_per_object_and_dropped_with_the_artifact() -> None:
    one, two = artifact([100.0] * 12), artifact([200.0] * 12)
    assert one == artifact([100.0] * 12)  # equal artifacts are still different objects
    v1, v2 = view(one), view(two)
    assert view(one) is v1 and v1 is not v2 and v2.peak == [200.0] * 12
    key = id(one)
    del one, v1
    gc.collect()
    assert key not in _MEMO


@pytest.mark.parametrize(
    ("n", "seed"),
    [(1, 0), (2, 1), (7, 2), (64, 3), (300, 4)],
    ids=["one", "two", "odd", "power-of-two", "long"],
)
def test_range_max_matches_max_of_the_slice(n: int, seed: int) -> None:
    peaks = wavy(n, seed)
    fv = view(artifact(peaks, yhat=[p / 1.3 for p in peaks]))
    for lo in range(n):
        for hi in range(lo + 1, min(n, lo + 70) + 1):
            assert fv.range_max(lo, hi) == (max(fv.peak[lo:hi]), max(fv.yhat[lo:hi])), (lo, hi)
