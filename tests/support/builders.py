"""Builders shared by the decision, warm-up and plan tests: small artifacts and configs with frozen time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from controller.config import ControllerConfig
from forecaster.artifact import Event, ForecastArtifact, Interval
from forecaster.configbase import Duration

T0 = pd.Timestamp("2026-11-26T10:00:00Z")


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def artifact(
    peaks: Sequence[float],
    *,
    step: int = 300,
    start: pd.Timestamp = T0,
    created: pd.Timestamp | None = None,
    events: Sequence[Event] = (),
    yhat: Sequence[float] | None = None,
) -> ForecastArtifact:
    """An artifact whose intervals start at ``start`` with the given ``peak_upper`` values (req/s).

    ``yhat`` defaults to peak / 1.2 and the band to yhat * (0.9, 1.1), so bands stay ordered.
    """
    means = list(yhat) if yhat is not None else [p / 1.2 for p in peaks]
    ivs = tuple(
        Interval(start + pd.Timedelta(seconds=step * i), m, m * 0.9, min(m * 1.1, p), p)
        for i, (m, p) in enumerate(zip(means, peaks, strict=True))
    )
    return ForecastArtifact(
        created_at=created if created is not None else start,
        model="test",
        timezone="UTC",
        interval_seconds=step,
        band_level=0.9,
        history_start=start - pd.Timedelta(days=7),
        history_end=start,
        history_points=2016,
        source="test",
        horizon_seconds=step * len(peaks),
        intervals=ivs,
        events=tuple(events),
    )


def config(**overrides: Any) -> ControllerConfig:
    """capacity 100 req/s, headroom 10%, replicas 1..50, lead 90 s, interval 30 s, HPA default behavior."""
    base: dict[str, Any] = {
        "capacity_per_replica": 100.0,
        "headroom": 0.1,
        "min_replicas": 1,
        "max_replicas": 50,
        "startup": Duration(60),
        "warmup_time": Duration(30),
        "interval": Duration(30),
    }
    base.update(overrides)
    return ControllerConfig(**base)
