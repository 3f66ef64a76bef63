"""The error table for availability targets: conformal quantiles by lead, honest coverage, artifact I/O."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecaster.artifact import ErrorQuantiles, ForecastArtifact
from forecaster.band import StepCalibration, calibrate_steps, step_residuals
from forecaster.errors import StoreError
from forecaster.folds import FoldSet, from_frame
from forecaster.residuals import LEAD_EDGES, LEVELS, error_table, lead_residuals, quantile_table
from tests.forecaster.test_artifact import make_artifact

FREQ = pd.Timedelta(hours=1)


def folds(n_folds: int, steps: int, *, seed: int = 0, spread: float = 10.0) -> FoldSet:
    """Backtest folds with yhat 100 and normal errors whose spread grows with the step."""
    rng = np.random.default_rng(seed)
    rows = []
    cuts = [pd.Timestamp("2026-03-01T00:00Z") - pd.Timedelta(days=f) for f in range(n_folds)]  # newest first
    for cut in cuts:
        for k in range(1, steps + 1):
            err = rng.normal(0.0, spread * (1 + k / steps))
            rows.append({"cutoff": cut, "step": k, "ds": cut + (k - 1) * FREQ, "y": 100.0 + err,
                         "yhat": 100.0, "yhat_lower": 90.0, "yhat_upper": 110.0})
    return from_frame(pd.DataFrame(rows), cuts, steps, FREQ)


def test_lead_residuals_are_the_bands_residuals_with_their_leads() -> None:
    f = folds(3, 24)
    labels, leads, r = lead_residuals(f)
    band = step_residuals(f)
    assert np.allclose(r, band.ravel())
    assert leads.min() == 0.0 and leads.max() == 23 * 3600.0 and list(leads[:3]) == [0.0, 3600.0, 7200.0]
    assert np.allclose(r[:24], (f.y[0] - 100.0) / 100.0)  # scale(100) = sqrt(100 x 100)
    assert set(labels) == {0, 1, 2}


def test_quantiles_are_conformal_per_bucket_with_a_pooled_fallback() -> None:
    r = np.arange(1.0, 1001.0)  # 1..1000
    leads = np.where(r <= 100, 0.0, 7 * 3600.0)  # 100 in the first bucket, 900 in the 6-12 h bucket
    table = quantile_table(leads, r)
    j90, j99, j995 = LEVELS.index(0.9), LEVELS.index(0.99), LEVELS.index(0.995)
    assert table[0, j90] == 91.0  # ceil(101 * 0.9) = 91st of 1..100
    assert table[0, j99] == 100.0  # ceil(101 * 0.99) = 100th: 100 residuals just support 99%
    assert table[0, j995] == 996.0  # but not 99.5% (needs 199): the pooled ceil(1001 * .995) = 996th
    assert table[3, j99] == 1000.0 - 900 + math.ceil(901 * 0.99)  # the bucket's own 892nd of 101..1000
    assert table[1, j90] == 901.0  # an empty bucket uses the pool
    assert table[0, LEVELS.index(0.999)] == 1000.0  # the pool cannot support 99.9% (needs 999): its largest
    assert (np.diff(table, axis=1) >= 0).all()


def test_table_quantiles_band_scale_coverage_and_refusals() -> None:
    f = folds(14, 24)
    cal = calibrate_steps(f, 0.9)
    table = error_table(f, cal)
    assert table is not None and table.problem() is None
    assert table.levels == LEVELS and table.lead_seconds == LEAD_EDGES
    assert sum(table.residuals) == 14 * 24
    _, leads, r = lead_residuals(f)
    assert np.allclose(np.asarray(table.quantiles), quantile_table(leads, r), atol=1e-5)
    assert np.allclose(table.band_upper, cal.q_upper, atol=1e-5) and len(table.band_upper) == 24
    # coverage is honest (each fold judged by the others) and close to the level for iid errors
    for level, cov in zip(LEVELS[:5], table.coverage[:5], strict=True):
        assert abs(cov - level) < 0.05, (level, cov)
    wide = error_table(f, StepCalibration(cal.q_lower, cal.q_upper, 0.9, cal.residuals, widen=1.5))
    assert wide is not None and all(w >= c for w, c in zip(wide.coverage, table.coverage, strict=True))
    one = FoldSet(f.cutoffs[:1], FREQ, f.y[:1], f.yhat[:1], f.lower[:1], f.upper[:1])
    assert error_table(one, cal) is None  # one fold: no fold to judge it by, no honest share


def test_wider_errors_at_longer_leads_give_larger_quantiles() -> None:
    f = folds(40, 24, seed=3)
    table = error_table(f, calibrate_steps(f, 0.9))
    assert table is not None
    j = LEVELS.index(0.9)
    assert table.quantiles[4][j] > table.quantiles[0][j]  # 12-24 h ahead vs the first hour


def test_lookup_by_lead_step_and_level() -> None:
    t = ErrorQuantiles((0.9, 0.99), (0.0, 3600.0), ((1.0, 2.0), (3.0, 5.0)), (1.0, 2.0, 0.0), (10, 10),
                       (0.88, 0.97))
    assert t.multiple(0.9, 0.0, 0) == 1.0 and t.multiple(0.99, 3599.0, 0) == 2.0
    assert t.multiple(0.99, 3600.0, 1) == 2.5  # the 1 h bucket's 5.0 over the band's 2.0 at step 1
    assert t.multiple(0.99, 86400.0, 1) == 2.5
    assert t.multiple(0.945, 0.0, 0) == pytest.approx(1.5)
    assert t.multiple(0.5, 0.0, 0) == 1.0 and t.multiple(0.999, 0.0, 0) == 2.0  # clamped to the table
    assert t.multiple(0.99, 7200.0, 2) == 0.0 and t.multiple(0.99, 7200.0, 9) == 0.0  # no band width there
    assert t.achieved(0.945) == pytest.approx(0.925)


def with_table() -> ForecastArtifact:
    t = ErrorQuantiles((0.9, 0.99), (0.0, 3600.0), ((1.0, 2.0), (3.0, 5.0)), (0.5, 0.6), (10, 12),
                       (0.88, 0.97))
    return replace(make_artifact(), error_quantiles=t)


def test_artifact_round_trip_and_older_documents() -> None:
    art = with_table()
    assert ForecastArtifact.from_json(art.to_json()) == art
    doc = json.loads(make_artifact().to_json())
    assert "error_quantiles" not in doc  # written only when there is a table
    assert ForecastArtifact.from_dict(doc).error_quantiles is None  # an older job's artifact still reads
    doc["error_quantiles"] = None
    assert ForecastArtifact.from_dict(doc).error_quantiles is None


@pytest.mark.parametrize(("key", "value", "message"), [
    ("levels", [0.99, 0.9], "levels must be ascending in (0, 1)"),
    ("lead_seconds", [60.0, 3600.0], "lead_seconds must be ascending from 0"),
    ("quantiles", [[1.0, 2.0]], "quantiles and residuals need one row per lead bucket"),
    ("coverage", [0.9], "quantiles rows and coverage need one value per level"),
    ("quantiles", [[2.0, 1.0], [3.0, 5.0]], "quantiles must not decrease with the level"),
    ("quantiles", [[1.0, float("nan")], [3.0, 5.0]], "values must be finite"),
    ("band_upper", [], "band_upper needs one finite value >= 0 per horizon step"),
    ("band_upper", [0.5, -1.0], "band_upper needs one finite value >= 0 per horizon step"),
])
def test_a_bad_table_refuses_the_artifact(key: str, value: object, message: str) -> None:
    doc = json.loads(with_table().to_json())
    doc["error_quantiles"][key] = value
    with pytest.raises(StoreError, match=r"error_quantiles: " + re.escape(message)):
        ForecastArtifact.from_dict(doc)
