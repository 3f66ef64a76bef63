"""The forecasts a replay refits: fitted from files, shared between policies, and fitted ahead on an engine.

Why this module exists: a replay refits the forecast on a cadence (daily over a year: 365 fits) from the
history strictly before each refit time. Those fits depend only on the trace, never on what the simulated
controller decided, so they need not wait for the replay: :class:`FitAhead` runs the next refits on a
:class:`forecaster.engine.Engine` (local worker processes) while this process replays ``decide()`` over the
current day, holding only the few fits in flight. :func:`shared` lets two policies replayed side by side (an
availability target and the fixed headroom) see the same forecasts, fitted once.

A forecaster here is a :data:`ForecastFn`: ``(history before origin, origin, horizon) -> artifact created at
origin, or None when the fit failed`` (the replay then scales reactively, as the live loop would).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forecaster.artifact import ForecastArtifact

ForecastFn = Callable[[pd.Series, pd.Timestamp, pd.Timedelta], ForecastArtifact | None]


def history_before(history: pd.Series, origin: pd.Timestamp) -> pd.Series:
    """The complete intervals of ``history`` that end at or before ``origin`` (no peeking)."""
    idx = pd.DatetimeIndex(history.index)
    if len(idx) > 1:
        interval = pd.Timedelta(int(np.min(np.diff(idx.as_unit("ns").asi8))), unit="ns")
    else:
        interval = pd.Timedelta(0)
    return history[idx + interval <= origin]


@runtime_checkable
class PlansAhead(Protocol):
    """A forecaster told every refit of a replay before it starts (so it can fit them ahead)."""

    def plan(self, history: pd.Series, origins: Sequence[pd.Timestamp], horizon: pd.Timedelta) -> None: ...


@dataclass(frozen=True)
class PipelineForecaster:
    """A ForecastFn backed by :func:`forecaster.pipeline.run_forecast` (clean -> fit -> artifact).

    A plain picklable object (not a closure) so an engine can run it in a worker process.
    """

    model: str
    timezone: str
    folds: int | None = None
    calendar: object | None = None
    source: str = "simulation"

    def __call__(
        self, history: pd.Series, origin: pd.Timestamp, horizon: pd.Timedelta
    ) -> ForecastArtifact | None:
        from forecaster.errors import AutoscalerError
        from forecaster.pipeline import run_forecast, to_artifact
        from forecaster.series.cleaning import clean

        if len(history) < 2:
            return None
        y = history.rename("y").rename_axis("ds").tz_convert(self.timezone)
        try:
            series = clean(y, where=f"history before {origin.isoformat()}")
            result = run_forecast(series, horizon, model=self.model, calendar=self.calendar, folds=self.folds)
            return to_artifact(result, created_at=origin, source=self.source, series=series)
        except (AutoscalerError, ValueError):
            return None


def pipeline_forecaster(
    model: str,
    timezone: str,
    *,
    folds: int | None = None,
    calendar: object | None = None,
    source: str = "simulation",
) -> PipelineForecaster:
    """A ForecastFn backed by :func:`forecaster.pipeline.run_forecast` (see :class:`PipelineForecaster`)."""
    return PipelineForecaster(model, timezone, folds=folds, calendar=calendar, source=source)


class Shared:
    """``fit`` memoised per (origin, horizon): policies replayed side by side see the same forecasts."""

    def __init__(self, fit: ForecastFn) -> None:
        self.fit = fit
        self.cache: dict[tuple[pd.Timestamp, pd.Timedelta], ForecastArtifact | None] = {}

    def plan(self, history: pd.Series, origins: Sequence[pd.Timestamp], horizon: pd.Timedelta) -> None:
        if isinstance(self.fit, PlansAhead):
            self.fit.plan(history, [o for o in origins if (o, horizon) not in self.cache], horizon)

    def __call__(
        self, history: pd.Series, origin: pd.Timestamp, horizon: pd.Timedelta
    ) -> ForecastArtifact | None:
        if (origin, horizon) not in self.cache:
            self.cache[(origin, horizon)] = self.fit(history, origin, horizon)
        return self.cache[(origin, horizon)]


def shared(fit: ForecastFn) -> Shared:
    """``fit`` memoised per (origin, horizon) (see :class:`Shared`)."""
    return Shared(fit)


def _fit_one(task: tuple[ForecastFn, pd.Series, pd.Timestamp, pd.Timedelta]) -> tuple[
    pd.Timestamp, ForecastArtifact | None
]:
    fit, history, origin, horizon = task
    return origin, fit(history, origin, horizon)


class FitAhead:
    """``fit`` run on ``engine`` for the planned refits, ahead of the replay that asks for them.

    ``engine.map`` keeps a few fits in flight and yields them as they finish; an asked-for refit is taken
    from the finished ones (waiting for it if needed) and forgotten once handed out, so memory holds only
    the fits in flight, whatever the length of the trace. A refit that was not planned is fitted here.
    ``fit`` must be picklable for a process engine (:class:`PipelineForecaster` is).
    """

    def __init__(self, fit: ForecastFn, engine: Any) -> None:
        self.fit = fit
        self.engine = engine
        self._results: Iterator[tuple[pd.Timestamp, ForecastArtifact | None]] | None = None
        self._planned: set[tuple[pd.Timestamp, pd.Timedelta]] = set()
        self._done: dict[tuple[pd.Timestamp, pd.Timedelta], ForecastArtifact | None] = {}

    def plan(self, history: pd.Series, origins: Sequence[pd.Timestamp], horizon: pd.Timedelta) -> None:
        tasks = ((self.fit, history_before(history, o), o, horizon) for o in origins)
        self._results = self.engine.map(_fit_one, tasks)
        self._planned = {(o, horizon) for o in origins}
        self._done = {}

    def __call__(
        self, history: pd.Series, origin: pd.Timestamp, horizon: pd.Timedelta
    ) -> ForecastArtifact | None:
        key = (origin, horizon)
        if key not in self._planned or self._results is None:
            return self.fit(history, origin, horizon)
        while key not in self._done:
            done_origin, artifact = next(self._results)
            self._done[(done_origin, horizon)] = artifact  # every planned refit has the planned horizon
        self._planned.discard(key)
        return self._done.pop(key)
