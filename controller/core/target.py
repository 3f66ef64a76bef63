"""Sizing by an availability target: each interval's demand at the error quantile that meets the target.

With ``controller.availabilityTarget`` (e.g. 0.995) the operator states the share of intervals whose
capacity must cover the demand instead of choosing a band level and a headroom. The forecast artifact
carries the backtest's error quantiles by lead time (:class:`forecaster.artifact.ErrorQuantiles`, the same
residuals the band is calibrated on); an interval ``i`` with lead ``L`` (its start minus the history's end)
is sized at::

    rate_i = max(0, yhat_i + m(target, L, i) * (yhat_upper_i - yhat_i)) * peak_upper_i / yhat_upper_i

``m`` is the one-sided quantile at the target for the lead ``L``, in units of the band's upper half-width
at the interval's horizon step ``i`` (:meth:`forecaster.artifact.ErrorQuantiles.multiple`), so the bound
inherits the band's scale, widening, event effects and what-if scaling, and the last factor carries the
forecast's within-interval burst (``peak_upper / yhat_upper``, 1 when the forecast is at the history's
resolution). No headroom is added: the quantile is the margin. :func:`controller.core.decision.decide`
uses the resulting per-interval rates wherever it would use ``peak_upper`` (the window's need, ramp
anticipation, the "forecast missed" test).

Per (artifact, target) the rates are computed once and memoised on the artifact's view
(:mod:`controller.core.forecastview`), so a decision pays one dictionary lookup. Pure: no clock, no I/O.
"""

from __future__ import annotations

import pandas as pd

from controller.config import ControllerConfig
from controller.core.behavior import forecast_need, replicas_for
from controller.core.forecastview import NS, ForecastView, view
from forecaster.artifact import ForecastArtifact

AVAILABILITY_TARGET = "AvailabilityTarget"
NO_ERROR_QUANTILES = "NoErrorQuantiles"


def sizing_view(forecast: ForecastArtifact, fv: ForecastView, target: float) -> ForecastView | None:
    """A view whose ``peak`` is each interval's rate at ``target`` (``yhat`` all zero, so headroom adds
    nothing where the core sizes on peak and mean), memoised; None when the artifact has no error table."""
    key = ("availability", target)
    if key not in fv.derived:
        fv.derived[key] = _build(forecast, fv, target)
    found: ForecastView | None = fv.derived[key]
    return found


def target_rates(forecast: ForecastArtifact, target: float) -> list[float] | None:
    """Each interval's rate (req/s) at ``target``, or None when the artifact has no error table."""
    sv = sizing_view(forecast, view(forecast), target)
    return None if sv is None else sv.peak


def interval_needs(forecast: ForecastArtifact, config: ControllerConfig) -> list[int]:
    """Replicas each interval needs as ``decide()`` sizes it: at the availability target when set and the
    artifact carries its error table, else the peak band or the mean plus headroom, whichever is more."""
    cap = config.capacity_per_replica
    target = config.availability_target
    rates = target_rates(forecast, target) if target is not None else None
    if rates is not None:
        return [replicas_for(r, cap) for r in rates]
    return [forecast_need(i.peak_upper, i.yhat, cap, config.headroom) for i in forecast.intervals]


def target_message(target: float, rate: float, now: pd.Timestamp, window: pd.Timedelta, need: int,
                   cap: float) -> str:
    return (
        f"forecast at the {target:.2%} availability target (backtest error quantile by lead) "
        f"{rate:.1f} req/s over [{now:%H:%M:%S}, {now + window:%H:%M:%S}] needs {need} replicas at "
        f"{cap:g} req/s each"
    )


def _build(forecast: ForecastArtifact, fv: ForecastView, target: float) -> ForecastView | None:
    table = forecast.error_quantiles
    if table is None:
        return None
    end_ns = forecast.history_end.value
    rates = []
    for iv, ds in zip(forecast.intervals, fv.ds, strict=True):
        lead_s = max(ds - end_ns, 0) / NS
        step = round(lead_s / forecast.interval_seconds)
        width = iv.yhat_upper - iv.yhat
        rate = max(0.0, iv.yhat + table.multiple(target, lead_s, step) * width)
        if iv.yhat_upper > 0:
            rate *= max(iv.peak_upper / iv.yhat_upper, 1.0)
        rates.append(rate)
    return ForecastView(ds=fv.ds, yhat=[0.0] * len(rates), peak=rates, step=fv.step, contiguous=fv.contiguous)
