"""The predictive policy of the simulator: the real :func:`controller.core.decision.decide` replayed over a
trace.

The simulator must not flatter the product, so this policy calls the same ``decide()`` the live loop calls,
with the same config, state hand-over and warm-up logic. What it adds is the replay harness:

- Forecasts are refitted every ``refit`` (e.g. 6 h or 24 h) from the history strictly before the refit time
  (complete intervals only: no peeking), through an injected forecaster (:mod:`controller.planning.refits`,
  which can fit the coming refits ahead in worker processes), and stamped as created at the refit time.
  ``forecastMaxAge`` is raised to cover the refit cadence (noted in the run).
- ``decide()`` runs every ``config.interval`` with the observed load of the previous grid step (what a
  Prometheus ``rate()`` over the last minutes would return) and the state from the previous decision.
- The replicas it returns are what the simulated cluster is asked for; warm-ups it issues are recorded.

The replay keeps nothing per grid step: timestamps and observed rates are built one block of ticks at a time
and the requested replicas are recorded where they change, so memory does not grow with the trace's length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from controller.config import ControllerConfig, Duration
from controller.core.decision import SCHEDULED_CAP, SCHEDULED_FLOOR, decide
from controller.core.state import ControllerState
from controller.core.warmup import NEW_REPLICAS
from controller.planning.refits import ForecastFn, PlansAhead, history_before
from controller.planning.runs import Recorder
from controller.planning.simulate import (
    PolicyRun,
    SimParams,
    Trace,
    Warmup,
    initial_replicas,
    rate_limiter,
)
from controller.ports import ObservedLoad
from forecaster.artifact import ForecastArtifact
from forecaster.durations import format_duration

DEFAULT_REFIT = pd.Timedelta(hours=24)
TICK_BLOCK = 4096  # decision ticks whose timestamps are built at once


@dataclass
class PredictivePolicy:
    """The product's policy: forecast (refitted on a cadence) + the real ``decide()``."""

    config: ControllerConfig
    history: pd.Series  # rate (req/s) including the part before the trace; sliced per refit
    forecaster: ForecastFn
    refit: pd.Timedelta = DEFAULT_REFIT
    name: str = "predictive"
    origins: list[pd.Timestamp] = field(default_factory=list)  # refit times actually used (for tests)
    progress: Callable[[int, int], None] | None = None  # (steps done, steps in the trace), at each refit

    def effective_config(self, params: SimParams) -> ControllerConfig:
        """The controller config with the simulated cluster's capacity, timing and limits."""
        cfg = self.config.evolve(
            capacity_per_replica=params.capacity_per_replica,
            startup=Duration(params.startup.total_seconds()),
            warmup_time=Duration(params.warmup_time.total_seconds()),
            min_replicas=params.min_replicas,
            max_replicas=params.max_replicas,
            max_capacity="honour",
        )
        need_age = (self.refit + pd.Timedelta(hours=1)).total_seconds()
        if float(cfg.forecast_max_age) < need_age:
            cfg = cfg.evolve(forecast_max_age=Duration(need_age))
        return cfg

    def run(self, trace: Trace, params: SimParams) -> PolicyRun:
        cfg = self.effective_config(params)
        notes: list[str] = []
        if float(cfg.forecast_max_age) != float(self.config.forecast_max_age):
            raised = pd.Timedelta(seconds=float(cfg.forecast_max_age))
            notes.append(
                f"forecastMaxAge raised to {format_duration(raised)} to cover the "
                f"{format_duration(self.refit)} refit cadence"
            )
        n = trace.n
        start_ns, step_ns = trace.start.value, trace.step.value
        tz = trace.start.tz
        every = max(1, round(cfg.interval_td / trace.step))
        refit_steps = max(1, round(self.refit / trace.step))
        horizon = (
            self.refit
            + max(pd.Timedelta(seconds=float(cfg.warmup.lookahead)), pd.Timedelta(hours=2))
            + 2 * trace.interval
            + cfg.lead
        )
        current = initial_replicas(trace, params)
        state = ControllerState(replicas=current)
        out = Recorder()
        warmups: list[Warmup] = []
        artifact: ForecastArtifact | None = None
        failures = 0
        prior = self.history[self.history.index < trace.start]
        last_seen = float(prior.iloc[-1]) if len(prior) and np.isfinite(prior.iloc[-1]) else None
        ramp_lead = pd.Timedelta(seconds=float(cfg.warmup.lead))
        # Only refit and decision ticks do anything; the steps between them keep the count (filled in slices).
        origins = [pd.Timestamp(start_ns + int(i) * step_ns, tz=tz) for i in range(0, n, refit_steps)]
        if isinstance(self.forecaster, PlansAhead):
            self.forecaster.plan(self.history, origins, horizon)
        limit = rate_limiter(params, trace)
        set_by: dict[str, list[int]] = {}
        for lo in range(0, n, TICK_BLOCK * every):  # blocks of ticks: nothing per step is kept for the run
            hi = min(lo + TICK_BLOCK * every, n)
            first_refit = -(-lo // refit_steps) * refit_steps
            block = np.union1d(np.arange(lo, hi, every), np.arange(first_refit, hi, refit_steps))
            stamps = _timestamps(start_ns + block * step_ns, tz)
            seen = trace.rate_runs.at(np.maximum(block - 1, 0)).tolist()  # the previous step's rate
            for i, now, rate_seen in zip(block.tolist(), stamps, seen, strict=True):
                if i % refit_steps == 0:
                    if self.progress is not None:
                        self.progress(i, n)
                    origin = origins[i // refit_steps]
                    self.origins.append(origin)
                    artifact = self.forecaster(history_before(self.history, origin), origin, horizon)
                    failures += artifact is None
                if i % every == 0:
                    observed_rate = rate_seen if i else last_seen
                    observed = (
                        None if observed_rate is None else ObservedLoad(rate=observed_rate, sampled_at=now)
                    )
                    d = decide(artifact, observed, state, cfg, now)
                    if d.window is not None and d.reason in (SCHEDULED_FLOOR, SCHEDULED_CAP):
                        set_by.setdefault(d.window, []).append(i)
                    current = limit(current, d.replicas)
                    # the decision's state holds its replicas; only a clamp by the cluster changes them
                    state = d.state if current == d.replicas else d.state.with_replicas(current)
                    for w in d.warmups:
                        ramp = None if w.reason == NEW_REPLICAS else w.at + ramp_lead
                        warmups.append(
                            Warmup(issued_at=now, replicas=w.replicas, ramp_at=ramp, reason=w.reason)
                        )
                out.set(i, current)
        if failures:
            notes.append(
                f"{failures} of {len(self.origins)} forecast refits failed; decide() scaled reactively"
            )
        return PolicyRun(
            out.runs(n), warmups, notes, issues_warmups=bool(cfg.warmup.enabled), window_steps=set_by
        )


def _timestamps(values_ns: np.ndarray, tz: Any) -> list[pd.Timestamp]:
    """``[pd.Timestamp(v, tz=tz) for v in values_ns]``, built in one vectorised pass."""
    index = pd.DatetimeIndex(values_ns.astype("datetime64[ns]"))
    if tz is not None:
        index = index.tz_localize("UTC").tz_convert(tz)
    return list(index)
