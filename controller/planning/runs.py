"""Values over a simulation grid, kept as runs of equal values: the demand, the replica counts.

Why this module exists: a replay on a 15 s grid has two million steps per simulated year, but an hourly
trace's rate changes 8,760 times and the replicas a policy requests a few thousand times. Kept as arrays,
the demand, every policy's requested and ready counts and the temporaries of measuring them grow the memory
of a long replay by hundreds of megabytes per year; kept as runs (where each value starts, and the value)
they take kilobytes, and the policies and the measuring walk the grid in bounded chunks. :class:`Runs`
expands to an array only where a caller asks for one (a chart, a test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 1 << 18  # grid steps expanded at once (2 MiB per int64 array)


@dataclass(frozen=True)
class Runs:
    """``values[j]`` holds from step ``starts[j]`` to the next start (the last to ``n``)."""

    starts: np.ndarray  # int64, increasing, starts[0] == 0 when n > 0
    values: np.ndarray  # int64 (counts) or float64 (rates)
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> Runs:
        """The runs of a per-step array (integers stay int64, anything else is float64)."""
        v = np.asarray(values)
        v = v.astype(np.int64) if v.dtype.kind in "biu" else v.astype(np.float64)
        if len(v) == 0:
            return cls(np.zeros(0, np.int64), v, 0)
        starts = np.concatenate([[0], np.flatnonzero(v[1:] != v[:-1]) + 1]).astype(np.int64)
        return cls(starts, v[starts], len(v))

    @classmethod
    def blocks(cls, values: np.ndarray, width: int) -> Runs:
        """``values[j]`` held for ``width`` steps each (a trace interval of ``width`` grid steps)."""
        v = np.asarray(values, dtype=np.float64)
        keep = np.concatenate([[True], v[1:] != v[:-1]]) if len(v) else np.zeros(0, bool)
        return cls(np.flatnonzero(keep).astype(np.int64) * width, v[keep], len(v) * width)

    def at(self, steps: np.ndarray) -> np.ndarray:
        """The values at the given steps (each in ``0 .. n - 1``)."""
        return self.values[np.searchsorted(self.starts, steps, side="right") - 1]

    def expand(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The per-step values of steps ``lo .. hi - 1``."""
        hi = self.n if hi is None else min(hi, self.n)
        lo = max(lo, 0)
        if hi <= lo:
            return np.zeros(0, self.values.dtype)
        first = int(np.searchsorted(self.starts, lo, side="right")) - 1
        last = int(np.searchsorted(self.starts, hi, side="left"))
        bounds = np.clip(np.append(self.starts[first:last], hi), lo, hi)
        return np.repeat(self.values[first:last], np.diff(bounds))

    def __len__(self) -> int:
        return self.n

    @property
    def changes(self) -> int:
        """How many times the value changes."""
        return max(len(self.starts) - 1, 0)

    @property
    def max(self) -> int:
        return int(self.values.max()) if len(self.values) else 0

    def step_sum(self) -> float:
        """The sum of the per-step values (replica-steps, or the rate summed over the steps)."""
        lengths = np.diff(np.append(self.starts, self.n))
        return float((self.values * lengths).sum())


def sliding_min(requested: Runs, lead: int, initial: int, *, chunk: int = CHUNK) -> Runs:
    """``ready[i] = min(requested[i - lead .. i])`` with ``initial`` before step 0, ``chunk`` steps at a time
    (each chunk also reads the ``lead`` steps before it)."""
    if lead <= 0:
        return requested
    out: list[Runs] = []
    for lo in range(0, requested.n, chunk):
        window = requested.expand(lo - lead, lo + chunk)
        pad = lead - min(lo, lead)
        if pad:
            window = np.concatenate([np.full(pad, initial, dtype=np.int64), window])
        out.append(Runs.of(np.lib.stride_tricks.sliding_window_view(window, lead + 1).min(axis=1)))
    return concat(out, requested.n)


def sliding_max_ahead(runs: Runs, lead: int, *, chunk: int = CHUNK) -> Runs:
    """``out[i] = max(runs[i .. i + lead])``, the last value held past the end, ``chunk`` steps at a time."""
    if lead <= 0 or runs.n == 0:
        return runs
    last = runs.values[-1]
    out: list[Runs] = []
    for lo in range(0, runs.n, chunk):
        hi = min(lo + chunk, runs.n)
        window = runs.expand(lo, hi + lead)
        short = hi + lead - min(hi + lead, runs.n)
        if short:
            window = np.concatenate([window, np.full(short, last, dtype=window.dtype)])
        out.append(Runs.of(np.lib.stride_tricks.sliding_window_view(window, lead + 1).max(axis=1)))
    return concat(out, runs.n)


class Recorder:
    """Runs built step by step: a policy says the value at a step, kept only where it changes."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.values: list[int] = []

    def set(self, step: int, value: int) -> None:
        if not self.values or self.values[-1] != value:
            self.starts.append(step)
            self.values.append(value)

    def runs(self, n: int) -> Runs:
        return Runs(np.asarray(self.starts, dtype=np.int64), np.asarray(self.values, dtype=np.int64), n)


def concat(parts: list[Runs], n: int) -> Runs:
    """Consecutive runs joined (equal neighbours merged)."""
    starts, values, offset = [], [], 0
    for p in parts:
        starts.append(p.starts + offset)
        values.append(p.values)
        offset += p.n
    if not starts:
        return Runs(np.zeros(0, np.int64), np.zeros(0, np.float64), n)
    s, v = np.concatenate(starts), np.concatenate(values)
    keep = np.concatenate([[True], v[1:] != v[:-1]]) if len(v) else np.zeros(0, bool)
    return Runs(s[keep], v[keep], n)
