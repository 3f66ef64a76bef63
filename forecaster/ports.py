"""Narrow I/O interfaces of the forecasting side: where history comes from and where forecasts go.

Implementations: file and Prometheus history sources; file and Kubernetes ConfigMap forecast stores.
Tests use small fakes that implement these Protocols instead of mocking HTTP.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from forecaster.artifact import ForecastArtifact


class HistorySource(Protocol):
    """A series of (timestamp, value): tz-aware UTC index, float values, NaN never invented."""

    def describe(self) -> str:
        """Short human description for logs and the artifact's ``history.source`` (no secrets)."""
        ...

    def history(self, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> pd.Series: ...


class ForecastStore(Protocol):
    """Keeps the last good forecast. ``write`` must be atomic; a failed run never overwrites a good one."""

    def describe(self) -> str: ...

    def write(self, artifact: ForecastArtifact) -> None: ...

    def read(self) -> ForecastArtifact | None:
        """The stored artifact, ``None`` if nothing was ever stored; raises StoreError if unreadable."""
        ...
