"""Table-driven decide() with declared scaling windows: floors, caps, lead time, overlaps, safety, warm-ups.

Frozen time: T0 is Thursday 2026-11-26 10:00 UTC; the test config has start-up 60 s + warm-up 30 s and a
30 s loop, so a floor is requested from 2 minutes (lead + interval) before its window opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from controller.config import WarmupConfig
from controller.core.decision import decide
from controller.core.schedule import CHUNK_NS, WINDOW_AHEAD, listing, timetable
from controller.core.state import ControllerState
from controller.ports import ObservedLoad
from controller.windows import ScalingWindow
from forecaster.artifact import ForecastArtifact
from tests.support.builders import T0, artifact, at, config

FLAT_800 = artifact([800.0] * 36)  # the band needs 8 replicas all along
HIGH = artifact([3500.0] * 36)  # the band needs 35


def win(name: str = "promo", start: str = "5 10 * * *", *, duration: float | None = 3600, **kw: Any
        ) -> ScalingWindow:
    """Opens 10:05 UTC daily for an hour unless told otherwise."""
    return ScalingWindow(name=name, start=start, duration=duration, **{"min_replicas": 20, **kw})


@dataclass(frozen=True)
class Case:
    id: str
    windows: tuple[ScalingWindow, ...]
    now_s: float  # seconds after T0
    want: int
    reason: str
    window: str | None = None
    forecast: ForecastArtifact | None = FLAT_800
    observed: float | None = 600.0
    current: int | None = 8
    cfg: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("before-the-lead-no-floor", (win(),), 179, 8, "ForecastPeak"),
    Case("floor-requested-lead-plus-interval-early", (win(),), 180, 20, "ScheduledFloor", "promo"),
    Case("floor-while-open", (win(),), 1800, 20, "ScheduledFloor", "promo"),
    Case("floor-until-the-end", (win(),), 3899, 20, "ScheduledFloor", "promo"),
    Case("gone-at-the-end", (win(),), 3900, 8, "ForecastPeak"),
    Case("floor-never-lowers-the-forecast", (win(),), 600, 35, "ForecastPeak", "promo", forecast=HIGH,
         current=35),
    Case("floor-never-lowers-the-live-load", (win(),), 600, 33, "ObservedLoadFloor", "promo",
         observed=3000.0),
    Case("floor-is-not-rate-limited", (win(min_replicas=40),), 600, 40, "ScheduledFloor", "promo", current=2),
    Case("floor-when-blind-and-reactive", (win(),), 600, 20, "ScheduledFloor", "promo", forecast=None,
         observed=None, current=3),
    Case("floor-above-min-replicas-only", (win(min_replicas=2),), 600, 8, "ForecastPeak", "promo"),
    Case("cap-lowers-the-forecast-need", (win(min_replicas=10, max_replicas=25),), 600, 25, "ScheduledCap",
         "promo", forecast=HIGH, observed=2000.0, current=25),
    Case("cap-not-before-it-opens", (win(min_replicas=10, max_replicas=25),), 240, 35, "ForecastPeak",
         "promo", forecast=HIGH, observed=2000.0, current=35),
    Case("cap-lifted-lead-plus-interval-before-the-end", (win(min_replicas=10, max_replicas=25),), 3780, 35,
         "ForecastPeak", "promo", forecast=HIGH, observed=2000.0, current=35),
    Case("observed-load-exceeds-the-cap", (win(min_replicas=10, max_replicas=25),), 600, 33,
         "ObservedLoadFloor", "promo", forecast=HIGH, observed=3000.0, current=25),
    Case("blind-hold-exceeds-the-cap", (win(min_replicas=10, max_replicas=25),), 600, 30,
         "NoScaleDownWhileBlind", "promo", forecast=HIGH, observed=None, current=30),
    Case("overlap-takes-the-largest-floor", (win("a", min_replicas=12), win("b", "0 10 * * *",
         min_replicas=18)), 600, 18, "ScheduledFloor", "b"),
    Case("overlap-takes-the-tightest-cap", (win("a", min_replicas=0, max_replicas=30),
         win("b", min_replicas=0, max_replicas=26)), 600, 26, "ScheduledCap", "b", forecast=HIGH,
         observed=1000.0, current=26),
    Case("cap-never-below-the-floor-in-force", (win("a", min_replicas=22),
         win("b", min_replicas=0, max_replicas=15)), 600, 22, "ScheduledCap", "b", forecast=HIGH,
         observed=1000.0, current=22),
    Case("floor-capped-by-max-replicas-limit", (win(min_replicas=20),), 600, 20, "ScheduledFloor", "promo",
         cfg={"max_replicas": 20}),
    Case("local-time-zone", (win(start="5 11 * * *", timezone="Europe/Paris"),), 600, 20, "ScheduledFloor",
         "promo"),
    Case("other-weekday-does-not-open", (win(start="5 10 * * 5"),), 600, 8, "ForecastPeak"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide_with_scaling_windows(case: Case) -> None:
    cfg = config(scaling_windows=case.windows, **case.cfg)
    now = at(case.now_s)
    observed = None if case.observed is None else ObservedLoad(case.observed, now)
    d = decide(case.forecast, observed, ControllerState(replicas=case.current), cfg, now)
    assert (d.replicas, d.reason, d.window) == (case.want, case.reason, case.window), d.explain()
    assert d.state.replicas == d.replicas


def test_the_floor_is_ready_and_warm_when_the_window_opens() -> None:
    """Stepping the loop: the replicas asked for lead + interval ahead are serving at the window's start."""
    cfg = config(scaling_windows=(win(min_replicas=30),))
    state = ControllerState(replicas=8)
    asked: dict[pd.Timestamp, int] = {}
    for k in range(-20, 10):
        now = at(300 + 30 * k)  # ticks on the half minute around the 10:05 opening
        d = decide(FLAT_800, ObservedLoad(600.0, now), state, cfg, now)
        asked[now], state = d.replicas, d.state
    opens = at(300)
    ready_by = [t for t, n in asked.items() if n >= 30 and t + cfg.lead <= opens]
    assert ready_by, asked  # some tick asked for the floor early enough to be ready at 10:05
    assert max(n for t, n in asked.items() if t < opens - cfg.window_td) == 8  # and not earlier than needed


def test_a_window_gets_one_cache_warmup_before_it_opens() -> None:
    warm = WarmupConfig(enabled=True, url="http://warm.invalid/", lead=600)
    cfg = config(scaling_windows=(win(), win("cap-only", "0 10 * * *", min_replicas=0, max_replicas=40)),
                 warmup=warm)
    state = ControllerState(replicas=8)
    issued = []
    for k in range(0, 30):
        now = at(-600 + 30 * k)
        d = decide(FLAT_800, ObservedLoad(600.0, now), state, cfg, now)
        issued += [(now, w) for w in d.warmups if w.reason == WINDOW_AHEAD]
        state = d.state
    assert len(issued) == 1, issued  # one call (idempotency key kept in the state); none for the cap-only
    when, action = issued[0]
    assert when == at(300 - 600) and action.at == at(300 - 600)
    assert "scaling window 'promo' opens 2026-11-26T10:05:00+00:00" in action.message
    restarted = decide(FLAT_800, ObservedLoad(600.0, when), ControllerState(replicas=8), cfg, when)
    assert [w.key for w in restarted.warmups if w.reason == WINDOW_AHEAD] == [action.key]  # same key


def test_windows_across_the_weekly_chunks_match_their_occurrences() -> None:
    """The timetable is built a week at a time: a window spanning a chunk edge is in force on both sides."""
    edge = pd.Timestamp((T0.value // CHUNK_NS + 1) * CHUNK_NS, tz="UTC")
    opens = edge - pd.Timedelta(hours=1)
    w = win(start=f"{opens.minute} {opens.hour} * * *", duration=2 * 3600)
    cfg = config(scaling_windows=(w,))
    table = timetable(cfg)
    assert table is not None
    pre = cfg.window_td
    for t, want in ((opens - pre - pd.Timedelta(seconds=1), None), (opens - pre, 20), (edge, 20),
                    (edge + pd.Timedelta(minutes=59, seconds=59), 20), (edge + pd.Timedelta(hours=1), None)):
        got = table.at(t.value)
        assert (got.floor if got else None) == want, t


def test_listing_names_every_opening_with_its_request_time() -> None:
    cfg = config(scaling_windows=(win(), win("late", "0 22 * * *", duration=1800, min_replicas=5)))
    rows = listing(cfg, T0, T0 + pd.Timedelta(days=2))
    assert [(r["window"], r["start"].isoformat()) for r in rows] == [
        ("promo", "2026-11-26T10:05:00+00:00"), ("late", "2026-11-26T22:00:00+00:00"),
        ("promo", "2026-11-27T10:05:00+00:00"), ("late", "2026-11-27T22:00:00+00:00"),
    ]
    assert rows[0]["requested_from"] == at(180) and rows[1]["end"] == pd.Timestamp("2026-11-26T22:30Z")


def test_no_window_no_cost_and_no_change() -> None:
    cfg = config()
    assert timetable(cfg) is None
    plain = decide(FLAT_800, ObservedLoad(600.0, T0), ControllerState(replicas=8), cfg, T0)
    idle = cfg.evolve(scaling_windows=(win(start="0 0 25 12 *"),))
    other = decide(FLAT_800, ObservedLoad(600.0, T0), ControllerState(replicas=8), idle, T0)
    assert plain.to_dict() == other.to_dict() and "window" not in plain.to_dict()
