"""Reference implementations the tests hold the decision core's fast paths to.

Production computes these incrementally or lazily (``stabilized`` from running extremes, ``due_now``
building only the actions that are due); the plain versions here follow the HPA and warm-up rules as
written, so a test can check that the fast path agrees with the rule on the same inputs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import pandas as pd

from controller.config import ControllerConfig, ScalingPolicy, WarmupConfig
from controller.core.behavior import stabilized
from controller.core.forecastview import NS
from controller.core.steps import Trace
from controller.core.warmup import WarmupAction, planned_ramps, ramp_action
from controller.planning import policies
from controller.planning.policies import HpaSettings, hpa_desired
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


class HpaState:
    """The HPA sync as written: every recommendation of the retention scanned on every sync."""

    def __init__(self, hpa: HpaSettings) -> None:
        self.hpa = hpa
        self.recommendations: deque[tuple[float, int]] = deque()
        self.events: deque[tuple[float, int]] = deque()  # (time s, +added / -removed)

    def step(
        self, now_s: float, current: int, observed_rate: float, capacity: float, lo: int, hi: int
    ) -> int:
        b = self.hpa.behavior
        desired = hpa_desired(current, observed_rate, capacity, self.hpa)
        up_w = b.scale_up.stabilization_window_seconds
        down_w = b.scale_down.stabilization_window_seconds
        keep = max(up_w, down_w)
        while self.recommendations and self.recommendations[0][0] <= now_s - keep:
            self.recommendations.popleft()
        up_rec = down_rec = desired
        for t, rec in self.recommendations:
            if t > now_s - up_w:
                up_rec = min(up_rec, rec)
            if t > now_s - down_w:
                down_rec = max(down_rec, rec)
        self.recommendations.append((now_s, desired))
        stabilized = current
        if stabilized < up_rec:
            stabilized = up_rec
        if stabilized > down_rec:
            stabilized = down_rec
        longest = max([p.period_seconds for p in b.scale_up.policies + b.scale_down.policies] or [0])
        while self.events and self.events[0][0] <= now_s - longest:
            self.events.popleft()
        result = stabilized
        if stabilized > current:
            start = (
                current
                - sum(d for t, d in self.events if t > now_s - _period(b.scale_up.policies) and d > 0)
                + sum(-d for t, d in self.events if t > now_s - _period(b.scale_up.policies) and d < 0)
            )
            limit = max(policies._limit(b.scale_up, start, up=True), current)
            result = min(stabilized, limit, hi)
        elif stabilized < current:
            start = (
                current
                - sum(d for t, d in self.events if t > now_s - _period(b.scale_down.policies) and d > 0)
                + sum(-d for t, d in self.events if t > now_s - _period(b.scale_down.policies) and d < 0)
            )
            limit = min(policies._limit(b.scale_down, start, up=False), current)
            result = max(stabilized, limit, lo)
        result = min(max(result, lo), hi)
        if result != current:
            self.events.append((now_s, result - current))
        return result


def _period(rules: Sequence[ScalingPolicy]) -> int:
    return max([p.period_seconds for p in rules] or [0])
