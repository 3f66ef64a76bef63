"""Golden trajectories of decide(): fixed scenario inputs in, the recorded decisions must come out unchanged.

Each scenario is built here from its inputs (a synthetic daily forecast with a ramp and declared events, a
seeded load series with surges, collapses, gaps, stale and NaN samples, stale/missing forecasts and the end
of the horizon) and stepped tick by tick with the state handed over as the live loop does. The expected
outcome of every tick is in ``data/decision_golden.json``: per tick (replicas, reason, mode) plus a SHA-256
of every decision's full ``to_dict()`` and the carried state, so a change of any message, step, warm-up or
state entry is caught, and a failure shows the first tick that differs.

The file holds two sets. ``legacy`` runs every scenario without headroom and with the level correction
off, where today's policy and the one before it agree, and was recorded from the implementation as it was
before its performance work (the per-artifact memo, nanosecond arithmetic, due-only warm-up planning):
those optimisations must keep it bit-identical. ``product`` runs the scenarios with the current defaults
(headroom on the forecast mean, level correction on); a deliberate policy change re-records it with
``.venv/bin/python -m tests.controller.test_decision_golden --record`` and says so in its review.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from controller.config import BehaviorConfig, LevelCorrectionConfig, ScalingPolicy, ScalingRules, WarmupConfig
from controller.core.decision import Decision, decide
from controller.core.state import ControllerState
from controller.ports import ObservedLoad
from forecaster.artifact import Event, ForecastArtifact, Interval
from tests.support.builders import T0, config

GOLDEN = Path(__file__).parent / "data" / "decision_golden.json"
DAY = pd.Timedelta(days=1)


def daily_forecast(
    *, step: int, start: pd.Timestamp, hours: float, base: float, amp: float, created: pd.Timestamp,
    peak_factor: float = 1.25, events: tuple[Event, ...] = (),
) -> ForecastArtifact:
    """A daily-shaped forecast (trough at 04:00, peak at 16:00) with a step rise at 18:00 lasting one hour."""
    n = int(hours * 3600 // step)
    ivs = []
    for i in range(n):
        ds = start + pd.Timedelta(seconds=step * i)
        hour = (ds - ds.normalize()) / pd.Timedelta(hours=1)
        m = base + amp * math.sin((hour - 10.0) / 24.0 * 2 * math.pi)
        if 18.0 <= hour < 19.0:
            m *= 1.8
        m = max(m, 0.0)
        ivs.append(Interval(ds, m, m * 0.85, m * 1.15, m * 1.15 * peak_factor))
    return ForecastArtifact(
        created_at=created, model="golden", timezone="UTC", interval_seconds=step, band_level=0.9,
        history_start=start - pd.Timedelta(days=28), history_end=start, history_points=8064,
        source="golden", horizon_seconds=step * n, intervals=tuple(ivs), events=events,
    )


@dataclass(frozen=True)
class Scenario:
    id: str
    start: pd.Timestamp  # first tick
    ticks: int
    cfg: dict[str, Any] = field(default_factory=dict)
    step: int = 300  # forecast interval, s
    level: float = 1.0  # observed = level x forecast mean x noise
    surge: tuple[int, int, float] = (0, 0, 1.0)  # ticks [a, b) multiplied by the factor
    noise: float = 0.08
    gaps: tuple[int, ...] = ()  # ticks without a load sample
    stale_load: tuple[int, ...] = ()
    nan_load: tuple[int, ...] = ()
    no_forecast: tuple[int, ...] = ()  # ticks where the store returned nothing
    stale_from: int | None = None  # from this tick on the forecast is 4 h old
    hours: float = 30.0  # forecast horizon from its start
    initial: int | None = 5
    seed: int = 0


EVENTS = (
    Event("Promo", "promotion", T0.normalize() + pd.Timedelta(hours=17, minutes=20),
          T0.normalize() + pd.Timedelta(hours=19), None),
    Event("Payday", "payday", T0.normalize() + pd.Timedelta(hours=17, minutes=40),
          T0.normalize() + pd.Timedelta(hours=20), 1.6),
)
CLIMB = BehaviorConfig(
    scale_up=ScalingRules((ScalingPolicy("Pods", 2, 15), ScalingPolicy("Percent", 20, 15)), "Min", 0),
    scale_down=ScalingRules((ScalingPolicy("Pods", 1, 60),), "Max", 600),
)
SLOW = BehaviorConfig(
    scale_up=ScalingRules((ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 20, 60)), "Min", 60),
    scale_down=ScalingRules((ScalingPolicy("Pods", 1, 60),), "Max", 600),
)
WARM = WarmupConfig(enabled=True, url="http://warm.invalid/w")

SCENARIOS = [
    Scenario("ramp-default-warmup", T0.normalize() + pd.Timedelta(hours=16), 400, cfg={"warmup": WARM}),
    Scenario("morning-rise-headroom0", T0.normalize() + pd.Timedelta(hours=5), 360,
             cfg={"headroom": 0.0, "warmup": WARM}, seed=1),
    Scenario("surge-forecast-missed", T0.normalize() + pd.Timedelta(hours=11), 300, surge=(60, 140, 2.5),
             seed=2),
    Scenario("collapse-below-forecast", T0.normalize() + pd.Timedelta(hours=12), 300, level=0.3,
             surge=(200, 300, 3.0), seed=3),
    Scenario("blind-gaps-stale-nan", T0.normalize() + pd.Timedelta(hours=15), 300, gaps=tuple(range(40, 60)),
             stale_load=tuple(range(100, 115)), nan_load=(150, 151, 152), no_forecast=tuple(range(200, 220)),
             seed=4),
    Scenario("stale-forecast-reactive", T0.normalize() + pd.Timedelta(hours=9), 240, stale_from=120, seed=5),
    Scenario("horizon-end-partial", T0.normalize() + pd.Timedelta(hours=19), 260, hours=21.0, seed=6),
    Scenario("slow-behavior-exceed", T0.normalize() + pd.Timedelta(hours=16), 400,
             cfg={"behavior": SLOW, "max_replicas": 12, "max_capacity": "exceed", "burst_buffer": 4,
                  "tolerance": 0.0, "warmup": WARM}, seed=7),
    Scenario("slow-behavior-ramp-and-fall", T0.normalize() + pd.Timedelta(hours=17), 330,
             cfg={"behavior": CLIMB}, noise=0.03, seed=10),
    Scenario("hourly-forecast-honour-cap", T0.normalize() + pd.Timedelta(hours=14), 300, step=3600,
             cfg={"max_replicas": 9, "min_replicas": 2, "headroom": 0.5}, seed=8),
    Scenario("minute-forecast-first-decision", T0.normalize() + pd.Timedelta(hours=17), 300, step=60,
             initial=None, noise=0.2, cfg={"warmup": WARM, "capacity_per_replica": 37.5}, seed=9),
]


LEGACY = {"headroom": 0.0, "level_correction": LevelCorrectionConfig(enabled=False)}


def run(
    sc: Scenario, *, legacy: bool = False, decide_fn: Callable[..., Decision] = decide
) -> Iterator[Decision]:
    """Step the scenario; ``legacy`` runs it without headroom and level correction (see the module doc)."""
    day0 = T0.normalize()
    fresh = daily_forecast(step=sc.step, start=day0, hours=sc.hours, base=1000.0, amp=600.0,
                           created=sc.start - pd.Timedelta(minutes=30), events=EVENTS)
    stale = dataclasses.replace(fresh, created_at=sc.start - pd.Timedelta(hours=4))
    cfg = config(**{**sc.cfg, **(LEGACY if legacy else {})})
    rng = np.random.default_rng(sc.seed)
    noise = rng.lognormal(0.0, sc.noise, sc.ticks)
    means = {iv.ds: iv.yhat for iv in fresh.intervals}
    step = pd.Timedelta(seconds=sc.step)
    state = ControllerState(replicas=sc.initial)
    for k in range(sc.ticks):
        now = sc.start + k * cfg.interval_td
        forecast: ForecastArtifact | None = fresh
        if k in sc.no_forecast:
            forecast = None
        elif sc.stale_from is not None and k >= sc.stale_from:
            forecast = stale
        mean = means.get(day0 + ((now - day0) // step) * step, 900.0)
        rate = sc.level * mean * float(noise[k]) * (sc.surge[2] if sc.surge[0] <= k < sc.surge[1] else 1.0)
        observed: ObservedLoad | None = ObservedLoad(rate, now - pd.Timedelta(seconds=10))
        if k in sc.gaps:
            observed = None
        elif k in sc.stale_load:
            observed = ObservedLoad(rate, now - pd.Timedelta(minutes=10))
        elif k in sc.nan_load:
            observed = ObservedLoad(float("nan"), now)
        d = decide_fn(forecast, observed, state, cfg, now)
        yield d
        state = d.state  # the target took the decision (the live loop re-reads the same value)


def fingerprint(decisions: list[Decision]) -> dict[str, Any]:
    h = hashlib.sha256()
    for d in decisions:
        s = d.state
        carried = {
            "replicas": s.replicas,
            "recommendations": [[t.isoformat(), n] for t, n in s.recommendations],
            "scaleEvents": [[t.isoformat(), n] for t, n in s.scale_events],
            "issuedWarmups": [[k, t.isoformat()] for k, t in s.issued_warmups],
        }
        h.update(json.dumps([d.to_dict(), carried], sort_keys=True).encode())
    return {"ticks": [[d.replicas, d.reason, d.mode] for d in decisions], "sha256": h.hexdigest()}


@pytest.mark.parametrize("legacy", [False, True], ids=["product", "legacy"])
@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_decisions_match_the_golden_record(sc: Scenario, legacy: bool) -> None:
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))["legacy" if legacy else "product"][sc.id]
    got = fingerprint(list(run(sc, legacy=legacy)))
    for k, (w, g) in enumerate(zip(want["ticks"], got["ticks"], strict=True)):
        assert g == w, f"{sc.id}: tick {k} ({sc.start + k * pd.Timedelta(seconds=30)}) differs: {g} != {w}"
    assert got["sha256"] == want["sha256"], f"{sc.id}: same replicas, but a message/step/state differs"


def test_scenarios_exercise_every_path() -> None:
    """The golden set is only a proof if it reaches the rules that matter (guards against a blunt rewrite)."""
    seen = {s.reason for sc in SCENARIOS for d in run(sc) for s in d.steps}
    seen |= {w.reason for sc in SCENARIOS for d in run(sc) for w in d.warmups}
    must = {
        "ForecastPeak", "Headroom", "ForecastMissed", "ObservedLoadFloor", "RampAnticipation", "ScaleUpLimit",
        "ScaleDownLimit", "ScaleDownStabilized", "WithinTolerance", "MaxCapacityExceeded", "ReactiveScaling",
        "NoScaleDownWhileBlind", "ObservedLoadMissing", "ObservedLoadStale", "StaleForecast", "NoForecast",
        "ForecastPartial", "RampAhead", "EventAhead", "NewReplicas", "ForecastLevelCorrected",
    }
    assert must <= seen, sorted(must - seen)


def record(*, legacy_from: Callable[..., Decision] | None = None) -> None:
    """Re-record the product set (the legacy set is kept unless ``legacy_from`` gives the decide to use)."""
    data = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
    data["product"] = {sc.id: fingerprint(list(run(sc))) for sc in SCENARIOS}
    if legacy_from is not None:
        data["legacy"] = {
            sc.id: fingerprint(list(run(sc, legacy=True, decide_fn=legacy_from))) for sc in SCENARIOS
        }
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"recorded {len(SCENARIOS)} scenarios in {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
