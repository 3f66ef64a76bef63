"""History from a CSV or Parquet file, behind the same interface as Prometheus.

Used for the bundled sample (``make run``), for replays, and by teams whose metrics are exported to files.
A file has its own resolution and its own end: the forecast job asks :meth:`FileSource.end_of_data` so that it
forecasts the horizon right after the file's last sample rather than after the wall clock.
"""

from __future__ import annotations

import os

import pandas as pd
from pydantic import Field, field_validator

from forecaster.configbase import ConfigModel, NonEmptyStr
from forecaster.errors import SourceError


class FileSourceConfig(ConfigModel):
    """A history file: CSV (optionally .gz) or Parquet with a time column and a value column."""

    config_path = "source.file"

    path: NonEmptyStr = Field(
        description="History file; a relative path is resolved against the config file's directory."
    )
    time_column: str | None = Field(
        None, description="Time column; auto-detected among ds, timestamp, time, date_time when unset."
    )
    value_column: str | None = Field(
        None, description="Value column; auto-detected among y, value when unset."
    )
    timezone: str = Field(
        "UTC", description="Zone of zone-less timestamps in the file (IANA name, e.g. Asia/Jakarta)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from forecaster.errors import UserError
        from forecaster.series.io import check_timezone

        try:
            check_timezone(value, what="timezone")
        except UserError as exc:  # the field path is added by the config model
            raise ValueError(str(exc).removeprefix("timezone: ")) from None
        return value


class FileSource:
    """Implements ``forecaster.ports.HistorySource`` over a file; re-reads it when it changes on disk."""

    def __init__(
        self,
        path: str,
        time_column: str | None = None,
        value_column: str | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.path = str(path)
        self.time_column = time_column
        self.value_column = value_column
        self.timezone = timezone
        self.names = {"path": "--history", "time": "--time-column", "value": "--value-column"}
        self._stamp: tuple[int, int] | None = None
        self._data: pd.Series | None = None

    @classmethod
    def from_config(cls, cfg: FileSourceConfig) -> FileSource:
        src = cls(cfg.path, cfg.time_column, cfg.value_column, cfg.timezone)
        p = "source.file"
        src.names = {"path": f"{p}.path", "time": f"{p}.timeColumn", "value": f"{p}.valueColumn",
                     "timezone": f"{p}.timezone"}
        return src

    def describe(self) -> str:
        return f"file {self.path}"

    def _load(self) -> pd.Series:
        from forecaster.series.io import load_history  # pandas/pyarrow parsing stays out of import time

        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None  # load_history reports the missing file with the proper message
        if self._data is None or stamp is None or stamp != self._stamp:
            data = load_history(
                self.path,
                time_column=self.time_column,
                value_column=self.value_column,
                timezone=self.timezone,
                names=self.names,
            )
            data = data.sort_index()
            self._data, self._stamp = data, stamp
        return self._data

    def end_of_data(self) -> pd.Timestamp:
        """Timestamp of the last sample in the file."""
        return pd.Timestamp(self._load().index.max())

    def history(self, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta | None = None) -> pd.Series:
        """Samples with ``start <= ds <= end`` at the file's own resolution (``step`` is not used)."""
        data = self._load()
        window = data[(data.index >= start) & (data.index <= end)]
        if window.empty:
            raise SourceError(
                f"{self.describe()}: no samples between {pd.Timestamp(start).isoformat()} and "
                f"{pd.Timestamp(end).isoformat()} (the file covers {data.index.min().isoformat()} .. "
                f"{data.index.max().isoformat()})"
            )
        return window.rename("y")
