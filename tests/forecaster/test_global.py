"""One learned model across a batch: fitted once on every series' rows, honest in the backtest, a candidate
of each series' auto."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.backtest import cutoffs
from forecaster.batch import BatchSettings, earliest_cut, forecast_many
from forecaster.models.base import FitContext
from forecaster.models.global_learned import fit_global, global_factory

HOUR = pd.Timedelta(hours=1)
CTX = FitContext(HOUR, "UTC")


def series(scale: float, seed: int, days: int = 35) -> pd.DataFrame:
    end = pd.Timestamp("2026-03-01 23:00", tz="UTC")
    idx = pd.date_range(end=end, periods=days * 24, freq=HOUR, name="ds")
    y = scale * (2 + np.sin(np.pi * idx.hour / 24) ** 2 - 0.4 * (idx.day_of_week >= 5))
    y = y * np.random.default_rng(seed).lognormal(0, 0.05, len(idx))
    return pd.DataFrame({"ds": idx, "y": np.asarray(y, dtype=float)})


def test_one_model_serves_series_of_any_scale() -> None:
    batch = [(series(s, i), CTX) for i, s in enumerate((1.0, 50.0, 3000.0))]
    gm = fit_global([(h, c, earliest_cut(h, HOUR, 24, 14)) for h, c in batch], 24)
    assert gm.series == 3 and gm.alias == "lgbm_global"
    model = global_factory(gm)
    for hist, _ in batch:
        train, test = hist.iloc[:-24], hist["y"].to_numpy()[-24:]
        fc = model().fit(train, CTX).predict(24)["yhat"].to_numpy()
        assert np.abs(fc - test).sum() / test.sum() < 0.1


def test_the_backtest_regressor_never_saw_the_folds() -> None:
    batch = [(series(s, i), CTX) for i, s in enumerate((1.0, 50.0))]
    first_cut = min(cutoffs(batch[0][0]["ds"], HOUR, 24, 14))
    spoiled = []
    for hist, ctx in batch:
        h = hist.copy()
        late = (h["ds"] >= first_cut).to_numpy()
        h.loc[late, "y"] = h.loc[late, "y"] * 4
        spoiled.append((h, ctx))
    a = fit_global([(h, c, earliest_cut(h, HOUR, 24, 14)) for h, c in batch], 24, kind="ridge")
    b = fit_global([(h, c, earliest_cut(h, HOUR, 24, 14)) for h, c in spoiled], 24, kind="ridge")
    x = np.random.default_rng(0).random((10, len(a.names)))
    x[:, a.names.index("slot")] = np.arange(10)
    x[:, a.names.index("weekday")] = 2
    np.testing.assert_allclose(a.backtest.predict(x), b.backtest.predict(x))
    assert not np.allclose(a.final.predict(x), b.final.predict(x))


def test_a_batch_backtests_its_global_model_in_every_series_auto() -> None:
    frames = [series(s, i).assign(unique_id=f"s{i}") for i, s in enumerate((1.0, 40.0, 900.0))]
    long = pd.concat(frames, ignore_index=True)
    settings = BatchSettings(horizon=pd.Timedelta("24h"), global_model="ridge")
    result = forecast_many(long, settings)
    assert not result.failed
    for o in result.outcomes:
        assert o.scores is not None and "ridge_global" in o.scores.index
        assert np.isfinite(o.scores.loc["ridge_global", "wape"])
