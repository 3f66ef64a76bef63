"""The array folds give the numbers the long-frame backtest gives (same formulas, different container)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster import backtest
from forecaster.folds import FoldSet, cross_coverage


def _fold_set(rng: np.random.Generator) -> FoldSet:
    f, h = int(rng.integers(1, 16)), int(rng.integers(1, 30))
    y = rng.lognormal(2, 0.5, (f, h))
    yhat = y * rng.lognormal(0, 0.25, (f, h))
    if rng.random() < 0.4:
        y[rng.random((f, h)) < rng.random()] = np.nan  # steps without an actual, whole folds included
    if rng.random() < 0.1:
        yhat[:] = 0.0
    cuts = tuple(pd.Timestamp("2026-03-01", tz="UTC") - pd.Timedelta(days=i) for i in range(f))
    return FoldSet(cuts, pd.Timedelta(hours=1), y, yhat, 0.8 * yhat, 1.2 * yhat)


@pytest.mark.parametrize("seed", range(5))
def test_leave_one_fold_out_coverage_equals_the_frame_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(200):
        fs = _fold_set(rng)
        if len(fs) == 0:
            continue
        level, widen = float(rng.choice([0.5, 0.8, 0.9, 0.95])), float(rng.choice([1.0, 1.25]))
        got = cross_coverage(fs, level, widen=widen)
        want = backtest.cross_coverage(fs.frame(), level, widen=widen)
        assert got == want or (math.isnan(got) and math.isnan(want))
        checked += 1
    assert checked > 100
