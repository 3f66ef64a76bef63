"""A read-only, precomputed view of a forecast artifact for the decision core's hot path.

:func:`controller.decision.decide` runs every loop tick (and the simulator replays it tens of thousands of
times over a month), while the artifact it reads changes only when the forecast job stores a new one. So the
per-artifact work is done once and memoised on the artifact object: interval starts as int64 nanoseconds
(plain ``int`` lists for ``bisect``), the ``yhat``/``peak_upper`` values, whether the intervals are
contiguous, and the ramps of the whole horizon per (threshold, window). Timestamps compare as nanoseconds
since the epoch (UTC), which is exactly how tz-aware ``pd.Timestamp`` values compare.

The memo is keyed on the artifact's identity and dropped when the artifact is garbage-collected, so it
holds nothing alive and never returns a view of another artifact. Pure: no clock, no I/O.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import weakref
from dataclasses import dataclass, field

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

    def window(self, start_ns: int, end_ns: int) -> tuple[int, int]:
        """Index range of the intervals that end after ``start_ns`` and start before ``end_ns``."""
        return bisect.bisect_right(self.ds, start_ns - self.step), bisect.bisect_left(self.ds, end_ns)

    def max_peak(self, lo: int, hi: int) -> float:
        return max(self.peak[lo:hi])

    def ramps(self, threshold: float, window_ns: int) -> RampIndex:
        """All ramps of the horizon (same rule as :func:`controller.warmup.detect_ramps`), memoised."""
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


_MEMO: dict[int, tuple[weakref.ref[ForecastArtifact], ForecastView]] = {}


def view(artifact: ForecastArtifact) -> ForecastView:
    """The memoised view of ``artifact`` (built on first use, forgotten when the artifact is collected)."""
    key = id(artifact)
    hit = _MEMO.get(key)
    if hit is not None and hit[0]() is artifact:
        return hit[1]
    ivs = artifact.intervals
    ds = [int(i.ds.value) for i in ivs]
    step = int(artifact.interval_seconds) * NS
    v = ForecastView(
        ds=ds,
        yhat=[i.yhat for i in ivs],
        peak=[i.peak_upper for i in ivs],
        step=step,
        contiguous=all(b - a == step for a, b in itertools.pairwise(ds)),
    )
    def forget(_ref: weakref.ref[ForecastArtifact], k: int = key) -> None:
        _MEMO.pop(k, None)

    _MEMO[key] = (weakref.ref(artifact, forget), v)
    return v
