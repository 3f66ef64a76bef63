"""Tests of replica counts kept as runs: expanding gives back the array, the ready counts follow the rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.planning.runs import Runs, sliding_min


def plain_ready(requested: np.ndarray, lead: int, initial: int) -> np.ndarray:
    """``ready[i] = min(requested[i - lead .. i])`` as written, ``initial`` before step 0."""
    out = []
    for i in range(len(requested)):
        window = [initial if j < 0 else int(requested[j]) for j in range(i - lead, i + 1)]
        out.append(min(window))
    return np.asarray(out, dtype=np.int64)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 6), max_size=120), lo=st.integers(-3, 130), width=st.integers(0, 130))
def test_runs_expand_to_the_array(values: list[int], lo: int, width: int) -> None:
    v = np.asarray(values, dtype=np.int64)
    r = Runs.of(v)
    assert r.expand().tolist() == values
    assert r.expand(lo, lo + width).tolist() == values[max(lo, 0) : max(lo + width, 0)]
    assert r.step_sum() == int(v.sum())
    assert r.changes == int(np.count_nonzero(np.diff(v))) if len(v) > 1 else r.changes == 0
    assert r.max == (int(v.max()) if len(v) else 0)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.integers(0, 9), min_size=1, max_size=90),
    lead=st.integers(0, 12),
    initial=st.integers(0, 9),
    chunk=st.sampled_from([1, 3, 7, 64]),
)
def test_sliding_min_in_chunks_is_the_rule(values: list[int], lead: int, initial: int, chunk: int) -> None:
    """Chunk boundaries (any chunk size) change nothing: each chunk reads the ``lead`` steps before it."""
    v = np.asarray(values, dtype=np.int64)
    got = sliding_min(Runs.of(v), lead, initial, chunk=chunk).expand()
    assert got.tolist() == plain_ready(v, lead, initial).tolist()


def test_a_year_of_steps_is_kept_small() -> None:
    """Two million steps with a few thousand changes take kilobytes, not the 17 MB of the array."""
    rng = np.random.default_rng(1)
    changes = np.sort(rng.choice(2_102_400, 7_000, replace=False))
    v = np.zeros(2_102_400, dtype=np.int64)
    v[changes] = rng.integers(1, 5, size=len(changes))
    v = np.cumsum(v) % 50
    r = Runs.of(v)
    assert r.starts.nbytes + r.values.nbytes < 200_000
    assert np.array_equal(r.expand(), v)
