"""The whole config file, validated at once wherever it is read.

One YAML file configures the forecast job (``source``, ``forecast``, ``store``, ``schedule``, ``metrics``,
``logging``) and the controller (``controller``). Every command that reads it (``forecast-job``, ``run``,
and ``plan``/``simulate``/``whatif``/``report`` with ``--config``) goes through :func:`load_config`, so a
typo or an impossible value anywhere in the file stops every one of them with the same one-line error
(exit 2), and a key given twice is refused with its line (:func:`forecaster.configbase.read_yaml`).
Each command then asks for the sections it needs (:meth:`ConfigFile.job`,
:meth:`ConfigFile.fleet_prometheus`, :meth:`ConfigFile.require_controller`).

This module sits above both config models: the forecaster cannot know the controller's section, and the
pure decision core must not import the job's adapters, so neither :mod:`forecaster.job.config` nor
:mod:`controller.config` can hold it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator

from controller.config import SECTION, ControllerConfig, FleetConfig
from forecaster.adapters.prometheus_config import PrometheusConfig
from forecaster.configbase import ConfigModel, load_yaml, parse
from forecaster.errors import ConfigError
from forecaster.job.config import (
    ForecastConfig,
    JobConfig,
    LoggingConfig,
    MetricsConfig,
    ScheduleConfig,
    SourceConfig,
    StoreConfig,
    check_sections,
    resolve_forecast,
    resolve_source,
    resolve_store,
)


class ConfigFile(ConfigModel):
    """Every section of the config file; each command requires the ones it uses."""

    source: SourceConfig | None = Field(None, description="Where history comes from (the forecast job).")
    forecast: ForecastConfig = Field(default_factory=ForecastConfig, description="What to forecast and how.")
    store: StoreConfig | None = Field(None, description="Where the forecast is written and read.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="When the job runs.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="The job's /metrics endpoint.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log format and verbosity.")
    controller: ControllerConfig | None = Field(None, description="The controller (`run`, and the planners).")
    fleet: FleetConfig | None = Field(None, description="The fleet controller (`fleet`).")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # A fleet's file gives only the Prometheus connection: each PredictiveScaler names its own queries.
        single = self.fleet is None or self.controller is not None
        check_sections(self.source, self.forecast, history_query=single)
        return self

    def job(self) -> JobConfig:
        """The forecast job's view; ConfigError unless ``source`` and ``store`` are given."""
        for key, value in (("source", self.source), ("store", self.store)):
            if value is None:
                raise ConfigError(f"{key}: required field is missing (the forecast job needs it)")
        assert self.source is not None and self.store is not None
        return JobConfig(
            source=self.source,
            store=self.store,
            forecast=self.forecast,
            schedule=self.schedule,
            metrics=self.metrics,
            logging=self.logging,
        )

    def fleet_prometheus(self) -> PrometheusConfig:
        """The connection the fleet forecast job queries every scaler's ``spec.history.query`` on."""
        if self.source is None or self.source.kind != "prometheus" or self.source.prometheus is None:
            raise ConfigError(
                "source.prometheus: required by forecast-job --fleet (it runs every scaler's history query)"
            )
        return self.source.prometheus

    def require_controller(self) -> ControllerConfig:
        """The ``controller`` section, or a ConfigError saying the file has none."""
        if self.controller is None:
            raise ConfigError(f"has no '{SECTION}' section (needed by the controller)")
        return self.controller


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] = ".",
    environ: Mapping[str, str] | None = None,
) -> ConfigFile:
    """Validate every section of a loaded mapping, resolve relative paths, apply the secret-path overrides."""
    cfg = parse(ConfigFile, data)
    env = os.environ if environ is None else environ
    base = Path(base_dir)
    return cfg.evolve(
        source=resolve_source(cfg.source, base, env) if cfg.source is not None else None,
        store=resolve_store(cfg.store, base) if cfg.store is not None else None,
        forecast=resolve_forecast(cfg.forecast, base),
    )


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> ConfigFile:
    """Read and validate the whole YAML config file at ``path``; errors start with the file name."""
    data = load_yaml(Path(path))
    try:
        return parse_config(data, base_dir=Path(path).resolve().parent, environ=environ)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_controller_config(path: str | os.PathLike[str]) -> ControllerConfig:
    """The ``controller`` section of the file at ``path``, after validating the whole file."""
    cfg = load_config(path)
    try:
        return cfg.require_controller()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
