"""The per-step conformal band and the coverage check that widens it when recent folds fall short."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.band import MIN_POOL, calibrate_steps, check_coverage, step_residuals
from forecaster.folds import FoldSet

HOUR = pd.Timedelta(hours=1)


def folds(noise_by_step: np.ndarray, n_folds: int = 14, seed: int = 1, recent_boost: float = 1.0) -> FoldSet:
    """Fold forecasts of a flat series whose errors grow with the step (newest fold first)."""
    rng = np.random.default_rng(seed)
    h = len(noise_by_step)
    yhat = np.full((n_folds, h), 100.0)
    scale = np.tile(noise_by_step, (n_folds, 1))
    scale[: n_folds // 2] *= recent_boost
    y = yhat + scale * rng.standard_normal((n_folds, h))
    cuts = tuple(pd.Timestamp("2026-01-30", tz="UTC") - pd.Timedelta(days=i) for i in range(n_folds))
    return FoldSet(cuts, HOUR, y, yhat, yhat * 0.9, yhat * 1.1)


def test_the_band_grows_with_lead_time_when_errors_do() -> None:
    fs = folds(np.linspace(1.0, 10.0, 24))
    cal = calibrate_steps(fs, 0.9)
    width = cal.q_upper - cal.q_lower
    assert width[-1] > 3 * width[0]
    assert cal.residuals == 14 * 24
    ds = pd.date_range("2026-02-01", periods=24, freq="h")
    out = cal.apply(pd.DataFrame({"ds": ds, "yhat": np.full(24, 100.0)}))
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    band = (out["yhat_upper"] - out["yhat_lower"]).to_numpy()
    assert band[-1] > 3 * band[0]


def test_each_step_pools_enough_residuals() -> None:
    fs = folds(np.ones(24))
    r = step_residuals(fs)
    assert r.shape == (14, 24) and np.isfinite(r).all()
    assert MIN_POOL <= 14 * 7  # three steps either side with 14 folds


def test_honest_coverage_is_near_nominal_and_nothing_is_widened() -> None:
    covs = []
    for seed in range(8):
        check = check_coverage(folds(np.linspace(1, 5, 24), seed=seed), 0.9)
        covs.append(check.coverage)
        assert check.widen >= 1.0
    assert 0.84 <= float(np.mean(covs)) <= 0.96


def test_recent_folds_that_fall_short_widen_the_band() -> None:
    fs = folds(np.full(24, 2.0), recent_boost=2.5, seed=4)
    check = check_coverage(fs, 0.9)
    assert check.recent < 0.87
    assert check.widen > 1.2
    assert check.coverage >= check.recent


@pytest.mark.parametrize("n_folds", [0, 1])
def test_too_few_folds_cannot_be_checked(n_folds: int) -> None:
    check = check_coverage(folds(np.ones(24), n_folds=n_folds), 0.9)
    assert check.widen == 1.0 and np.isnan(check.coverage)


def test_one_sort_gives_the_quantiles_of_each_steps_pool() -> None:
    from forecaster.band import _per_step, _quantiles

    rng = np.random.default_rng(8)
    r = rng.standard_normal((11, 24)) * np.linspace(1, 3, 24)
    r[3, 5:9] = np.nan  # a fold with missing actuals
    lo, hi = _per_step(r, 0.9)
    half = 5  # ceil((96 / 10 - 1) / 2): int(10.8) = 10 residuals per step
    for h in range(24):
        a, b = max(h - half, 0), min(h + half + 1, 24)
        assert (lo[h], hi[h]) == _quantiles(r[:, a:b].ravel(), 0.9)
