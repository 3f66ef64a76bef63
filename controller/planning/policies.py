"""The scaling policies the simulator compares: predictive (the product), HPA-like reactive, cron, oracle.

Each policy turns a :class:`controller.planning.simulate.Trace` into requested replicas per grid step and
sees only
what it could see live: the request rate of the *previous* step (a Prometheus rate is a trailing average)
and, for the predictive policy, forecasts fitted on data strictly before each refit time. The oracle alone
sees the future: it is the physical limit the others are measured against.

- :class:`ReactivePolicy` follows the Kubernetes HPA algorithm as documented: ``desired = ceil(current *
  currentUtil / targetUtil)`` every sync period (15 s), no change within the tolerance (0.1), the highest
  recommendation of the last 300 s on scale-down, and the ``behavior`` rate limits (default +100% or +4
  pods per 15 s up, -100% per 15 s down) counted from the replicas at the start of each policy period.
- :class:`CronPolicy` sets replicas by local hour of day (or a fixed count), and with a controller config
  that declares ``scalingWindows``, raises (and caps) them as those windows do in ``decide()``, through
  the same timetable (:mod:`controller.core.schedule`).
- :class:`OraclePolicy` requests, ``lead`` ahead, the fewest replicas that cover demand at every moment.
- :class:`PredictivePolicy` (in :mod:`controller.planning.predictive`) replays the real ``decide()``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from controller.config import BehaviorConfig, ControllerConfig, ScalingRules
from controller.core.schedule import timetable
from controller.planning.runs import CHUNK, Recorder, Runs, concat, sliding_max_ahead
from controller.planning.simulate import (
    PolicyRun,
    SimParams,
    Trace,
    lead_steps,
    rate_limiter,
)
from forecaster.errors import UserError

SYNC_PERIOD = pd.Timedelta(seconds=15)
POLICY_NAMES = ("predictive", "reactive", "cron", "oracle")
SYNC_BLOCK = 1 << 16  # HPA syncs whose observed rates are read at once


@dataclass(frozen=True)
class HpaSettings:
    """The knobs of a Kubernetes HorizontalPodAutoscaler on a requests-per-second-per-pod metric."""

    target_utilization: float = 0.7  # of capacity_per_replica
    sync_period: pd.Timedelta = SYNC_PERIOD
    tolerance: float = 0.1
    behavior: BehaviorConfig = field(default_factory=BehaviorConfig)

    def __post_init__(self) -> None:
        if not 0 < self.target_utilization <= 1:
            raise UserError(f"target utilisation must be in (0, 1], got {self.target_utilization}")


def hpa_desired(current: int, observed_rate: float, capacity: float, hpa: HpaSettings) -> int:
    """One HPA recommendation: ``ceil(current * currentUtil / targetUtil)``, unchanged within tolerance.

    With a per-pod requests-per-second metric, pods without metrics (not ready yet) count as zero load on
    scale-up, so the average is over all ``current`` pods.
    """
    if current <= 0:
        return max(1, math.ceil(observed_rate / (capacity * hpa.target_utilization) - 1e-9))
    util = observed_rate / (current * capacity)
    ratio = util / hpa.target_utilization
    if abs(ratio - 1.0) <= hpa.tolerance:
        return current
    return math.ceil(current * ratio - 1e-9)


def _limit(rules: ScalingRules, period_start: int, up: bool) -> int:
    """The most (up) or fewest (down) replicas allowed, from the replicas at the start of the period."""
    if rules.select_policy == "Disabled":
        return period_start
    proposals = []
    for p in rules.policies:
        if up:
            proposals.append(
                period_start + p.value if p.type == "Pods" else math.ceil(period_start * (1 + p.value / 100))
            )
        else:
            proposals.append(
                period_start - p.value if p.type == "Pods" else int(period_start * (1 - p.value / 100))
            )
    if up:
        return max(proposals) if rules.select_policy == "Max" else min(proposals)
    return min(proposals) if rules.select_policy == "Max" else max(proposals)


class HpaState:
    """Recommendation history and scale events: what the HPA controller keeps between syncs.

    The rule is the one in the module docstring; this keeps it incrementally (running extremes of each
    stabilisation window in monotonic queues, the constants of ``behavior`` derived once) because a year
    replayed at the 15 s sync period is two million syncs. ``tests/support/reference.py`` holds the rule
    as written and the tests hold this class to it.
    """

    def __init__(self, hpa: HpaSettings) -> None:
        self.hpa = hpa
        b = hpa.behavior
        self._up_w = b.scale_up.stabilization_window_seconds
        self._down_w = b.scale_down.stabilization_window_seconds
        self._longest = max([p.period_seconds for p in b.scale_up.policies + b.scale_down.policies] or [0])
        self._up_period = _period(b.scale_up)
        self._down_period = _period(b.scale_down)
        # (time, recommendation), increasing recommendation (up window: its minimum at the left) and
        # decreasing recommendation (down window: its maximum at the left)
        self._lows: deque[tuple[float, int]] = deque()
        self._highs: deque[tuple[float, int]] = deque()
        self.events: deque[tuple[float, int]] = deque()  # (time s, +added / -removed)

    def step(
        self, now_s: float, current: int, observed_rate: float, capacity: float, lo: int, hi: int
    ) -> int:
        desired = hpa_desired(current, observed_rate, capacity, self.hpa)
        lows, highs = self._lows, self._highs
        up_cut, down_cut = now_s - self._up_w, now_s - self._down_w
        while lows and lows[0][0] <= up_cut:
            lows.popleft()
        while highs and highs[0][0] <= down_cut:
            highs.popleft()
        up_rec = min(desired, lows[0][1]) if lows else desired
        down_rec = max(desired, highs[0][1]) if highs else desired
        while lows and lows[-1][1] >= desired:
            lows.pop()
        lows.append((now_s, desired))
        while highs and highs[-1][1] <= desired:
            highs.pop()
        highs.append((now_s, desired))
        stabilized = current
        if stabilized < up_rec:
            stabilized = up_rec
        if stabilized > down_rec:
            stabilized = down_rec
        events = self.events
        while events and events[0][0] <= now_s - self._longest:
            events.popleft()
        result = stabilized
        if stabilized != current:
            b = self.hpa.behavior
            up = stabilized > current
            cut = now_s - (self._up_period if up else self._down_period)
            start = current
            for t, d in events:
                if t > cut:
                    start -= d
            if up:
                result = min(stabilized, max(_limit(b.scale_up, start, up=True), current), hi)
            else:
                result = max(stabilized, min(_limit(b.scale_down, start, up=False), current), lo)
        result = min(max(result, lo), hi)
        if result != current:
            events.append((now_s, result - current))
        return result


def _period(rules: ScalingRules) -> int:
    return max([p.period_seconds for p in rules.policies] or [0])


@dataclass
class ReactivePolicy:
    """The Kubernetes HPA on requests per second per pod (see module docstring)."""

    hpa: HpaSettings = field(default_factory=HpaSettings)
    name: str = "reactive"

    def run(self, trace: Trace, params: SimParams) -> PolicyRun:
        from controller.planning.simulate import initial_replicas

        n = trace.n
        every = max(1, round(self.hpa.sync_period / trace.step))
        state = HpaState(self.hpa)
        current = initial_replicas(trace, params)
        cap = params.capacity_per_replica
        dt = trace.step_s
        lo, hi = params.min_replicas, params.max_replicas
        limit = rate_limiter(params, trace)
        out = Recorder()
        for first in range(0, n, SYNC_BLOCK * every):  # blocks: no per-step Python floats for a long trace
            block = np.arange(first, min(first + SYNC_BLOCK * every, n), every)
            seen = trace.rate_runs.at(np.maximum(block - 1, 0)).tolist()  # the previous step's rate
            for i, observed in zip(block.tolist(), seen, strict=True):
                current = limit(current, state.step(i * dt, current, observed, cap, lo, hi))
                out.set(i, current)
        return PolicyRun(out.runs(n))


@dataclass
class CronPolicy:
    """Replicas by local hour of day (24 values) or one fixed count, optionally shifted ``lead`` earlier."""

    hourly: Sequence[int] | None = None
    fixed: int | None = None
    name: str = "cron"
    windows: ControllerConfig | None = None  # a config whose scalingWindows apply on top of the schedule

    def __post_init__(self) -> None:
        if (self.hourly is None) == (self.fixed is None):
            raise UserError("cron policy: give either a replica count per hour (24 values) or a fixed count")
        if self.hourly is not None and len(self.hourly) != 24:
            raise UserError(f"cron policy: needs 24 hourly replica counts, got {len(self.hourly)}")
        vals = list(self.hourly) if self.hourly is not None else [self.fixed]
        if any(v is None or v < 0 for v in vals):
            raise UserError("cron policy: replica counts must be 0 or more")

    def run(self, trace: Trace, params: SimParams) -> PolicyRun:
        set_by: dict[str, list[int]] = {}
        table = timetable(self.windows) if self.windows is not None else None
        step_ns, start_ns = trace.step.value, trace.start.value
        parts = []
        for lo in range(0, trace.n, CHUNK):  # chunks: the local hour of two million steps is never held
            hi = min(lo + CHUNK, trace.n)
            if self.fixed is not None:
                want = np.full(hi - lo, self.fixed, dtype=np.int64)
            else:
                times = pd.DatetimeIndex((start_ns + np.arange(lo, hi) * step_ns).astype("datetime64[ns]"))
                hours = times.tz_localize("UTC").tz_convert(trace.timezone).hour.to_numpy()
                want = np.asarray(self.hourly, dtype=np.int64)[hours]
            want = np.clip(want, params.min_replicas, params.max_replicas)
            if table is not None:
                names = [w.name for w in table.windows]
                for j in range(len(want)):
                    win = table.at(start_ns + (lo + j) * step_ns)
                    if win is None:
                        continue
                    value = int(want[j])
                    if win.floor > value:
                        value, by = win.floor, win.floor_by
                    elif win.cap is not None and value > win.cap:
                        value, by = win.cap, win.cap_by
                    else:
                        continue
                    want[j] = min(value, params.max_replicas)
                    set_by.setdefault(names[by], []).append(lo + j)
            parts.append(Runs.of(want))
        return PolicyRun(concat(parts, trace.n), window_steps=set_by)


def cron_from_history(
    rate: pd.Series, params: SimParams, timezone: str, *, quantile: float = 1.0, headroom: float = 0.0
) -> list[int]:
    """A schedule an operator would write from past traffic: per local hour, the ``quantile`` of the rate
    in that hour and the next one (scale-ups must start ``lead`` early), plus ``headroom``."""
    local = rate.tz_convert(timezone)
    nxt = rate.shift(-1, freq=pd.Timedelta(hours=1)).reindex(rate.index)
    both = pd.concat(
        [
            local.groupby(local.index.hour).quantile(quantile),
            pd.Series(nxt.to_numpy(), index=local.index).groupby(local.index.hour).quantile(quantile),
        ],
        axis=1,
    ).max(axis=1)
    both = both.reindex(range(24)).fillna(float(rate.max()))
    return [int(v) for v in params.needed(both.to_numpy() * (1 + headroom))]


@dataclass
class OraclePolicy:
    """Perfect foresight: each step requests the most replicas needed during the next ``lead``."""

    name: str = "oracle"

    def run(self, trace: Trace, params: SimParams) -> PolicyRun:
        rate = trace.rate_runs
        need = concat([Runs(rate.starts, params.needed(rate.values), rate.n)], rate.n)  # equal needs merged
        return PolicyRun(sliding_max_ahead(need, lead_steps(trace, params)))
