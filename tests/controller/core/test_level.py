"""The level correction: when it applies, how far, how fast it lets go, and how decide() uses it."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from controller.config import LevelCorrectionConfig, parse_controller_config
from controller.core.decision import decide
from controller.core.level import LEVEL_CORRECTED, update
from controller.core.state import ControllerState
from controller.ports import ObservedLoad
from forecaster.configbase import Duration
from forecaster.errors import ConfigError
from tests.support.builders import T0, artifact, at, config

CFG = LevelCorrectionConfig()  # window 30 min, sustain 30 min, deadband 0.15, factor 0.6..1.5


def feed(
    ratios: list[float], cfg: LevelCorrectionConfig = CFG, every: int = 30
) -> tuple[ControllerState, float]:
    """Feed observed = ratio x forecast mean (100 req/s) every ``every`` seconds; return state and factor."""
    state, factor = ControllerState(), 1.0
    for k, r in enumerate(ratios):
        lv = update(state, cfg, 100.0 * r, 100.0, at(k * every))
        state = ControllerState(level=lv.log, level_at=lv.at, level_since=lv.since)
        factor = lv.factor
    return state, factor


CASES = [
    # id, ratios fed every 30 s, expected factor after the last one (approx)
    ("on-forecast", [1.0] * 200, 1.0),
    ("within-deadband", [0.9] * 200, 1.0),
    ("short-dip-not-sustained", [0.5] * 40, 1.0),  # 20 min: below the band, but not for 30 min yet
    ("sustained-collapse-bounded", [0.05] * 200, 0.6),
    ("sustained-moderate-low", [0.75] * 400, 0.75),
    ("sustained-high-bounded", [3.0] * 400, 1.5),
    ("sustained-moderate-high", [1.3] * 400, 1.3),
    ("noise-around-forecast", [0.7, 1.4] * 200, 1.0),
]


@pytest.mark.parametrize(("ratios", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_factor(ratios: list[float], want: float) -> None:
    _, factor = feed(ratios)
    assert factor == pytest.approx(want, abs=0.02)


def test_cut_is_released_quickly_when_load_returns() -> None:
    state, factor = feed([0.05] * 200)
    assert factor == pytest.approx(0.6)
    after = []
    for k in range(20):
        lv = update(state, CFG, 100.0, 100.0, at(200 * 30 + k * 30))
        state = ControllerState(level=lv.log, level_at=lv.at, level_since=lv.since)
        after.append(lv.factor)
    assert after[0] > 0.6, after  # the first sample back on forecast already releases part of the cut
    assert after[13] == 1.0, after  # within 7 minutes no cut is left (the slow pace would take 35)
    assert -0.2 < state.level <= 0.0  # released up to on-forecast, not beyond


@pytest.mark.parametrize(
    ("observed", "mean"), [(None, 100.0), (50.0, None), (50.0, 0.0)],
    ids=["no-load", "not-covered", "zero-mean"],
)
def test_no_usable_ratio_carries_the_level_and_applies_nothing(
    observed: float | None, mean: float | None
) -> None:
    state, _ = feed([0.3] * 200)
    lv = update(state, CFG, observed, mean, at(200 * 30))
    assert (lv.log, lv.at, lv.since, lv.factor) == (state.level, state.level_at, state.level_since, 1.0)


def test_a_gap_longer_than_the_window_starts_afresh() -> None:
    state, _ = feed([0.3] * 200)
    lv = update(state, CFG, 30.0, 100.0, at(200 * 30 + 3600))
    assert lv.factor == 1.0 and lv.since == at(200 * 30 + 3600)  # below the band again, sustain restarts
    assert lv.log == pytest.approx(math.log(0.6))  # 0.3 counts as the bound minFactor


def test_disabled_never_corrects() -> None:
    _, factor = feed([0.05] * 200, LevelCorrectionConfig(enabled=False))
    assert factor == 1.0


def test_decide_scales_the_forecast_down_after_a_sustained_collapse_but_never_below_observed() -> None:
    art = artifact([1200.0] * 40, yhat=[1000.0] * 40)  # 12 replicas by the band
    cfg, state, d = config(), ControllerState(replicas=12), None
    for k in range(80):  # 40 minutes at 30 % of the forecast
        now = at(30 * k)
        d = decide(art, ObservedLoad(300.0, now), state, cfg, now)
        state = d.state
    assert d is not None
    codes = [s.reason for s in d.steps]
    assert LEVEL_CORRECTED in codes, d.explain()
    assert "0.60" in next(s.message for s in d.steps if s.reason == LEVEL_CORRECTED)
    assert d.replicas == 8  # 1200 x 0.6 = 720 -> 8 (and 600 +10% -> 7)
    spike = decide(art, ObservedLoad(1500.0, at(2400)), state, cfg, at(2400))
    assert spike.replicas >= 17  # the observed floor still applies at once: 1500 +10% -> 17


def test_decide_without_load_does_not_correct() -> None:
    art = artifact([1200.0] * 40, yhat=[1000.0] * 40)
    state = ControllerState(
        replicas=12, level=math.log(0.3), level_at=T0, level_since=T0 - pd.Timedelta(hours=1)
    )
    d = decide(art, None, state, config(), at(30))
    assert LEVEL_CORRECTED not in [s.reason for s in d.steps] and d.replicas == 12


def test_level_survives_the_state_round_trip_and_old_state_reads_as_none() -> None:
    state, _ = feed([0.3] * 200)
    again = ControllerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    old = ControllerState.from_dict({"replicas": 3})
    assert (old.level, old.level_at, old.level_since) == (0.0, None, None)


@pytest.mark.parametrize(
    ("section", "message"),
    [({"minFactor": 0}, "levelCorrection.minFactor"), ({"maxFactor": 0.5}, "levelCorrection.maxFactor"),
     ({"deadband": 1.0}, "levelCorrection.deadband"), ({"window": "0s"}, "levelCorrection.window")],
    ids=["min-factor-zero", "max-factor-below-one", "deadband-one", "window-zero"],
)
def test_config_validation_names_the_field(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_controller_config({"capacityPerReplica": 10, "levelCorrection": section})


def test_config_parses_the_section() -> None:
    cfg = parse_controller_config(
        {"capacityPerReplica": 10, "levelCorrection": {"window": "1h", "minFactor": 0.5, "enabled": False}}
    )
    assert cfg.level_correction == LevelCorrectionConfig(enabled=False, window=Duration(3600), min_factor=0.5)
