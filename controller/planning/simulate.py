"""Replay a traffic trace through a scaling policy and measure what users and the bill would have seen.

This is the offline twin of the live controller: ``simulate``, ``whatif``, ``report`` and the policy benchmark
all call :func:`simulate`. It is pure (no I/O, no clock): a trace and parameters in, a :class:`SimResult` out.

The model of the cluster, kept deliberately small and stated once here:

- The trace is a request rate in requests per second, constant within each trace interval.
- The simulation runs on a regular grid of ``step`` seconds (a divisor of the trace interval, 15 s by
  default so the HPA sync period is honoured). A policy sets the *requested* replica count at each step.
- A requested replica costs money from the moment it is requested, and serves traffic only once it is
  ready and warm: ``ready(t)`` = replicas that were requested at least ``startup + warmup`` before ``t``.
  Scale-down removes not-yet-ready pods first, so ``ready(t) = min(requested[t - lead .. t])``.
- Capacity at ``t`` is ``ready(t) * capacity_per_replica``; the shortfall is demand above it.

Policies live in :mod:`controller.planning.policies`; they see only what a real controller could see at the
time
(the rate of the previous step, forecasts made from earlier data) except the oracle, which is the physical
limit: the fewest replicas that cover demand given the lead time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from controller.planning.runs import CHUNK, Runs, sliding_min
from forecaster.durations import format_duration
from forecaster.errors import UserError

DEFAULT_STEP = pd.Timedelta(seconds=15)
DEFAULT_STARTUP = pd.Timedelta(seconds=90)
DEFAULT_WARMUP = pd.Timedelta(seconds=30)


@dataclass(frozen=True)
class SimParams:
    """The cluster and pricing a trace is replayed against."""

    capacity_per_replica: float  # requests per second one warm replica serves at its limit
    startup: pd.Timedelta = DEFAULT_STARTUP  # pod scheduling + image + readiness
    warmup_time: pd.Timedelta = DEFAULT_WARMUP  # cache warm-up after readiness
    min_replicas: int = 1
    max_replicas: int = 100
    price_per_replica_hour: float = 0.0
    scale_up_limit: int | None = None  # most replicas added per minute by any non-oracle policy (None: none)
    scale_down_limit: int | None = None  # most replicas removed per minute (None: no limit)
    initial_replicas: int | None = None  # ready at the start; default: enough for the first interval

    def __post_init__(self) -> None:
        if not (self.capacity_per_replica > 0 and math.isfinite(self.capacity_per_replica)):
            raise UserError(
                f"capacity per replica must be a positive number of requests per second, "
                f"got {self.capacity_per_replica!r}"
            )
        if self.min_replicas < 0:
            raise UserError(f"min replicas must be 0 or more, got {self.min_replicas}")
        if self.max_replicas < max(1, self.min_replicas):
            raise UserError(
                f"max replicas ({self.max_replicas}) must be at least 1 and at least min replicas "
                f"({self.min_replicas})"
            )
        if self.startup < pd.Timedelta(0) or self.warmup_time < pd.Timedelta(0):
            raise UserError("start-up and warm-up times must be zero or positive")
        if self.price_per_replica_hour < 0:
            raise UserError(
                f"price per replica-hour must be zero or positive, got {self.price_per_replica_hour}"
            )
        for name, lim in (
            ("scale-up limit", self.scale_up_limit),
            ("scale-down limit", self.scale_down_limit),
        ):
            if lim is not None and lim < 1:
                raise UserError(f"{name} must be at least 1 replica per minute, got {lim}")

    @property
    def lead(self) -> pd.Timedelta:
        """Time from requesting a replica to it serving traffic warm."""
        return self.startup + self.warmup_time

    def needed(self, rate: np.ndarray | float) -> np.ndarray:
        """Replicas needed to serve ``rate`` (clamped to min/max)."""
        need = np.ceil(np.asarray(rate, dtype=float) / self.capacity_per_replica - 1e-9)
        return np.clip(need, self.min_replicas, self.max_replicas).astype(np.int64)


@dataclass(frozen=True)
class Trace:
    """A request rate (req/s) on a regular grid: ``rate[i]`` holds over ``[times[i], times[i] + step)``.

    The rate is kept as runs (:mod:`controller.planning.runs`): a year of an hourly trace on a 15 s grid is
    8,760 values, not two million; ``rate`` expands it for callers that want the array.
    """

    start: pd.Timestamp
    step: pd.Timedelta  # simulation grid
    interval: pd.Timedelta  # resolution of the source trace (a multiple of step)
    rate_runs: Runs
    timezone: str = "UTC"

    @classmethod
    def of_steps(
        cls,
        start: pd.Timestamp,
        step: pd.Timedelta,
        interval: pd.Timedelta,
        rate: np.ndarray,
        timezone: str = "UTC",
    ) -> Trace:
        """A trace from a per-step rate array."""
        return cls(start, step, interval, Runs.of(np.asarray(rate, dtype=float)), timezone)

    @property
    def rate(self) -> np.ndarray:
        """The rate at every grid step (expanded from the runs)."""
        return self.rate_runs.expand()

    @property
    def n(self) -> int:
        """Grid steps in the trace."""
        return self.rate_runs.n

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.n, freq=self.step)

    @property
    def step_s(self) -> float:
        return float(self.step.total_seconds())

    @property
    def per_interval(self) -> int:
        return round(self.interval / self.step)

    @property
    def end(self) -> pd.Timestamp:
        return self.start + self.step * self.n

    def series(self) -> pd.Series:
        return pd.Series(self.rate, index=self.times, name="rate")


def make_trace(rate: pd.Series, *, step: pd.Timedelta | None = None, where: str = "trace") -> Trace:
    """Build a simulation trace from a regular rate series (req/s) indexed by tz-aware interval starts.

    Missing intervals (NaN) are filled from the previous interval (then the next), so a gap never reads
    as zero demand. The grid step defaults to the largest divisor of the interval that is at most 15 s.
    """
    if len(rate) < 1:
        raise UserError(f"{where}: is empty")
    idx = pd.DatetimeIndex(rate.index)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    if len(idx) > 1:
        diffs = np.diff(idx.as_unit("ns").asi8)
        if (diffs <= 0).any():
            raise UserError(f"{where}: timestamps must be strictly increasing")
        interval = pd.Timedelta(int(np.min(diffs)), unit="ns")
        if (diffs % int(interval.value)).any():
            raise UserError(
                f"{where}: timestamps are not on a regular grid of {format_duration(interval)}"
            )
        full = pd.date_range(idx[0], idx[-1], freq=interval)
        values = pd.Series(np.asarray(rate, dtype=float), index=idx).reindex(full)
    else:
        interval = step or DEFAULT_STEP
        values = pd.Series(np.asarray(rate, dtype=float), index=idx)
    vals = values.ffill().bfill().to_numpy(dtype=float)
    if not np.isfinite(vals).all():
        raise UserError(f"{where}: has no numeric values")
    if (vals < 0).any():
        raise UserError(f"{where}: request rates must not be negative")
    if step is None:
        secs = int(interval.total_seconds())
        step = pd.Timedelta(seconds=math.gcd(secs, 15)) if secs >= 1 else interval
    if interval % step != pd.Timedelta(0):
        raise UserError(
            f"{where}: the simulation step {format_duration(step)} must divide the trace interval "
            f"{format_duration(interval)}"
        )
    k = round(interval / step)
    return Trace(
        start=pd.Timestamp(idx[0]),
        step=step,
        interval=interval,
        rate_runs=Runs.blocks(vals, k),
        timezone=str(idx.tz),
    )


@dataclass(frozen=True)
class Warmup:
    """A warm-up call a policy issued: when, for how many replicas, and the ramp it prepares for."""

    issued_at: pd.Timestamp
    replicas: int
    ramp_at: pd.Timestamp | None = None
    reason: str = ""


@dataclass
class PolicyRun:
    """What a policy produced over the grid: requested replicas per step and the warm-ups it issued."""

    requested: np.ndarray | Runs  # per step (an array, or runs for a long trace)
    warmups: list[Warmup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    issues_warmups: bool = False  # the policy makes warm-up calls at all (see controller.planning.warmups)
    window_steps: dict[str, list[int]] = field(default_factory=dict)  # grid steps each scaling window set


class Policy(Protocol):
    name: str

    def run(self, trace: Trace, params: SimParams) -> PolicyRun: ...


@dataclass(frozen=True)
class Metrics:
    policy: str
    short_time_share: float  # share of time with demand above ready capacity
    short_interval_share: float  # share of trace intervals with any shortfall
    short_request_share: float  # share of requests above ready capacity (would fail or queue)
    worst_shortfall_rps: float
    worst_shortfall_pct: float  # of demand at that moment
    replica_hours: float
    cost: float
    peak_replicas: int
    scaling_actions: int
    warmups_issued: int  # all warm-up calls (ramp and new-replica)
    ramp_warmups: int  # warm-ups issued for a forecast ramp or declared event
    warmups_before_ramp: int  # ramp warm-ups issued no later than the ramp's start

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SimResult:
    policy: str
    trace: Trace
    requested_runs: Runs  # replicas requested per grid step, as runs (see controller.planning.runs)
    ready_runs: Runs  # replicas ready and warm per grid step
    metrics: Metrics
    warmups: list[Warmup]
    notes: list[str]
    capacity_per_replica: float
    issues_warmups: bool = False
    window_intervals: dict[str, int] = field(default_factory=dict)  # trace intervals each window set

    @property
    def requested(self) -> np.ndarray:
        """Replicas requested at each grid step (expanded from the runs)."""
        return self.requested_runs.expand()

    @property
    def ready(self) -> np.ndarray:
        """Replicas ready and warm at each grid step (expanded from the runs)."""
        return self.ready_runs.expand()

    @property
    def availability(self) -> float:
        """Share of trace intervals whose capacity covered the demand throughout."""
        return 1.0 - self.metrics.short_interval_share

    def frame(self) -> pd.DataFrame:
        """Per-step timeline: demand, requested and ready replicas, ready capacity and shortfall."""
        ready = self.ready
        cap = ready * self.capacity_per_replica
        return pd.DataFrame(
            {
                "ds": self.trace.times,
                "demand": self.trace.rate,
                "requested": self.requested,
                "ready": ready,
                "capacity": cap,
                "shortfall": np.maximum(0.0, self.trace.rate - cap),
            }
        )


def lead_steps(trace: Trace, params: SimParams) -> int:
    """Grid steps from request to ready, rounded up (the safe direction)."""
    return math.ceil(params.lead / trace.step - 1e-9)


def ready_replicas(requested: np.ndarray, lead: int, initial: int) -> np.ndarray:
    """``ready[i] = min(requested[i - lead .. i])``, with ``initial`` replicas ready before the trace."""
    return sliding_min(Runs.of(requested), lead, initial).expand()


def initial_replicas(trace: Trace, params: SimParams) -> int:
    if params.initial_replicas is not None:
        return int(np.clip(params.initial_replicas, params.min_replicas, params.max_replicas))
    return int(params.needed(trace.rate_runs.values[0]))


def check_trace(trace: Trace, params: SimParams, where: str = "trace") -> None:
    span = trace.step * trace.n
    if span <= params.startup:
        raise UserError(
            f"{where}: covers {format_duration(span)}, not longer than the start-up delay "
            f"{format_duration(params.startup)}; "
            "replay a longer trace or shorten --startup"
        )


def simulate(trace: Trace, policy: Policy, params: SimParams) -> SimResult:
    """Run ``policy`` over ``trace`` and measure it."""
    check_trace(trace, params)
    run = policy.run(trace, params)
    if isinstance(run.requested, Runs):
        requested_runs = run.requested
    else:
        requested_runs = Runs.of(np.asarray(run.requested, dtype=np.int64))
        run.requested = requested_runs  # the runs hold it in kilobytes: release the per-step array
    if requested_runs.n != trace.n:
        raise ValueError(f"policy {policy.name} returned {requested_runs.n} steps for a {trace.n}-step trace")
    ready = sliding_min(requested_runs, lead_steps(trace, params), initial_replicas(trace, params))
    metrics = measure(policy.name, trace, requested_runs, ready, run.warmups, params)
    k = trace.per_interval
    windows = {name: len({i // k for i in steps}) for name, steps in run.window_steps.items()}
    return SimResult(
        policy.name,
        trace,
        requested_runs,
        ready,
        metrics,
        run.warmups,
        run.notes,
        params.capacity_per_replica,
        run.issues_warmups,
        windows,
    )


def replay_recorded(
    trace: Trace, replicas: pd.Series, params: SimParams, *, name: str = "as run", where: str = "replicas"
) -> SimResult:
    """Measure the replicas that actually ran (a series of counts at their timestamps) against the trace.

    The recorded count holds from each timestamp to the next (the last one to the end of the trace, noted
    when it is more than one trace interval old); recorded replicas are taken as ready and warm, and billed
    as they ran. The history must start no later than the trace.
    """
    s = pd.Series(np.asarray(replicas, dtype=float), index=pd.DatetimeIndex(replicas.index)).dropna()
    if s.index.tz is None:
        s.index = s.index.tz_localize(trace.timezone)
    s = s[~s.index.duplicated(keep="last")].sort_index()
    if len(s) == 0:
        raise UserError(f"{where}: has no replica counts")
    if (s < 0).any():
        raise UserError(f"{where}: replica counts must not be negative")
    if s.index[0] > trace.start:
        raise UserError(
            f"{where}: starts {s.index[0].isoformat()}, after the replayed window starts "
            f"({trace.start.isoformat()}); give a history that covers the whole window"
        )
    times = trace.times
    pos = np.searchsorted(s.index.asi8, times.asi8, side="right") - 1
    counts = np.round(s.to_numpy()[pos]).astype(np.int64)
    notes = []
    if s.index[-1] < trace.end - trace.interval:
        notes.append(
            f"{where} ends {s.index[-1].isoformat()}; its last count is carried to "
            f"{trace.end.isoformat()}"
        )
    runs = Runs.of(counts)
    metrics = measure(name, trace, runs, runs, [], params)
    return SimResult(name, trace, runs, runs, metrics, [], notes, params.capacity_per_replica)


def measure(
    name: str,
    trace: Trace,
    requested: Runs,
    ready: Runs,
    warmups: list[Warmup],
    params: SimParams,
) -> Metrics:
    """The metrics of one replay, walking the grid in chunks of whole trace intervals (bounded memory)."""
    rate = trace.rate_runs
    dt = trace.step_s
    k = trace.per_interval
    n = trace.n
    n_int = n // k
    short_steps = short_intervals = 0
    short_sum = worst = worst_pct = 0.0
    size = max(CHUNK // k, 1) * k
    for lo in range(0, n, size):
        hi = min(lo + size, n)
        demand = rate.expand(lo, hi)
        capacity = ready.expand(lo, hi) * params.capacity_per_replica
        short = np.maximum(0.0, demand - capacity)
        is_short = short > 1e-9 * np.maximum(1.0, demand)
        short_steps += int(is_short.sum())
        whole = (min(hi, n_int * k) - lo) // k if lo < n_int * k else 0
        if whole:
            short_intervals += int(is_short[: whole * k].reshape(whole, k).any(axis=1).sum())
        short_sum += float(short.sum())
        if len(short):
            worst = max(worst, float(short.max()))
            pct = np.divide(short, demand, out=np.zeros_like(short), where=demand > 0)
            worst_pct = max(worst_pct, float(pct.max()))
    total_req = float(rate.step_sum() * dt)
    replica_hours = float(requested.step_sum() * dt / 3600.0)
    before = sum(1 for w in warmups if w.ramp_at is not None and w.issued_at <= w.ramp_at)
    return Metrics(
        policy=name,
        short_time_share=short_steps / n if n else 0.0,
        short_interval_share=short_intervals / n_int if n_int else 0.0,
        short_request_share=short_sum * dt / total_req if total_req > 0 else 0.0,
        worst_shortfall_rps=worst,
        worst_shortfall_pct=worst_pct,
        replica_hours=replica_hours,
        cost=replica_hours * params.price_per_replica_hour,
        peak_replicas=requested.max,
        scaling_actions=requested.changes,
        warmups_issued=len(warmups),
        ramp_warmups=sum(1 for w in warmups if w.ramp_at is not None),
        warmups_before_ramp=before,
    )


def apply_rate_limits(current: int, desired: int, params: SimParams, trace: Trace) -> int:
    """Clamp a step change to the per-minute limits in ``params`` (scaled to the grid step) and min/max."""
    per_step = trace.step_s / 60.0
    if params.scale_up_limit is not None and desired > current:
        desired = min(desired, current + max(1, int(params.scale_up_limit * per_step)))
    if params.scale_down_limit is not None and desired < current:
        desired = max(desired, current - max(1, int(params.scale_down_limit * per_step)))
    return int(min(max(desired, params.min_replicas), params.max_replicas))


def rate_limiter(params: SimParams, trace: Trace) -> Callable[[int, int], int]:
    """``apply_rate_limits`` bound to one run: the same clamp, with min/max alone when there are no limits."""
    if params.scale_up_limit is None and params.scale_down_limit is None:
        lo, hi = params.min_replicas, params.max_replicas
        return lambda current, desired: int(min(max(desired, lo), hi))
    return lambda current, desired: apply_rate_limits(current, desired, params, trace)


def compare(results: list[SimResult], baseline: str = "oracle") -> pd.DataFrame:
    """Side-by-side metrics table, one row per policy, with replica-hours relative to ``baseline``."""
    rows = [r.metrics.as_dict() for r in results]
    table = pd.DataFrame(rows).set_index("policy")
    if baseline in table.index and table.loc[baseline, "replica_hours"] > 0:
        table["vs_oracle_replica_hours"] = table["replica_hours"] / table.loc[baseline, "replica_hours"]
    return table


def sim_params(cfg: Any, price: float = 0.0) -> SimParams:
    """The cluster of a controller config (capacity, start-up, warm-up, min, effective max) and a price."""
    return SimParams(
        capacity_per_replica=float(cfg.capacity_per_replica),
        startup=pd.Timedelta(seconds=float(cfg.startup)),
        warmup_time=pd.Timedelta(seconds=float(cfg.warmup_time)),
        min_replicas=int(cfg.min_replicas),
        max_replicas=int(cfg.ceiling),
        price_per_replica_hour=price,
    )
