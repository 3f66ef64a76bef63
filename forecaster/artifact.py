"""The forecast artifact: the versioned JSON document the forecast job writes and the controller reads.

This is the contract between the scheduled job and the controller (and any other reader), so it is
versioned and validated on both write and read. Schema version 1, all timestamps ISO 8601 with offset::

    {
      "schema": "recharge-autoscaler/forecast",
      "version": 1,
      "created_at": "2026-11-26T10:00:00+00:00",      # when the job produced it (UTC)
      "model": "seasonal_median",                      # alias of the chosen model
      "timezone": "Europe/Paris",                      # zone used for calendar/seasonality
      "interval_seconds": 3600,                        # width of each interval
      "band_level": 0.9,                               # nominal coverage of [yhat_lower, yhat_upper]
      "history": {"start": ..., "end": ..., "points": 1344, "source": "prometheus:sum(rate(...))"},
      "horizon_seconds": 86400,
      "intervals": [                                   # ascending, contiguous, one per interval
        {"ds": ..., "yhat": 812.0, "yhat_lower": 760.1, "yhat_upper": 870.3, "peak_upper": 930.0}
      ],
      "events": [{"name": "Month start", "kind": "month_start", "start": ..., "end": ..., "uplift": 1.3}],
      "quality": [{"code": "gap", "severity": "warning", "message": "3 missing intervals ..."}],
      "backtest": {"wape": 0.041, "mape": 0.05, "bias": -0.01, "coverage": 0.9, "folds": 4} | null
    }

``ds`` is the start of an interval; the values are mean rates over the interval in the unit of the history
(for the controller: requests per second). ``peak_upper`` is the upper band of the *peak* rate inside the
interval (>= ``yhat_upper``): capacity must cover the burst, not the mean.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from forecaster.errors import StoreError

SCHEMA_NAME = "recharge-autoscaler/forecast"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Interval:
    ds: pd.Timestamp
    yhat: float
    yhat_lower: float
    yhat_upper: float
    peak_upper: float


@dataclass(frozen=True)
class Event:
    name: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    uplift: float | None = None


@dataclass(frozen=True)
class QualityNote:
    code: str
    severity: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class ForecastArtifact:
    created_at: pd.Timestamp
    model: str
    timezone: str
    interval_seconds: int
    band_level: float
    history_start: pd.Timestamp
    history_end: pd.Timestamp
    history_points: int
    source: str
    horizon_seconds: int
    intervals: tuple[Interval, ...]
    events: tuple[Event, ...] = ()
    quality: tuple[QualityNote, ...] = ()
    backtest: dict[str, float] | None = field(default=None)

    def frame(self) -> pd.DataFrame:
        """Intervals as a frame with columns ds, yhat, yhat_lower, yhat_upper, peak_upper."""
        return pd.DataFrame([asdict(i) for i in self.intervals], columns=list(Interval.__dataclass_fields__))

    def age(self, now: pd.Timestamp) -> pd.Timedelta:
        return pd.Timestamp(now) - self.created_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "version": SCHEMA_VERSION,
            "created_at": _iso(self.created_at),
            "model": self.model,
            "timezone": self.timezone,
            "interval_seconds": self.interval_seconds,
            "band_level": self.band_level,
            "history": {
                "start": _iso(self.history_start),
                "end": _iso(self.history_end),
                "points": self.history_points,
                "source": self.source,
            },
            "horizon_seconds": self.horizon_seconds,
            "intervals": [
                {
                    "ds": _iso(i.ds),
                    "yhat": i.yhat,
                    "yhat_lower": i.yhat_lower,
                    "yhat_upper": i.yhat_upper,
                    "peak_upper": i.peak_upper,
                }
                for i in self.intervals
            ],
            "events": [
                {
                    "name": e.name,
                    "kind": e.kind,
                    "start": _iso(e.start),
                    "end": _iso(e.end),
                    "uplift": e.uplift,
                }
                for e in self.events
            ],
            "quality": [asdict(q) for q in self.quality],
            "backtest": self.backtest,
        }

    def to_json(self) -> str:
        validate(self)
        return json.dumps(self.to_dict(), indent=1, sort_keys=False)

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str = "forecast artifact") -> ForecastArtifact:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{where}: not valid JSON ({exc})") from None
        return cls.from_dict(data, where=where)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "forecast artifact") -> ForecastArtifact:
        if not isinstance(data, dict):
            raise StoreError(f"{where}: expected a JSON object")
        if data.get("schema") != SCHEMA_NAME:
            raise StoreError(f"{where}: schema is {data.get('schema')!r}, expected {SCHEMA_NAME!r}")
        if data.get("version") != SCHEMA_VERSION:
            raise StoreError(
                f"{where}: schema version {data.get('version')!r} is not supported "
                f"(this build reads {SCHEMA_VERSION})"
            )
        try:
            hist = data["history"]
            art = cls(
                created_at=_ts(data["created_at"]),
                model=str(data["model"]),
                timezone=str(data["timezone"]),
                interval_seconds=int(data["interval_seconds"]),
                band_level=float(data["band_level"]),
                history_start=_ts(hist["start"]),
                history_end=_ts(hist["end"]),
                history_points=int(hist["points"]),
                source=str(hist["source"]),
                horizon_seconds=int(data["horizon_seconds"]),
                intervals=tuple(
                    Interval(
                        _ts(i["ds"]),
                        float(i["yhat"]),
                        float(i["yhat_lower"]),
                        float(i["yhat_upper"]),
                        float(i["peak_upper"]),
                    )
                    for i in data["intervals"]
                ),
                events=tuple(
                    Event(
                        str(e["name"]),
                        str(e["kind"]),
                        _ts(e["start"]),
                        _ts(e["end"]),
                        None if e.get("uplift") is None else float(e["uplift"]),
                    )
                    for e in data.get("events", [])
                ),
                quality=tuple(
                    QualityNote(str(q["code"]), str(q["severity"]), str(q["message"]))
                    for q in data.get("quality", [])
                ),
                backtest=data.get("backtest"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{where}: malformed field ({type(exc).__name__}: {exc})") from None
        validate(art, where=where)
        return art


def validate(art: ForecastArtifact, *, where: str = "forecast artifact") -> None:
    """Reject artifacts a controller must not act on: empty, unordered, non-finite or inverted bands."""
    if not art.intervals:
        raise StoreError(f"{where}: has no intervals")
    if art.interval_seconds <= 0:
        raise StoreError(f"{where}: interval_seconds must be positive")
    prev = None
    for n, i in enumerate(art.intervals):
        vals = (i.yhat, i.yhat_lower, i.yhat_upper, i.peak_upper)
        if not all(math.isfinite(v) for v in vals):
            raise StoreError(f"{where}: interval {n} ({_iso(i.ds)}) has a non-finite value")
        if min(vals) < 0:
            raise StoreError(f"{where}: interval {n} ({_iso(i.ds)}) has a negative value")
        if not (i.yhat_lower <= i.yhat <= i.yhat_upper <= i.peak_upper):
            raise StoreError(
                f"{where}: interval {n} ({_iso(i.ds)}) must satisfy "
                "yhat_lower <= yhat <= yhat_upper <= peak_upper"
            )
        if prev is not None and i.ds <= prev:
            raise StoreError(f"{where}: intervals are not in ascending order at {n} ({_iso(i.ds)})")
        prev = i.ds


def _iso(ts: pd.Timestamp) -> str:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.isoformat()


def _ts(text: Any) -> pd.Timestamp:
    t = pd.Timestamp(text)
    if t.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return t
