"""The numpy group statistics cleaning uses give what pandas' groupby gives, NaN and empty groups included."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.series.groups import SortedGroups, dense, group_mean, group_sum

values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan")), st.sampled_from([0.0, 1.0]))


@st.composite
def grouped(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    keys = np.array(draw(st.lists(st.integers(-3, 9), min_size=n, max_size=n)), dtype=np.int64)
    vals = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=float)
    return keys, vals


@settings(max_examples=300, deadline=None)
@given(grouped(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]))
def test_median_and_quantile_match_pandas(data: tuple[np.ndarray, np.ndarray], q: float) -> None:
    keys, vals = data
    codes = dense(keys)
    g = SortedGroups(codes, vals)
    by = pd.Series(vals).groupby(keys)
    np.testing.assert_array_equal(g.median()[codes], by.transform("median").to_numpy())
    want = by.quantile(q).reindex(keys).to_numpy()
    np.testing.assert_allclose(g.quantile(q)[codes], want, rtol=1e-12, atol=1e-9, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(grouped())
def test_sum_and_mean_match_pandas(data: tuple[np.ndarray, np.ndarray]) -> None:
    keys, vals = data
    vals = np.nan_to_num(vals)  # what cleaning sums has no NaN
    codes = dense(keys)
    by = pd.Series(vals).groupby(keys)
    np.testing.assert_allclose(group_sum(codes, vals), by.transform("sum").to_numpy(), rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(group_mean(codes, vals), by.transform("mean").to_numpy(), rtol=1e-12,
                               atol=1e-6)


def test_a_group_without_values_is_nan_not_zero() -> None:
    codes = np.array([0, 0, 1, 1, 1])
    vals = np.array([np.nan, np.nan, 3.0, 1.0, 2.0])
    g = SortedGroups(codes, vals)
    assert np.isnan(g.median()[0]) and g.median()[1] == 2.0
    assert np.isnan(g.quantile(0.1)[0]) and g.quantile(0.5)[1] == 2.0
