"""Reference implementations the tests hold the decision core's fast paths to.

Production computes these incrementally or lazily (``stabilized`` from running extremes, ``due_now``
building only the actions that are due); the plain versions here follow the HPA and warm-up rules as
written, so a test can check that the fast path agrees with the rule on the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from controller.config import ControllerConfig, WarmupConfig
from controller.core.behavior import stabilized
from controller.core.forecastview import NS
from controller.core.steps import Trace
from controller.core.warmup import WarmupAction, planned_ramps, ramp_action
from forecaster.artifact import ForecastArtifact


def stabilize(
    desired: int,
    current: int,
    recs: tuple[tuple[pd.Timestamp, int], ...],
    now: pd.Timestamp,
    config: ControllerConfig,
    tr: Trace,
) -> int:
    """HPA stabilisation: highest recommendation of the scale-down window, lowest of the scale-up window."""
    up_w = config.behavior.scale_up.stabilization_window_seconds
    down_w = config.behavior.scale_down.stabilization_window_seconds
    up_rec = down_rec = desired
    now_ns = now.value
    up_cut, down_cut = now_ns - up_w * NS, now_ns - down_w * NS
    for t, r in recs:
        t_ns = t.value
        if t_ns > up_cut and r < up_rec:
            up_rec = r
        if t_ns > down_cut and r > down_rec:
            down_rec = r
    return stabilized(desired, current, up_rec, down_rec, config, tr)


def plan_warmups(
    forecast: ForecastArtifact, *, target: str, now: pd.Timestamp, config: WarmupConfig, replicas: int,
) -> list[WarmupAction]:
    """All ramp warm-ups whose ramp crosses in [now - one interval, now + lookahead], in time order."""
    step = pd.Timedelta(seconds=forecast.interval_seconds)
    lead = pd.Timedelta(seconds=float(config.lead))
    return [
        ramp_action(r, target=target, lead=lead, step=step, replicas=replicas)
        for r in planned_ramps(forecast, now=now, config=config)
    ]


def due_warmups(
    planned: Iterable[WarmupAction], *, now: pd.Timestamp, issued: Iterable[str]
) -> list[WarmupAction]:
    """The planned warm-ups to issue now: due (at <= now < until) and not issued before (by key)."""
    done = set(issued)
    out = []
    for a in planned:
        if a.at <= now < a.until and a.key not in done:
            out.append(a)
            done.add(a.key)
    return out
