"""Table-driven decide() at an availability target: sizing from the artifact's error table by lead time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import pandas as pd
import pytest

from controller.core.decision import decide
from controller.core.state import ControllerState
from controller.core.target import interval_needs, target_rates
from controller.ports import ObservedLoad
from forecaster.artifact import ErrorQuantiles, ForecastArtifact
from tests.support.builders import T0, artifact, at, config

# Two lead buckets (from 0 and from 1 h) and three levels, in the band's scaled units; the band's upper
# quantile is 1.0 at every step, so a quantile reads directly as a multiple of the band's half-width.
TABLE = ErrorQuantiles(
    levels=(0.9, 0.99, 0.999),
    lead_seconds=(0.0, 3600.0),
    quantiles=((1.0, 2.0, 3.0), (1.5, 2.5, 3.5)),
    band_upper=(1.0,),
    residuals=(400, 800),
    coverage=(0.9, 0.985, 0.997),
)


def fc(peaks: list[float], yhat: list[float], *, table: ErrorQuantiles | None = TABLE,
       history_end: pd.Timestamp = T0) -> ForecastArtifact:
    """yhat_upper = 1.1 x yhat (the builder's band); history ends at ``history_end``."""
    return dataclasses.replace(artifact(peaks, yhat=yhat), error_quantiles=table, history_end=history_end)


FLAT = fc([880.0] * 24, [800.0] * 24)  # band upper 880 = peak: no burst; half-width 80 req/s


@dataclass(frozen=True)
class Case:
    id: str
    forecast: ForecastArtifact
    target: float
    want: int
    reason: str
    rate: float | None  # the decision's forecast_peak, req/s
    observed: float = 500.0


CASES = [
    Case("at-a-table-level", FLAT, 0.99, 10, "AvailabilityTarget", 800 + 2.0 * 80),
    Case("between-levels-linear", FLAT, 0.995, 11, "AvailabilityTarget", 800 + (2.0 + 5 / 9) * 80),
    Case("above-the-table-clamps", FLAT, 0.999, 11, "AvailabilityTarget", 800 + 3.0 * 80),
    Case("below-the-table-clamps", FLAT, 0.5, 9, "AvailabilityTarget", 800 + 1.0 * 80),
    # a band of zero width: the target adds nothing, where mean + 10% headroom would need 11
    Case("no-headroom-on-top", fc([1000.0] * 24, [1000.0] * 24), 0.9, 10, "AvailabilityTarget", 1000.0),
    Case("burst-ratio-carried", fc([1100.0] * 24, [800.0] * 24), 0.99, 12, "AvailabilityTarget",
         (800 + 160) * 1100 / 880),
    Case("longer-lead-bucket", fc([880.0] * 24, [800.0] * 24, history_end=T0 - pd.Timedelta(hours=2)),
         0.99, 10, "AvailabilityTarget", 800 + 2.5 * 80),
    # the band is half as wide per scaled unit at this step: the same quantile is twice its half-width
    Case("per-step-band-scale", fc([880.0] * 24, [800.0] * 24, table=replace(TABLE, band_upper=(0.5,))), 0.9,
         10, "AvailabilityTarget", 800 + 2.0 * 80),
    Case("no-band-width-no-margin", fc([880.0] * 24, [800.0] * 24, table=replace(TABLE, band_upper=(0.0,))),
         0.999, 8, "AvailabilityTarget", 800.0),
    Case("no-table-falls-back-to-band-and-headroom", fc([880.0] * 24, [800.0] * 24, table=None), 0.99, 9,
         "ForecastPeak", 880.0),
    Case("live-load-above-the-target-rate", FLAT, 0.99, 13, "ForecastMissed", 960.0, observed=1150.0),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide_at_an_availability_target(case: Case) -> None:
    cfg = config(availability_target=case.target)
    d = decide(case.forecast, ObservedLoad(case.observed, T0), ControllerState(replicas=9), cfg, T0)
    assert (d.replicas, d.reason) == (case.want, case.reason), d.explain()
    assert d.forecast_peak == pytest.approx(case.rate)
    notes = [s.reason for s in d.steps]
    assert ("NoErrorQuantiles" in notes) == (case.forecast.error_quantiles is None)


def test_the_message_names_the_target() -> None:
    cfg = config(availability_target=0.99)
    d = decide(FLAT, ObservedLoad(500.0, T0), ControllerState(replicas=9), cfg, T0)
    assert d.message.startswith("forecast at the 99.00% availability target")


def test_without_a_target_nothing_changes() -> None:
    cfg = config()
    plain = decide(FLAT, ObservedLoad(500.0, T0), ControllerState(replicas=9), cfg, T0)
    bare = decide(dataclasses.replace(FLAT, error_quantiles=None), ObservedLoad(500.0, T0),
                  ControllerState(replicas=9), cfg, T0)
    assert plain == bare and plain.reason == "ForecastPeak"  # band 880 (mean 800 +10% as much): 9


def test_ramp_anticipation_climbs_to_the_target_rate() -> None:
    """A later peak is judged at the target too: the climb starts for the target's need, not the band's."""
    from controller.config import BehaviorConfig, ScalingPolicy, ScalingRules

    slow = BehaviorConfig(scale_up=ScalingRules((ScalingPolicy("Pods", 2, 60),), "Max", 0))
    peaks = [880.0] * 2 + [2640.0] * 22
    ramp = fc(peaks, [p / 1.1 for p in peaks])
    band = decide(ramp, ObservedLoad(700.0, T0), ControllerState(replicas=9), config(behavior=slow), T0)
    tgt = decide(ramp, ObservedLoad(700.0, T0), ControllerState(replicas=9),
                 config(behavior=slow, availability_target=0.999), T0)
    assert "RampAnticipation" in [s.reason for s in tgt.steps], tgt.explain()
    wanted = next(s.replicas for s in tgt.steps if s.reason == "RampAnticipation")
    assert wanted == 32  # 2400 + 3.0 x 240 = 3120 req/s at 99.9%; the band's 2640 would need only 27
    assert band.replicas <= tgt.replicas


def test_interval_needs_and_rates_follow_the_table() -> None:
    cfg = config(availability_target=0.999)
    rates = target_rates(FLAT, 0.999)
    assert rates is not None and rates[0] == pytest.approx(1040.0)
    assert interval_needs(FLAT, cfg)[:2] == [11, 11]
    assert interval_needs(FLAT, config())[:2] == [9, 9]  # band 880 vs mean 800 +10%: 9
    assert target_rates(dataclasses.replace(FLAT, error_quantiles=None), 0.99) is None
    assert at(0) == T0
