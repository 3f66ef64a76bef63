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
      "backtest": {"wape": 0.041, "mape": 0.05, "bias": -0.01, "coverage": 0.9, "folds": 4} | null,
      "error_quantiles": {                             # optional (absent: no backtest); see ErrorQuantiles
        "levels": [0.5, ..., 0.999], "lead_seconds": [0, 3600, ...], "band_upper": [...per step...],
        "quantiles": [[...per level...] per lead bucket], "residuals": [...], "coverage": [...per level...]
      }
    }

``ds`` is the start of an interval; the values are mean rates over the interval in the unit of the history
(for the controller: requests per second). ``peak_upper`` is the upper band of the *peak* rate inside the
interval (>= ``yhat_upper``): capacity must cover the burst, not the mean.

``error_quantiles`` was added to version 1 as an optional field: readers that predate it ignore it, and a
reader of an artifact without it (an older job, or no backtest) treats the forecast errors as unknown
(``controller.availabilityTarget`` then falls back to the band and headroom, and says so).
"""

from __future__ import annotations

import bisect
import itertools
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
class ErrorQuantiles:
    """The forecast's backtest errors by lead time, for sizing at an availability target.

    The residuals are those the band is calibrated on (scaled as in :mod:`forecaster.band`), grouped into
    lead buckets (lead = interval start - history end; bucket ``b`` holds leads from ``lead_seconds[b]`` to
    the next edge). ``quantiles[b][j]`` is their one-sided finite-sample quantile at ``levels[j]``, in the
    band's scaled units; ``band_upper[k]`` is the band's own upper quantile at horizon step ``k``, so the
    ``levels[j]`` upper bound of the interval at step ``k`` is ``yhat + quantiles[b][j] / band_upper[k] *
    (yhat_upper - yhat)``: it inherits the band's scale, widening, event effects and what-if scaling.
    ``coverage[j]`` is the share of backtest actuals at or below that bound when each fold is judged by a
    table built from the other folds (honest); ``residuals[b]`` counts a bucket's.
    """

    levels: tuple[float, ...]
    lead_seconds: tuple[float, ...]
    quantiles: tuple[tuple[float, ...], ...]
    band_upper: tuple[float, ...]
    residuals: tuple[int, ...]
    coverage: tuple[float, ...]

    def multiple(self, level: float, lead_s: float, step: int) -> float:
        """The bound at ``level`` for the interval at horizon ``step`` (lead ``lead_s`` seconds), in units
        of that interval's upper band half-width (linear between table levels, clamped to them); 0 where
        the band has no upper width (the bound is then the forecast itself)."""
        b = max(bisect.bisect_right(self.lead_seconds, lead_s) - 1, 0)
        upper = self.band_upper[min(max(step, 0), len(self.band_upper) - 1)]
        return _interp(self.levels, self.quantiles[b], level) / upper if upper > 0 else 0.0

    def achieved(self, level: float) -> float:
        """The backtest's (cross-validated) share of actuals covered at ``level``."""
        return _interp(self.levels, self.coverage, level)

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "lead_seconds": list(self.lead_seconds),
            "quantiles": [list(q) for q in self.quantiles],
            "band_upper": list(self.band_upper),
            "residuals": list(self.residuals),
            "coverage": list(self.coverage),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorQuantiles:
        return cls(
            tuple(float(v) for v in data["levels"]),
            tuple(float(v) for v in data["lead_seconds"]),
            tuple(tuple(float(v) for v in row) for row in data["quantiles"]),
            tuple(float(v) for v in data["band_upper"]),
            tuple(int(v) for v in data["residuals"]),
            tuple(float(v) for v in data["coverage"]),
        )

    def problem(self) -> str | None:
        """Why the table cannot be used, or None: shapes, order, finiteness."""
        lv, leads = self.levels, self.lead_seconds
        if not lv or any(not 0 < v < 1 for v in lv) or any(b <= a for a, b in itertools.pairwise(lv)):
            return "levels must be ascending in (0, 1)"
        if not leads or leads[0] != 0 or any(b <= a for a, b in itertools.pairwise(leads)):
            return "lead_seconds must be ascending from 0"
        if len(self.quantiles) != len(leads) or len(self.residuals) != len(leads):
            return "quantiles and residuals need one row per lead bucket"
        if len(self.coverage) != len(lv) or any(len(row) != len(lv) for row in self.quantiles):
            return "quantiles rows and coverage need one value per level"
        if not self.band_upper or any(not (math.isfinite(v) and v >= 0) for v in self.band_upper):
            return "band_upper needs one finite value >= 0 per horizon step"
        values = [*self.coverage, *(v for row in self.quantiles for v in row)]
        if not all(math.isfinite(v) for v in values) or any(n < 0 for n in self.residuals):
            return "values must be finite (residual counts >= 0)"
        if any(b < a for row in self.quantiles for a, b in itertools.pairwise(row)):
            return "quantiles must not decrease with the level"
        return None


def _interp(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    j = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


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
    error_quantiles: ErrorQuantiles | None = None

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
            **({"error_quantiles": self.error_quantiles.to_dict()} if self.error_quantiles else {}),
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
                error_quantiles=(
                    ErrorQuantiles.from_dict(data["error_quantiles"]) if data.get("error_quantiles") else None
                ),
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
    if art.error_quantiles is not None:
        problem = art.error_quantiles.problem()
        if problem is not None:
            raise StoreError(f"{where}: error_quantiles: {problem}")


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
