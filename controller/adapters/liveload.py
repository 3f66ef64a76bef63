"""Where the live controller reads the current load: :class:`controller.ports.LoadSource` adapters.

Every tick, :class:`controller.loop.ControlLoop` asks its load source for the latest request rate and the
time of that sample (``decide()`` treats a sample older than ``loadMaxAge`` as missing). The sources are
adapters, kept apart from the tick logic: :class:`PrometheusLoad` for a live controller,
:class:`FileLoad` for replays and tests. The ``run`` wiring (:mod:`controller.cli.run`) builds them.
Re-exported by :mod:`controller.loop`.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from controller.ports import ObservedLoad
from forecaster.errors import AutoscalerError, SourceError

__all__ = ["FileLoad", "PrometheusLoad"]

log = logging.getLogger(__name__)


class PrometheusLoad:
    """:class:`controller.ports.LoadSource` from a Prometheus instant query, stamped with the data's age.

    The ``[timestamp, value]`` pair of an instant query carries the *evaluation* time, not the time of the
    underlying sample, so it cannot tell fresh data from a series that stopped updating and is carried
    forward by the lookback delta (5 min by default; longer gaps in remote-written or federated data).
    A second instant query, ``timestamp(<query>)``, returns the sample time of a plain selector (a recording
    rule, a gauge), so ``loadMaxAge`` measures the age of the data. For an aggregation or a function such
    as ``sum(rate(...))`` Prometheus answers with the evaluation time; such a query stops returning a series
    once its range runs out of samples, which is reported as missing load instead. A ``timestamp()`` query
    Prometheus rejects (a scalar query) falls back to the evaluation time, logged once.

    ``source.instant(query, at)`` may return a float or a ``(value, timestamp)`` pair.
    """

    def __init__(self, source: Any, query: str) -> None:
        self.source, self.query = source, query
        self._warned_untimed = False

    def describe(self) -> str:
        return f"prometheus:{self.query}"

    def current(self, now: pd.Timestamp) -> ObservedLoad:
        at = pd.Timestamp(now)
        value, evaluated = _value_and_time(self.source.instant(self.query, at), at)
        try:
            stamp, _ = _value_and_time(self.source.instant(f"timestamp({self.query})", at), at)
            sampled = min(evaluated, _sample_time(stamp))
        except SourceError as exc:
            if not self._warned_untimed:
                log.warning(
                    "%s: no sample timestamp (%s); loadMaxAge is measured from the evaluation time",
                    self.describe(),
                    exc,
                )
                self._warned_untimed = True
            sampled = evaluated
        return ObservedLoad(rate=_rate(value, self.describe()), sampled_at=sampled)


def _value_and_time(raw: Any, at: pd.Timestamp) -> tuple[float, pd.Timestamp]:
    """``(value, time)`` from an instant result that is a float or a ``(value, timestamp)`` pair."""
    if isinstance(raw, tuple | list):
        value, stamp = raw
        return float(value), _sample_time(stamp)
    return float(raw), at


def _sample_time(stamp: Any) -> pd.Timestamp:
    """A sample time as Prometheus gives it (unix seconds) or as a Timestamp; always tz-aware."""
    if isinstance(stamp, int | float | str) and not isinstance(stamp, bool):
        try:
            return pd.Timestamp(float(stamp), unit="s", tz="UTC")
        except ValueError:
            pass
    ts = pd.Timestamp(stamp)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


class FileLoad:
    """:class:`controller.ports.LoadSource` from the last value of a history file (replays, tests)."""

    def __init__(self, path: str, *, time_column: str | None = None, value_column: str | None = None) -> None:
        self.path, self.time_column, self.value_column = path, time_column, value_column

    def describe(self) -> str:
        return f"file:{self.path}"

    def current(self, now: pd.Timestamp) -> ObservedLoad:
        from forecaster.series.io import load_history

        try:
            series = load_history(
                self.path,
                time_column=self.time_column,
                value_column=self.value_column,
                names={"path": "controller.load.path", "time": "controller.load.timeColumn",
                       "value": "controller.load.valueColumn"},
            )
        except AutoscalerError as exc:
            raise SourceError(f"live load file: {exc}") from None
        series = series.dropna()
        series = series[series.index <= pd.Timestamp(now)]
        if series.empty:
            raise SourceError(f"{self.path}: no load sample at or before {pd.Timestamp(now).isoformat()}")
        return ObservedLoad(
            rate=_rate(float(series.iloc[-1]), self.describe()), sampled_at=pd.Timestamp(series.index[-1])
        )


def _rate(value: float, where: str) -> float:
    """A request rate, or SourceError: a negative rate is a broken query or counter, not a quiet minute."""
    if value < 0:
        raise SourceError(
            f"{where}: live load sample is {value:g} req/s; a rate cannot be negative (check the query, e.g. "
            "rate() over a counter, not delta() over a gauge)"
        )
    return value
