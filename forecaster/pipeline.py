"""From a clean history to a calibrated forecast: backtest the models, pick or blend, calibrate, add peaks.

Who calls it: the ``forecast``/``backtest`` subcommands, the scheduled forecast job and the benchmark.

Steps: resample to the output interval; backtest the candidate models with rolling origins at the forecast
origin's time of day; rank by WAPE and keep the best single model or a blend of the best few (whichever
backtests better); refit on the whole history; replace the band by one calibrated on the backtest residuals;
derive ``peak_upper`` from the within-interval burstiness when the history is finer than the output. A model
that raises or returns non-finite values is dropped with a quality note and the next one takes over: a
forecast is always produced unless no model at all can run.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster import band, numeric
from forecaster import folds as fold_arrays
from forecaster.artifact import ErrorQuantiles, Event, ForecastArtifact, Interval, QualityNote
from forecaster.backtest import Calibration, check_forecast, cutoffs, rolling_origin
from forecaster.durations import format_duration
from forecaster.errors import OperationalError, UserError
from forecaster.folds import FoldSet
from forecaster.models import AUTO_CANDIDATES, FALLBACK_CHAIN, MODELS, available_models
from forecaster.models.base import FitContext, Model
from forecaster.residuals import error_table
from forecaster.series.cleaning import CleanSeries, resample
from forecaster.series.covariates import align as align_covariates
from forecaster.series.event_effects import apply_effects, learn_effects

SHORT_HISTORY = pd.Timedelta(days=14)
PEAK_WINDOW = pd.Timedelta(days=28)
DEFAULT_FOLDS = 14
MIN_FOLDS = 3
SCORE_COLUMNS = ["wape", "mape", "bias", "coverage", "seconds", "folds"]


class ModelError(OperationalError):
    """No model could produce a finite forecast for this history."""


@dataclass(frozen=True)
class ForecastResult:
    """A forecast with everything needed to trust (or distrust) it."""

    frame: pd.DataFrame  # ds, yhat, yhat_lower, yhat_upper, peak_upper
    model: str
    scores: pd.DataFrame  # index: model alias; columns SCORE_COLUMNS
    backtest: dict[str, float] | None
    notes: tuple[QualityNote, ...]
    events: pd.DataFrame
    freq: pd.Timedelta
    band_level: float
    members: tuple[str, ...] = field(default=())
    errors: ErrorQuantiles | None = None  # backtest error quantiles by lead (availability targets)


@dataclass
class _Candidate:
    alias: str
    folds: FoldSet
    seconds: float
    weight: float = 1.0


@dataclass
class _Prepared:
    """What every candidate and fold shares: the history, its arrays (None: frame path only), the cuts."""

    history: pd.DataFrame
    ctx: FitContext
    steps: int
    cuts: list[pd.Timestamp]
    arrays: numeric.SeriesArrays | None
    # The forecast from the whole history, computed beside the folds (same call): alias -> (yhat, lo, hi)
    finals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    models: Mapping[str, Callable[[], Model]] = field(default_factory=lambda: MODELS)

    def cut_positions(self) -> list[int]:
        ds0 = self.history["ds"].iloc[0]
        return [round((c - ds0) / self.ctx.freq) for c in self.cuts]


def check_model(model: str) -> None:
    """UserError unless ``model`` is ``auto`` or a registered alias."""
    if model != "auto" and model not in MODELS:
        raise UserError(f"--model: unknown model {model!r}; available: auto, {', '.join(available_models())}")


def run_forecast(
    series: CleanSeries,
    horizon: pd.Timedelta,
    *,
    freq: pd.Timedelta | None = None,
    model: str = "auto",
    calendar: object | None = None,
    band_level: float = 0.9,
    folds: int | None = None,
    progress: Callable[[str], None] | None = None,
    candidates: Sequence[str] | None = None,
    covariates: pd.DataFrame | None = None,
    extra_models: Mapping[str, Callable[[], Model]] | None = None,
) -> ForecastResult:
    """Forecast the intervals right after the history's last timestamp (see module docstring).

    ``candidates`` replaces the models ``auto`` backtests (default :data:`AUTO_CANDIDATES`). ``covariates``
    (``ds`` plus one column each, see :mod:`forecaster.series.covariates`) must cover the horizon.
    ``extra_models`` are models made for this call (a batch's global model), backtested beside the candidates.
    """
    models = {**MODELS, **(extra_models or {})}
    if model not in (extra_models or {}):
        check_model(model)
    for alias in candidates or ():
        if alias not in models:
            raise UserError(
                f"--candidates: unknown model {alias!r}; available: {', '.join(available_models())}"
            )
    if not 0.5 <= band_level < 1.0:
        raise UserError(f"--band-level: must be in [0.5, 1), got {band_level}")
    out_freq = pd.Timedelta(freq) if freq is not None else series.freq
    if pd.Timedelta(horizon) < out_freq:
        raise UserError(
            f"--horizon {format_duration(horizon)} is shorter than one interval ({format_duration(out_freq)})"
        )
    native = series
    series = resample(series, out_freq, "mean") if out_freq != series.freq else series
    notes: list[QualityNote] = list(series.notes)
    history = series.frame()
    observed = np.isfinite(history["y"].to_numpy(dtype=float))
    if observed.sum() < 2:
        raise UserError(
            f"history has {int(observed.sum())} usable interval(s) at {format_duration(out_freq)}; "
            "need at least two (use a longer history or a finer --freq)"
        )
    steps = math.ceil(pd.Timedelta(horizon) / out_freq)
    last = history["ds"].iloc[-1]
    hist_end = last + out_freq
    events = _events(calendar, history["ds"].iloc[0], hist_end + steps * out_freq)
    if covariates is not None:
        grid = pd.date_range(history["ds"].iloc[0], periods=len(history) + steps, freq=out_freq, name="ds")
        covariates = align_covariates(covariates, grid, hist_end)
    ctx = FitContext(
        freq=out_freq, timezone=series.timezone, events=events, band_level=band_level, covariates=covariates
    )

    names = (
        list(dict.fromkeys([*(candidates or AUTO_CANDIDATES), *(extra_models or {})]))
        if model == "auto"
        else [model]
    )
    n_folds = DEFAULT_FOLDS if folds is None else max(int(folds), 0)
    cuts = cutoffs(history["ds"], out_freq, steps, n_folds)
    arrays = numeric.SeriesArrays.build(history, ctx, steps)
    prep = _Prepared(history, ctx, steps, cuts, arrays, models=models)
    tested, failed = _backtest_all(prep, names, progress)
    for alias, err in failed:
        notes.append(
            QualityNote("model_failed", "warning", f"model {alias} failed in backtest and was skipped: {err}")
        )

    ranked = sorted(tested, key=lambda c: (_wape(c), names.index(c.alias)))
    members = _choose(ranked) if model == "auto" else ranked[:1]
    frame, members, fit_notes = _final_fit(prep, members, ranked, model)
    notes.extend(fit_notes)

    if any(len(m.folds) == 0 for m in members) and cuts:
        # A fallback model that was not among the candidates: backtest it now so its band is calibrated too.
        extra, _ = _backtest_all(prep, [m.alias for m in members], None)
        members = extra or members
    chosen_folds = _blend_folds(members) if members and all(len(m.folds) for m in members) else None
    span = history["ds"].iloc[-1] - history["ds"].iloc[0] + out_freq
    widen = 1.0
    if span < SHORT_HISTORY:
        widen *= 1.25
        notes.append(
            QualityNote(
                "short_history_band",
                "warning",
                f"history covers only {format_duration(span)} (< 14d): band widened by 25%",
            )
        )
    used = 0 if chosen_folds is None else int(chosen_folds.ok.any(axis=1).sum())
    if used < MIN_FOLDS:
        widen *= 1.5
        notes.append(
            QualityNote(
                "few_folds",
                "warning",
                f"only {used} backtest fold(s) (< {MIN_FOLDS}): band calibration is rough and "
                "was widened by 50%",
            )
        )
    backtest = None
    errors = None
    if chosen_folds is not None and len(chosen_folds):
        check = band.check_coverage(chosen_folds, band_level, widen=widen)
        if check.widen > 1.0:
            notes.append(
                QualityNote(
                    "band_widened",
                    "warning",
                    f"the band covered {check.recent:.0%} of actuals in the last {check.recent_folds} "
                    f"backtest folds (nominal {band_level:.0%}): widened by {check.widen - 1:.0%}",
                )
            )
        cal = band.calibrate_steps(chosen_folds, band_level, widen=widen * check.widen)
        frame = cal.apply(frame)
        errors = error_table(chosen_folds, cal)
        backtest = fold_arrays.scores(chosen_folds) | {"coverage": check.coverage}
    else:
        frame = Calibration(-0.3, 0.3, band_level, 0, widen).apply(frame)
    name = (
        members[0].alias
        if len(members) == 1
        else "ensemble(" + "+".join(sorted(m.alias for m in members)) + ")"
    )

    horizon_events = _in_window(events, hist_end, hist_end + steps * out_freq)
    effects = learn_effects(history, events)
    frame, horizon_events, touched = apply_effects(frame, horizon_events, effects)
    for eff in effects:
        if eff.key in touched:
            notes.append(
                QualityNote(
                    "event_effect",
                    "info",
                    f"learned from history: {eff.describe()}; applied to {touched[eff.key]} interval(s)",
                )
            )

    ratio = peak_ratio(native, series, pd.DatetimeIndex(frame["ds"]))
    frame["peak_upper"] = np.maximum(
        frame["yhat_upper"].to_numpy(dtype=float) * ratio, frame["yhat_upper"].to_numpy(dtype=float)
    )
    table = _score_table(tested, band_level, widen)
    return ForecastResult(
        frame=frame.reset_index(drop=True),
        model=name,
        scores=table,
        backtest=backtest,
        notes=tuple(notes),
        events=horizon_events,
        freq=out_freq,
        band_level=band_level,
        members=tuple(m.alias for m in members),
        errors=errors,
    )


def _events(calendar: object | None, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if calendar is None:
        return pd.DataFrame(columns=["name", "kind", "start", "end", "uplift"])
    return calendar.events(start, end)  # type: ignore[attr-defined]


def _in_window(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if len(events) == 0:
        return events.reset_index(drop=True)
    keep = (pd.DatetimeIndex(events["start"]) < end) & (pd.DatetimeIndex(events["end"]) > start)
    return events[np.asarray(keep)].reset_index(drop=True)


def _wape(c: _Candidate) -> float:
    return fold_arrays.wape_of(c.folds)


def _backtest_all(
    prep: _Prepared, names: list[str], progress: Callable[[str], None] | None
) -> tuple[list[_Candidate], list[tuple[str, str]]]:
    """Backtest each model on every cut: on the shared arrays when the model has a kernel, else by refits."""
    ok: list[_Candidate] = []
    failed: list[tuple[str, str]] = []
    total = max(len(names) * len(prep.cuts), 1)
    done = 0
    for alias in names:
        t0 = time.perf_counter()
        try:
            folds = _backtest_one(prep, alias, progress, done, total)
        except Exception as exc:
            failed.append((alias, f"{type(exc).__name__}: {exc}"))
            continue
        finally:
            done += len(prep.cuts)
        if progress is not None:
            progress(f"{done}/{total} {alias}")
        ok.append(_Candidate(alias, folds, time.perf_counter() - t0))
    return ok, failed


def _backtest_one(
    prep: _Prepared, alias: str, progress: Callable[[str], None] | None, done: int, total: int
) -> FoldSet:
    steps, freq = prep.steps, prep.ctx.freq
    spec = numeric.kernel_for(prep.models[alias])
    if prep.arrays is not None and spec is not None:
        pos = prep.cut_positions()
        try:  # the folds and the real forecast in one call
            yhat, lo, hi = numeric.predict(prep.arrays, spec, [*pos, prep.arrays.n], steps)
            prep.finals[alias] = (yhat[-1], lo[-1], hi[-1])
            yhat, lo, hi = yhat[:-1], lo[:-1], hi[:-1]
        except ValueError:  # maybe only the real forecast fails: score the folds, let the final fit say why
            yhat, lo, hi = numeric.predict(prep.arrays, spec, pos, steps)
        target = np.asarray(pos, dtype=np.int64)[:, None] + np.arange(steps)[None, :]
        n = prep.arrays.n
        y = np.where(target < n, prep.arrays.y[np.minimum(target, n - 1)], np.nan)
        return FoldSet(tuple(prep.cuts), freq, y, yhat, lo, hi)
    fold_forecasts = getattr(prep.models[alias], "fold_forecasts", None)
    if fold_forecasts is not None:  # a model that backtests all folds at once (the learned family)
        pos = prep.cut_positions()
        yhat, lo, hi = fold_forecasts(prep.history, prep.ctx, pos, steps)
        target = np.asarray(pos, dtype=np.int64)[:, None] + np.arange(steps)[None, :]
        y_all = prep.history["y"].to_numpy(dtype=float)
        n = len(y_all)
        y = np.where(target < n, y_all[np.minimum(target, n - 1)], np.nan)
        return FoldSet(tuple(prep.cuts), freq, y, yhat, lo, hi)
    parts = []
    for i, cut in enumerate(prep.cuts):
        parts.append(rolling_origin(prep.history, prep.models[alias], prep.ctx, steps, [cut]))
        if progress is not None:
            progress(f"{done + i + 1}/{total} {alias}")
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return fold_arrays.from_frame(frame, prep.cuts, steps, freq)


def _choose(ranked: list[_Candidate]) -> list[_Candidate]:
    """Best single model, or the equal-weight mean of 2-3 of the best four if that backtests better.

    Blending forecasts with different errors cancels part of them; a blend must beat the best single model by
    0.5% (relative) to be preferred, so ties go to the simpler forecast.
    """
    usable = [c for c in ranked if math.isfinite(_wape(c)) and len(c.folds) == len(ranked[0].folds)]
    if not usable:
        return ranked[:1]
    best, best_w = usable[:1], _wape(usable[0])
    pool = usable[:4]
    for k in (2, 3):
        for combo in itertools.combinations(pool, k):
            w = fold_arrays.scores(_blend_folds(list(combo)))["wape"]
            if w < best_w * 0.995:
                best, best_w = list(combo), w
    return best


def _blend_folds(members: list[_Candidate]) -> FoldSet:
    """Fold set of the weighted mean of the members' fold forecasts."""
    return fold_arrays.blend([m.folds for m in members], [m.weight for m in members])


def _final_fit(
    prep: _Prepared,
    members: list[_Candidate],
    ranked: list[_Candidate],
    model: str,
) -> tuple[pd.DataFrame, list[_Candidate], list[QualityNote]]:
    """Fit the chosen members on the whole history; on failure fall back along the ranking, then the chain."""
    notes: list[QualityNote] = []
    good: list[tuple[_Candidate, pd.DataFrame]] = []
    for m in members:
        fc = _try_fit(prep, m.alias, notes)
        if fc is not None:
            good.append((m, fc))
    if not good:
        tried = {m.alias for m in members}
        chain = [c for c in ranked if c.alias not in tried]
        chain += [
            _Candidate(a, fold_arrays.empty(prep.ctx.freq, prep.steps), 0.0)
            for a in FALLBACK_CHAIN
            if a not in tried and a not in {c.alias for c in chain}
        ]
        for c in chain:
            fc = _try_fit(prep, c.alias, notes)
            if fc is not None:
                notes.append(
                    QualityNote(
                        "fallback",
                        "warning",
                        f"using {c.alias} because {model if model != 'auto' else 'the chosen model'} "
                        "could not produce a forecast",
                    )
                )
                good.append((c, fc))
                break
    if not good:
        raise ModelError("no model could produce a finite forecast for this history; see the quality notes")
    chosen = [m for m, _ in good]
    total = sum(m.weight for m in chosen)
    cols = {"ds": good[0][1]["ds"].reset_index(drop=True)}
    for col in ("yhat", "yhat_lower", "yhat_upper"):
        cols[col] = sum(m.weight * f[col].to_numpy(dtype=float) for m, f in good) / total
    return pd.DataFrame(cols), chosen, notes


def _try_fit(prep: _Prepared, alias: str, notes: list[QualityNote]) -> pd.DataFrame | None:
    history, ctx, steps = prep.history, prep.ctx, prep.steps
    try:
        spec = numeric.kernel_for(prep.models[alias])
        if prep.arrays is not None and spec is not None:
            if alias in prep.finals:
                yhat, lo, hi = prep.finals[alias]
            else:
                y2, l2, h2 = numeric.predict(prep.arrays, spec, [prep.arrays.n], steps)
                yhat, lo, hi = y2[0], l2[0], h2[0]
            last = history["ds"].iloc[-1]
            ds = pd.date_range(last + ctx.freq, periods=steps, freq=ctx.freq, name="ds")
            return pd.DataFrame({"ds": ds, "yhat": yhat, "yhat_lower": lo, "yhat_upper": hi})
        fc = prep.models[alias]().fit(history, ctx).predict(steps)
        check_forecast(fc, steps)
        return fc.reset_index(drop=True)
    except Exception as exc:
        notes.append(
            QualityNote("model_failed", "warning", f"model {alias} failed: {type(exc).__name__}: {exc}")
        )
        return None


def _score_table(cands: list[_Candidate], level: float, widen: float) -> pd.DataFrame:
    rows = {}
    for c in cands:
        s = (
            fold_arrays.scores(c.folds)
            if len(c.folds)
            else dict.fromkeys(("wape", "mape", "bias", "folds"), math.nan)
        )
        cov = fold_arrays.cross_coverage(c.folds, level, widen=widen) if len(c.folds) else math.nan
        rows[c.alias] = {
            "wape": s["wape"],
            "mape": s["mape"],
            "bias": s["bias"],
            "coverage": cov,
            "seconds": c.seconds,
            "folds": s["folds"],
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=SCORE_COLUMNS)


def peak_ratio(
    native: CleanSeries,
    coarse: CleanSeries,
    targets: pd.DatetimeIndex,
    *,
    quantile: float = 0.9,
    window: pd.Timedelta = PEAK_WINDOW,
) -> np.ndarray:
    """Per target interval, a high quantile of (peak native value / interval mean) at that local time of day.

    1.0 everywhere when the history is no finer than the output. Computed over the last ``window`` of history,
    by local time of day of the interval start; a time of day with < 3 samples uses the overall quantile.
    """
    if native.freq >= coarse.freq or len(coarse.y) == 0:
        return np.ones(len(targets))
    y = native.y.dropna()
    y = y[y.index >= y.index[-1] - window]
    anchor = coarse.y.index[0]
    key = anchor + ((y.index - anchor) // coarse.freq) * coarse.freq
    per_bin = round(coarse.freq / native.freq)
    g = y.groupby(key)
    stats = pd.DataFrame({"max": g.max(), "mean": g.mean(), "n": g.count()})
    stats = stats[(stats["n"] == per_bin) & (stats["mean"] > 0)]
    if len(stats) == 0:
        return np.ones(len(targets))
    ratio = (stats["max"] / stats["mean"]).clip(lower=1.0)
    tod = _time_of_day(pd.DatetimeIndex(stats.index), native.timezone)
    overall = float(ratio.quantile(quantile))
    by_tod = ratio.groupby(tod).agg(["count", lambda r: r.quantile(quantile)])
    by_tod.columns = ["count", "q"]
    table = by_tod["q"].where(by_tod["count"] >= 3, overall)
    want = _time_of_day(targets, native.timezone)
    return np.asarray(pd.Series(want).map(table).fillna(overall).to_numpy(dtype=float))


def _time_of_day(idx: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    local = idx.tz_convert(timezone) if idx.tz is not None else idx
    return np.asarray(local.hour * 3600 + local.minute * 60 + local.second)


def to_artifact(
    result: ForecastResult, *, created_at: pd.Timestamp, source: str, series: CleanSeries
) -> ForecastArtifact:
    """The versioned artifact the controller reads (see :mod:`forecaster.artifact`)."""
    f = result.frame
    intervals = tuple(
        Interval(
            pd.Timestamp(r.ds), float(r.yhat), float(r.yhat_lower), float(r.yhat_upper), float(r.peak_upper)
        )
        for r in f.itertuples(index=False)
    )
    events = tuple(
        Event(
            str(e["name"]),
            str(e["kind"]),
            pd.Timestamp(e["start"]),
            pd.Timestamp(e["end"]),
            None if e.get("uplift") is None or not np.isfinite(float(e["uplift"])) else float(e["uplift"]),
        )
        for _, e in result.events.iterrows()
    )
    bt = (
        None
        if result.backtest is None
        else {k: float(v) for k, v in result.backtest.items() if math.isfinite(v)}
    )
    y = series.y
    return ForecastArtifact(
        created_at=pd.Timestamp(created_at),
        model=result.model,
        timezone=series.timezone,
        interval_seconds=int(result.freq.total_seconds()),
        band_level=result.band_level,
        history_start=pd.Timestamp(y.index[0]),
        history_end=pd.Timestamp(y.index[-1]) + series.freq,
        history_points=int(np.isfinite(y.to_numpy(dtype=float)).sum()),
        source=source,
        horizon_seconds=int(len(f) * result.freq.total_seconds()),
        intervals=intervals,
        events=events,
        quality=result.notes,
        backtest=bt,
        error_quantiles=result.errors,
    )
