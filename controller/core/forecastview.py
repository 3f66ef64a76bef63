"""A read-only, precomputed view of a forecast artifact for the decision core's hot path.

:func:`controller.core.decision.decide` runs every loop tick (and the simulator replays it tens of thousands
of
times over a month), while the artifact it reads changes only when the forecast job stores a new one. So the
per-artifact work is done once and memoised on the artifact object: interval starts as int64 nanoseconds
(plain ``int`` lists for ``bisect``), the ``yhat``/``peak_upper`` values, whether the intervals are
contiguous, sparse tables for constant-time range maxima (ramp anticipation looks two hours ahead every tick),
the ramps of the whole horizon per (threshold, window) and other per-artifact values in ``derived``.
Timestamps compare as nanoseconds since the epoch (UTC), which is exactly how tz-aware ``pd.Timestamp``
values compare. :func:`per_object` is the same identity memo for per-config values.

The memo is keyed on the artifact's identity and dropped when the artifact is garbage-collected, so it
holds nothing alive and never returns a view of another artifact. Pure: no clock, no I/O.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from forecaster.artifact import ForecastArtifact

NS = 1_000_000_000


@functools.lru_cache(maxsize=256)
def seconds_ns(seconds: float) -> int:
    """Nanoseconds of ``pd.Timedelta(seconds=float(seconds))`` (same rounding); memoised, spans are few."""
    return int(pd.Timedelta(seconds=float(seconds)).value)


@dataclass(frozen=True, eq=False)
class RampIndex:
    """Every forecast ramp of an artifact for one (threshold, window), by crossing time."""

    crossing_ns: list[int]  # ascending
    start_idx: list[int]  # index of the interval where the ramp starts
    crossing_idx: list[int]
    base_idx: list[int]  # the lowest interval before the ramp


@dataclass(frozen=True, eq=False)
class ForecastView:
    """Lists of one artifact (values as stored). ``ds``: interval starts in ns; ``step``: the width in ns.

    It holds no reference to the artifact itself, so the memo entry never keeps an artifact alive.
    """

    ds: list[int]
    yhat: list[float]
    peak: list[float]
    step: int
    contiguous: bool  # every interval starts one step after the previous one
    _ramps: dict[tuple[float, int], RampIndex] = field(default_factory=dict)
    _tables: dict[str, list[list[float]]] = field(default_factory=dict)
    derived: dict[Any, Any] = field(default_factory=dict)  # other per-artifact values, keyed by their users

    def window(self, start_ns: int, end_ns: int) -> tuple[int, int]:
        """Index range of the intervals that end after ``start_ns`` and start before ``end_ns``."""
        return bisect.bisect_right(self.ds, start_ns - self.step), bisect.bisect_left(self.ds, end_ns)

    def max_peak(self, lo: int, hi: int) -> float:
        return max(self.peak[lo:hi])

    def range_max(self, lo: int, hi: int) -> tuple[float, float]:
        """``(max(peak[lo:hi]), max(yhat[lo:hi]))`` (``lo < hi``) in constant time (sparse tables built on
        first use): ramp anticipation asks for two hours ahead on every tick."""
        tables = self._tables
        if not tables:
            tables["peak"], tables["yhat"] = _sparse_table(self.peak), _sparse_table(self.yhat)
        peaks, means = tables["peak"], tables["yhat"]
        if not peaks or not means:  # a NaN: keep max()'s own answer, which depends on the order
            return max(self.peak[lo:hi]), max(self.yhat[lo:hi])
        k = (hi - lo).bit_length() - 1
        j = hi - (1 << k)
        level = peaks[k]
        a, b = level[lo], level[j]
        peak = b if b > a else a
        level = means[k]
        a, b = level[lo], level[j]
        return peak, b if b > a else a

    def ramps(self, threshold: float, window_ns: int) -> RampIndex:
        """All ramps of the horizon (same rule as :func:`controller.core.warmup.detect_ramps`), memoised."""
        key = (threshold, window_ns)
        found = self._ramps.get(key)
        if found is None:
            found = self._detect(threshold, window_ns)
            self._ramps[key] = found
        return found

    def _detect(self, threshold: float, win: int) -> RampIndex:
        # The loop of detect_ramps over the whole horizon (no look-ahead cut), kept on plain lists.
        values, stamps = self.yhat, self.ds
        out = RampIndex([], [], [], [])
        prev_flag = False
        lo = 0
        for i, cur_ns in enumerate(stamps):
            while lo < i and stamps[lo] < cur_ns - win:
                lo += 1
            flag = False
            base_idx = -1
            if lo < i:
                back = values[lo:i]
                base = min(back)
                base_idx = i - 1 - back[::-1].index(base)
                flag = values[i] > base * (1.0 + threshold) if base > 0 else values[i] > 0
            if flag and not prev_flag:
                out.crossing_ns.append(cur_ns)
                out.start_idx.append(base_idx + 1)
                out.crossing_idx.append(i)
                out.base_idx.append(base_idx)
            prev_flag = flag
        return out


def _sparse_table(values: list[float]) -> list[list[float]]:
    """``levels[k][i] = max(values[i : i + 2**k])`` for every k (empty when a value is NaN)."""
    if any(v != v for v in values):
        return []
    levels = [values]
    width = 1
    while 2 * width <= len(values):
        prev = levels[-1]
        levels.append(list(map(max, prev, prev[width:])))
        width *= 2
    return levels


_MEMO: dict[int, tuple[weakref.ref[ForecastArtifact], ForecastView]] = {}
_K = TypeVar("_K")
_V = TypeVar("_V")


def per_object(memo: dict[int, tuple[weakref.ref[Any], _V]], obj: _K, build: Callable[[_K], _V]) -> _V:
    """``build(obj)``, memoised in ``memo`` on the identity of ``obj`` (weakly: forgotten with it).

    For values derived from immutable objects (an artifact, a config) on a path that runs every tick, where
    hashing the object itself would cost more than the work saved.
    """
    hit = memo.get(id(obj))
    if hit is not None and hit[0]() is obj:
        return hit[1]
    key = id(obj)
    value = build(obj)

    def forget(_ref: weakref.ref[Any], k: int = key) -> None:
        memo.pop(k, None)

    memo[key] = (weakref.ref(obj, forget), value)
    return value


def view(artifact: ForecastArtifact) -> ForecastView:
    """The memoised view of ``artifact`` (built on first use, forgotten when the artifact is collected)."""
    hit = _MEMO.get(id(artifact))  # per_object's hit path, inlined: this runs several times per decision
    if hit is not None and hit[0]() is artifact:
        return hit[1]
    return per_object(_MEMO, artifact, _build)


def _build(artifact: ForecastArtifact) -> ForecastView:
    ivs = artifact.intervals
    ds = [int(i.ds.value) for i in ivs]
    step = int(artifact.interval_seconds) * NS
    return ForecastView(
        ds=ds,
        yhat=[i.yhat for i in ivs],
        peak=[i.peak_upper for i in ivs],
        step=step,
        contiguous=all(b - a == step for a, b in itertools.pairwise(ds)),
    )
