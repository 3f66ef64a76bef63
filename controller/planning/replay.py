"""Replay several policies over one trace, the predictive one here and the others beside it.

Why this module exists: ``simulate --policy all`` replays four policies over the same trace. The predictive
one dominates (the real ``decide()`` every loop interval: a million calls over a year at 30 s) and runs in
this process, where its forecast refits arrive ahead from worker processes
(:class:`controller.planning.refits.FitAhead`). The baselines (reactive, cron, oracle) depend on nothing the
predictive replay produces, so with a worker pool they run on it at the same time; the results are the same
as one after the other (a test holds them to it), only sooner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from controller.planning.predictive import PredictivePolicy
from controller.planning.simulate import Policy, SimParams, SimResult, Trace, simulate


def timed_simulate(task: tuple[Trace, Policy, SimParams]) -> tuple[SimResult, float]:
    """:func:`simulate` and the seconds it took (a module-level function, so a worker can run it)."""
    trace, policy, params = task
    t0 = time.perf_counter()
    result = simulate(trace, policy, params)
    return result, time.perf_counter() - t0


def replay_all(
    trace: Trace,
    policies: Sequence[Policy],
    params: SimParams,
    *,
    pool: Any = None,
    stage: Callable[[Policy], None] | None = None,
) -> tuple[list[SimResult], dict[str, float]]:
    """Each policy's result (in the order given) and its replay time in seconds.

    With ``pool`` (an engine with ``submit``, e.g. :class:`forecaster.engine.ProcessPoolEngine`), every
    policy but the predictive ones is sent to it first and replayed there while the predictive ones replay
    in this process (they hold the refits in flight); ``stage`` is called before each policy replayed here.
    """
    away = {id(p): pool.submit(timed_simulate, (trace, p, params))
            for p in policies if pool is not None and not isinstance(p, PredictivePolicy)}
    done: dict[int, tuple[SimResult, float]] = {}
    for policy in policies:
        if id(policy) not in away:
            if stage is not None:
                stage(policy)
            done[id(policy)] = timed_simulate((trace, policy, params))
    for key, future in away.items():
        result, seconds = future.result()
        result.trace = trace  # the worker's copy of the same trace: keep one
        done[key] = (result, seconds)
    ordered = [done[id(p)] for p in policies]
    return [r for r, _ in ordered], {r.policy: s for r, s in ordered}
