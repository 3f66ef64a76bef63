"""Prophet, configured for traffic, plus Prophet with its default settings (the reference to beat).

Traffic configuration: weekday and weekend days get separate daily profiles (conditional seasonalities), the
seasonality is multiplicative (peaks scale with the level), and calendar events become Prophet holidays with
windows. Prophet works on local wall-clock time (it cannot take tz-aware stamps), so stamps are converted to
the series' zone for fitting and the forecast is mapped back to the absolute interval starts.

cmdstanpy's per-fit chatter is silenced only for the duration of a fit; loggers are never touched at import.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from forecaster.models.base import FitContext
from forecaster.models.common import deflate_history, future_index, make_frame, uplift_factor, wall_clock


@contextlib.contextmanager
def quiet_stan() -> Iterator[None]:
    """Silence cmdstanpy/prophet INFO lines during one fit, then restore the previous levels."""
    loggers = [logging.getLogger(n) for n in ("cmdstanpy", "prophet", "prophet.plot")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        # cmdstanpy installs its own handler and level on first use; do that now so our level sticks.
        from cmdstanpy.utils import get_logger

        get_logger().setLevel(logging.WARNING)
        import prophet  # noqa: F401  (its import logs an error about optional plotting)

        yield
    finally:
        for lg, lvl in zip(loggers, old, strict=True):
            lg.setLevel(lvl)


def holidays_frame(events: pd.DataFrame | None, timezone: str) -> pd.DataFrame | None:
    """Calendar events without a declared uplift as Prophet holidays, windowed to the event end."""
    if events is None or len(events) == 0:
        return None
    rows: list[dict[str, Any]] = []
    for _, ev in events.iterrows():
        up = ev.get("uplift")
        if up is not None and np.isfinite(float(up)):
            continue  # declared uplifts are applied directly
        start = wall_clock(pd.DatetimeIndex([ev["start"]]), timezone)[0].normalize()
        end = wall_clock(pd.DatetimeIndex([ev["end"]]), timezone)[0]
        days = max(int(np.ceil((end - start) / pd.Timedelta(days=1))), 1)
        rows.append(
            {
                "holiday": f"{ev['kind']}:{ev['name']}",
                "ds": start,
                "lower_window": 0,
                "upper_window": days - 1,
            }
        )
    if not rows:
        return None
    return pd.DataFrame(rows)


class _ProphetBase:
    alias = "prophet_base"

    def __init__(self) -> None:
        self._model: Any = None
        self._ctx: FitContext | None = None
        self._last: pd.Timestamp | None = None

    def build(self, ctx: FitContext) -> Any:
        raise NotImplementedError

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    def fit(self, history: pd.DataFrame, ctx: FitContext) -> _ProphetBase:
        hist = deflate_history(history[["ds", "y"]].reset_index(drop=True), ctx.events)
        df = pd.DataFrame({"ds": wall_clock(hist["ds"], ctx.timezone), "y": hist["y"].to_numpy(dtype=float)})
        df = df[np.isfinite(df["y"].to_numpy())]
        if len(df) < 2:
            raise ValueError("Prophet needs at least two observed points")
        names = _covariate_names(ctx)
        for name in names:  # known-future covariates as regressors (past gaps: the column's mean)
            col = _covariate(ctx, name, pd.DatetimeIndex(hist["ds"]))
            df[name] = np.where(np.isfinite(col), col, np.nanmean(col) if np.isfinite(col).any() else 0.0)[
                df.index
            ]
        with quiet_stan():
            model = self.build(ctx)
            for name in names:
                model.add_regressor(name)
            model.fit(self.prepare(df))
        self._model, self._ctx, self._last = model, ctx, hist["ds"].iloc[-1]
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if self._model is None or self._ctx is None or self._last is None:
            raise RuntimeError("fit() must be called before predict()")
        targets = future_index(self._last, self._ctx.freq, horizon)
        future = pd.DataFrame({"ds": wall_clock(targets, self._ctx.timezone)})
        for name in _covariate_names(self._ctx):
            col = _covariate(self._ctx, name, targets)
            if not np.isfinite(col).all():
                first = targets[int(np.flatnonzero(~np.isfinite(col))[0])]
                raise ValueError(f"covariate {name!r} has no value at {first.isoformat()}")
            future[name] = col
        future = self.prepare(future)
        with quiet_stan():
            fc = self._model.predict(future)
        yhat = fc["yhat"].to_numpy(dtype=float)
        lo = fc["yhat_lower"].to_numpy(dtype=float) if "yhat_lower" in fc else yhat * 0.9
        hi = fc["yhat_upper"].to_numpy(dtype=float) if "yhat_upper" in fc else yhat * 1.1
        factor = uplift_factor(targets, self._ctx.events)
        return make_frame(targets, yhat * factor, lo * factor, hi * factor)


def _covariate_names(ctx: FitContext) -> list[str]:
    return [] if ctx.covariates is None else [str(c) for c in ctx.covariates.columns if c != "ds"]


def _covariate(ctx: FitContext, name: str, stamps: pd.DatetimeIndex) -> np.ndarray:
    assert ctx.covariates is not None
    col = ctx.covariates.set_index(pd.DatetimeIndex(ctx.covariates["ds"]))[name]
    return np.asarray(col.reindex(stamps).to_numpy(dtype=float))


class ProphetTraffic(_ProphetBase):
    """Prophet tuned for request traffic: weekday/weekend daily profiles, multiplicative, event holidays."""

    alias = "prophet"

    def build(self, ctx: FitContext) -> Any:
        from prophet import Prophet

        day_steps = pd.Timedelta(days=1) / ctx.freq
        m = Prophet(
            growth="linear",
            daily_seasonality=False,
            weekly_seasonality=False,
            yearly_seasonality=False,
            seasonality_mode="multiplicative",
            changepoint_prior_scale=0.05,
            holidays=holidays_frame(ctx.events, ctx.timezone),
            uncertainty_samples=0,
        )
        order = 12 if day_steps >= 24 else max(int(day_steps // 2), 1)
        m.add_seasonality("weekly", period=7, fourier_order=4)
        m.add_seasonality("daily_weekday", period=1, fourier_order=order, condition_name="weekday")
        m.add_seasonality("daily_weekend", period=1, fourier_order=order, condition_name="weekend")
        return m

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        wd = pd.DatetimeIndex(out["ds"]).day_of_week
        out["weekend"] = np.asarray(wd >= 5)
        out["weekday"] = ~out["weekend"]
        return out


class ProphetDefault(_ProphetBase):
    """Prophet with its default settings (the reference the traffic configuration must beat)."""

    alias = "prophet_default"

    def build(self, ctx: FitContext) -> Any:
        from prophet import Prophet

        return Prophet()
