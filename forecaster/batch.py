"""Forecast many series in one call: each cleaned, selected and calibrated on its own, on any engine.

Why this module exists: a platform scales many services with several series each; one process per series
pays the start-up and the pipeline's fixed costs a thousand times. :func:`forecast_many` takes a long frame
(``unique_id, ds, y``) or a list of raw series, cuts it into chunks of whole series, and runs each chunk on an
:class:`~forecaster.engine.Engine` (in-process, a local process pool, or Dask). A task carries only its
chunk, so a worker's memory is bounded by the chunk size, not the fleet.

A series that cannot be forecast (unreadable, too short, no model fits) gets its one-line error in its
:class:`SeriesOutcome` and in the summary; it never stops the others. Who calls it: the ``forecast`` and
``backtest`` subcommands and ``benchmarks/batch_bench.py``. No argparse here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecaster.artifact import ForecastArtifact, QualityNote
from forecaster.engine import Engine, InProcessEngine

FORECAST_COLUMNS = ["ds", "yhat", "yhat_lower", "yhat_upper", "peak_upper"]
MAX_CHUNK = 50


@dataclass(frozen=True)
class BatchSettings:
    """The forecast asked for every series (the pipeline's arguments, plus the calendar as a config)."""

    horizon: pd.Timedelta
    freq: pd.Timedelta | None = None
    model: str = "auto"
    band_level: float = 0.9
    folds: int | None = None
    candidates: tuple[str, ...] | None = None
    calendar: Any = None  # forecaster.series.calendar.CalendarConfig, built into a calendar on the worker
    timezone: str = "UTC"
    source: str = "input"
    # "lgbm" or "ridge": fit one learned model across the batch first; each series' auto then backtests it
    # as one more candidate (forecaster.models.global_learned).
    global_model: str | None = None
    step: pd.Timedelta | None = None  # the history's resolution when the source knows it (a query's step)
    created_at: pd.Timestamp | None = None  # set: each outcome also carries its validated ForecastArtifact


@dataclass(frozen=True)
class SeriesOutcome:
    """One series' forecast (or its error), small enough to send back from a worker."""

    id: str
    frame: pd.DataFrame | None  # FORECAST_COLUMNS
    model: str | None = None
    backtest: dict[str, float] | None = None
    scores: pd.DataFrame | None = None  # per candidate, as ForecastResult.scores
    notes: tuple[QualityNote, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    artifact: ForecastArtifact | None = None  # with BatchSettings.created_at: what a store would write

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BatchResult:
    """Every series' outcome in input order, with the tables the CLI writes."""

    outcomes: list[SeriesOutcome]
    seconds: float
    engine: str
    chunks: int = 0
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[SeriesOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def forecasts(self, id_column: str = "unique_id") -> pd.DataFrame:
        """Long frame: the id column then FORECAST_COLUMNS, series in input order."""
        parts = [o.frame.assign(**{id_column: o.id}) for o in self.outcomes if o.frame is not None]
        if not parts:
            return pd.DataFrame(columns=[id_column, *FORECAST_COLUMNS])
        return pd.concat(parts, ignore_index=True)[[id_column, *FORECAST_COLUMNS]]

    def summary(self, id_column: str = "unique_id") -> pd.DataFrame:
        """One row per series: status, model, backtest WAPE and coverage, seconds, error."""
        rows = []
        for o in self.outcomes:
            bt = o.backtest or {}
            rows.append(
                {
                    id_column: o.id,
                    "status": "ok" if o.ok else "failed",
                    "model": o.model or "",
                    "wape": bt.get("wape", math.nan),
                    "coverage": bt.get("coverage", math.nan),
                    "seconds": o.seconds,
                    "error": o.error or "",
                }
            )
        return pd.DataFrame(
            rows, columns=[id_column, "status", "model", "wape", "coverage", "seconds", "error"]
        )


@dataclass(frozen=True)
class _Chunk:
    settings: BatchSettings
    series: list[tuple[str, pd.Series]]
    global_model: Any = None  # forecaster.models.global_learned.GlobalModel, fitted on the whole batch
    per_series: dict[str, BatchSettings] = field(default_factory=dict)


def split_long(
    frame: pd.DataFrame, *, id_column: str = "unique_id", timezone: str = "UTC"
) -> list[tuple[str, pd.Series]]:
    """(id, raw series) per id of a long frame with columns id, ``ds``, ``y``, in order of first appearance.

    Zone-less ``ds`` are read as UTC and converted to ``timezone``; stamps with a zone are converted.
    """
    missing = [c for c in (id_column, "ds", "y") if c not in frame.columns]
    if missing:
        from forecaster.errors import UserError

        raise UserError(f"long frame: missing column(s) {', '.join(missing)}; expected {id_column}, ds, y")
    ds = pd.DatetimeIndex(frame["ds"])
    ds = (ds.tz_localize("UTC") if ds.tz is None else ds).tz_convert(timezone)
    y = frame["y"].to_numpy(dtype=float)
    codes, uniques = pd.factorize(frame[id_column].astype(str), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    out = []
    for k, sid in enumerate(uniques):
        rows = order[bounds[k] : bounds[k + 1]]
        out.append((str(sid), pd.Series(y[rows], index=ds[rows].rename("ds"), name="y")))
    return out


def chunk_size(n_series: int, workers: int) -> int:
    """Series per task: about four tasks per worker (load balance), at most MAX_CHUNK (memory per task)."""
    return max(1, min(MAX_CHUNK, math.ceil(n_series / max(4 * workers, 1))))


def forecast_many(
    series: Sequence[tuple[str, pd.Series]] | pd.DataFrame,
    settings: BatchSettings,
    *,
    engine: Engine | None = None,
    errors: Sequence[tuple[str, str]] = (),
    id_column: str = "unique_id",
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    order: Sequence[str] | None = None,
    per_series: Mapping[str, BatchSettings] | None = None,
) -> BatchResult:
    """Forecast every series on ``engine`` (default in-process); ``errors`` are series already known bad.

    ``series`` is a list of (id, raw series) or a long frame (``id_column``, ds, y). Results come back in
    input order, or in ``order`` (ids) when given, so known errors keep their place in the file.
    ``per_series`` gives the series whose settings differ from ``settings`` (a fleet's scalers each have
    their own calendar, and a stale one a longer horizon); it travels with the chunk of its series only.
    """
    overrides = dict(per_series or {})
    for s in {id(v): v for v in (settings, *overrides.values())}.values():
        _check_settings(s)
    items = (
        split_long(series, id_column=id_column, timezone=settings.timezone)
        if isinstance(series, pd.DataFrame)
        else list(series)
    )
    eng = engine or InProcessEngine()
    size = chunk or chunk_size(len(items), eng.workers)
    t0 = time.perf_counter()
    gm = fit_batch_model(items, settings) if settings.global_model else None
    chunks = []
    for i in range(0, len(items), size):
        part = items[i : i + size]
        own = {sid: overrides[sid] for sid, _ in part if sid in overrides}
        chunks.append(_Chunk(settings, part, gm, own))
    by_id: dict[str, SeriesOutcome] = {sid: SeriesOutcome(sid, None, error=msg) for sid, msg in errors}
    done = 0
    for outcomes in eng.map(run_chunk, chunks):
        for o in outcomes:
            by_id[o.id] = o
        done += len(outcomes)
        if progress is not None:
            progress(done, len(items))
    ids = list(order) if order is not None else [sid for sid, _ in errors] + [sid for sid, _ in items]
    return BatchResult(
        [by_id[sid] for sid in dict.fromkeys(ids) if sid in by_id],
        time.perf_counter() - t0,
        eng.name,
        len(chunks),
    )


def _check_settings(settings: BatchSettings) -> None:
    """Fail once, before any work, on settings that would fail every series."""
    from forecaster.errors import UserError
    from forecaster.models import MODELS, available_models
    from forecaster.pipeline import check_model

    check_model(settings.model)
    for alias in settings.candidates or ():
        if alias not in MODELS:
            raise UserError(
                f"--candidates: unknown model {alias!r}; available: {', '.join(available_models())}"
            )
    if not 0.5 <= settings.band_level < 1.0:
        raise UserError(f"--band-level: must be in [0.5, 1), got {settings.band_level}")


class _MemoCalendar:
    """An event calendar that remembers its last answers: a fleet's series mostly share one time range,
    and listing holidays and paydays for it costs more than forecasting a series."""

    def __init__(self, calendar: Any, size: int = 64) -> None:
        self._calendar = calendar
        self._memo: dict[tuple[int, int], pd.DataFrame] = {}
        self._size = size

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        key = (pd.Timestamp(start).value, pd.Timestamp(end).value)
        if key not in self._memo:
            if len(self._memo) >= self._size:
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = self._calendar.events(start, end)
        return self._memo[key].copy()


_CALENDARS: dict[str, _MemoCalendar] = {}


def _calendar(settings: BatchSettings) -> Any:
    """The event calendar of the settings, built once per worker process."""
    if settings.calendar is None:
        return None
    key = repr((settings.calendar, settings.timezone))
    if key not in _CALENDARS:
        from forecaster.series.calendar import EventCalendar

        _CALENDARS[key] = _MemoCalendar(EventCalendar(settings.calendar, settings.timezone))
    return _CALENDARS[key]


def earliest_cut(history: pd.DataFrame, freq: pd.Timedelta, steps: int, folds: int) -> int:
    """Position of the earliest backtest cut auto will use on this history (its length if none)."""
    from forecaster.backtest import cutoffs

    cuts = cutoffs(history["ds"], freq, steps, folds)
    return round((min(cuts) - history["ds"].iloc[0]) / freq) if cuts else len(history)


def fit_batch_model(items: Sequence[tuple[str, pd.Series]], settings: BatchSettings) -> Any:
    """The batch's global learned model (None when no series can train it: each series then runs without)."""
    from forecaster.models.base import FitContext
    from forecaster.models.global_learned import fit_global
    from forecaster.pipeline import DEFAULT_FOLDS
    from forecaster.series.cleaning import clean, resample

    histories = []
    for sid, raw in items:
        try:
            series = clean(raw, where=f"{settings.source} series {sid!r}")
            freq = settings.freq or series.freq
            series = resample(series, freq, "mean") if freq != series.freq else series
        except Exception:  # this series gets its own error when the chunk runs
            continue
        hist = series.frame()
        steps = math.ceil(pd.Timedelta(settings.horizon) / freq)
        cal = _calendar(settings)
        end = hist["ds"].iloc[-1] + (steps + 1) * freq
        events = cal.events(hist["ds"].iloc[0], end) if cal is not None else None
        histories.append((hist, FitContext(freq, series.timezone, events, settings.band_level), steps))
    if not histories:
        return None
    steps = histories[0][2]
    folds = DEFAULT_FOLDS if settings.folds is None else settings.folds
    try:
        return fit_global(
            [(h, c, earliest_cut(h, c.freq, steps, folds)) for h, c, s in histories if s == steps],
            steps,
            kind=str(settings.global_model),
        )
    except ValueError:
        return None


def run_chunk(chunk: _Chunk) -> list[SeriesOutcome]:
    """Forecast the series of one chunk (runs on a worker); every exception becomes that series' error."""
    from forecaster.errors import AutoscalerError
    from forecaster.pipeline import run_forecast, to_artifact
    from forecaster.series.cleaning import clean

    extra = None
    if chunk.global_model is not None:
        from forecaster.models.global_learned import global_factory

        extra = {chunk.global_model.alias: global_factory(chunk.global_model)}
    out = []
    for sid, raw in chunk.series:
        s = chunk.per_series.get(sid, chunk.settings)
        t0 = time.perf_counter()
        artifact = None
        try:
            series = clean(raw, where=f"{s.source} series {sid!r}", freq=s.step)
            res = run_forecast(
                series,
                s.horizon,
                freq=s.freq,
                model=s.model,
                calendar=_calendar(s),
                band_level=s.band_level,
                folds=s.folds,
                candidates=list(s.candidates) if s.candidates else None,
                extra_models=extra,
            )
            if s.created_at is not None:
                artifact = to_artifact(res, created_at=s.created_at, source=s.source, series=series)
                artifact.to_json()  # validates: an artifact no store would accept is this series' error
        except AutoscalerError as exc:
            out.append(SeriesOutcome(sid, None, error=_one_line(str(exc)), seconds=time.perf_counter() - t0))
            continue
        except Exception as exc:  # a bug or a library failure on one series must not stop the others
            message = _one_line(f"{type(exc).__name__}: {exc}")
            out.append(SeriesOutcome(sid, None, error=message, seconds=time.perf_counter() - t0))
            continue
        out.append(
            SeriesOutcome(
                sid,
                res.frame[FORECAST_COLUMNS],
                model=res.model,
                backtest=res.backtest,
                scores=res.scores,
                notes=res.notes,
                seconds=time.perf_counter() - t0,
                artifact=artifact,
            )
        )
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())
