"""The forecast job's configuration: its sections of the one YAML file, with errors that name the field.

The same file carries the controller's ``controller`` section; the command-line tools read and validate the
whole file at once with :mod:`controller.configfile` (the forecaster cannot know the controller's model).
:func:`parse_job_config` validates the job's sections alone and leaves ``controller`` to that layer; any other
top-level key is a typo and is rejected. Relative paths (history file, forecast file, promotions file) are
resolved against the config file's directory, so the job behaves the same from any working directory.
Secret file paths may be overridden by environment variables (``RECHARGE_PROMETHEUS_BEARER_TOKEN_FILE`` and
friends), which is how the Helm chart mounts them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from forecaster.adapters.files import FileSourceConfig
from forecaster.adapters.prometheus_config import PrometheusConfig, with_env_overrides
from forecaster.configbase import (
    Between,
    ConfigModel,
    Duration,
    Explain,
    FieldError,
    NonEmptyStr,
    check,
    load_yaml,
    parse,
)
from forecaster.errors import ConfigError
from forecaster.series.calendar import CalendarConfig

TOP_LEVEL_SECTIONS = frozenset(
    {"source", "forecast", "store", "schedule", "metrics", "logging", "controller"}
)


NO_CANDIDATES = "must name at least one model, or be left unset"


class SourceConfig(ConfigModel):
    """Where history comes from."""

    config_path = "source"

    kind: Literal["prometheus", "file"] = Field(
        description="History source: 'prometheus' (range queries) or 'file' (CSV/Parquet).",
    )
    prometheus: PrometheusConfig | None = Field(None, description="Used when kind is prometheus.")
    file: FileSourceConfig | None = Field(None, description="Used when kind is file.")

    @model_validator(mode="after")
    def _kind_has_its_section(self) -> Self:
        if self.kind == "prometheus":
            check(self.prometheus is not None, "prometheus", "required when source.kind is prometheus")
        else:
            check(self.file is not None, "file", "required when source.kind is file")
        return self


def _known_model(name: str) -> str:
    from forecaster.models import available_models

    if name != "auto" and name not in available_models():
        raise ValueError(f"unknown model {name!r}; use auto or one of {', '.join(available_models())}")
    return name


class ForecastConfig(ConfigModel):
    """What to forecast and how."""

    config_path = "forecast"

    horizon: Annotated[Duration, Between("0s", "90d", open_low=True)] = Field(
        Duration(86400), description="How far ahead to forecast.", json_schema_extra={"unit": "s"},
    )
    interval: Annotated[Duration, Between("0s", "7d", open_low=True)] = Field(
        Duration(3600),
        description="Width of each forecast interval; a multiple of the history's resolution.",
        json_schema_extra={"unit": "s"},
    )
    history: Annotated[Duration, Between("0s", "3650d", open_low=True)] = Field(
        Duration(28 * 86400),
        description="How much history to read, ending at the latest sample. Four weeks or more lets "
        "weekly seasonality and backtests work.",
        json_schema_extra={"unit": "s"},
    )
    model: NonEmptyStr = Field(
        "auto",
        description="Model alias (see `recharge-autoscaler forecast --help`), or 'auto' to pick the best by "
        "backtest.",
    )
    candidates: Annotated[Annotated[list[str], Field(min_length=1)] | None, Explain(NO_CANDIDATES)] = Field(
        None,
        description="Models that 'auto' backtests and may pick or blend; unset = the fast default set. Add "
        "'prophet' or 'mstl_ets' to let them compete (each costs 30-100x a seasonal baseline per fold).",
    )
    band_level: float = Field(
        0.9, ge=0.5, le=0.99,
        description="Nominal coverage of the [yhat_lower, yhat_upper] band, between 0.5 and 0.99.",
        json_schema_extra={"unit": "fraction"},
    )
    folds: int | None = Field(
        None, ge=1, le=20,
        description="Backtest folds used to pick and calibrate the model; unset = automatic.",
        json_schema_extra={"unit": "count"},
    )
    timezone: str = Field(
        "UTC",
        description="IANA zone whose local days/weeks shape the traffic (seasonality, calendar events).",
    )
    calendar: CalendarConfig = Field(
        default_factory=CalendarConfig, description="Holidays, month starts, paydays and promotions.",
    )

    @field_validator("model")
    @classmethod
    def _model_known(cls, name: str) -> str:
        return _known_model(name)

    @field_validator("candidates")
    @classmethod
    def _candidates_known(cls, names: list[str] | None) -> list[str] | None:
        from forecaster.models import available_models

        for i, name in enumerate(names or ()):
            if name not in available_models():
                raise FieldError(
                    f"[{i}]", f"unknown model {name!r}; use one of {', '.join(available_models())}"
                )
        return names

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(zone)
        except Exception:
            raise ValueError(f"unknown time zone {zone!r}; use an IANA name like Asia/Jakarta") from None
        return zone

    @model_validator(mode="after")
    def _spans(self) -> Self:
        check(self.horizon >= self.interval, "horizon", "must be at least one forecast.interval")
        check(self.history >= 2 * self.interval, "history", "must cover at least two intervals")
        return self


class FileStoreConfig(ConfigModel):
    """A JSON file on a filesystem the controller can read."""

    config_path = "store.file"

    path: NonEmptyStr = Field(
        description="Forecast file; relative paths are resolved against the config file's directory.",
    )


class ConfigMapStoreConfig(ConfigModel):
    """A key of a Kubernetes ConfigMap (the forecast must stay under 1 MiB)."""

    config_path = "store.configmap"

    name: NonEmptyStr = Field(description="ConfigMap name.")
    namespace: str | None = Field(
        None, description="Namespace; unset = the pod's own namespace (or 'default' outside a cluster).",
    )
    key: NonEmptyStr = Field("forecast.json", description="Data key holding the forecast JSON.")
    kubeconfig: str | None = Field(
        None, description="Kubeconfig file used outside a cluster; in a pod the service account is used.",
    )
    context: str | None = Field(None, description="Kubeconfig context; unset = current context.")


class StoreConfig(ConfigModel):
    """Where the last good forecast is kept."""

    config_path = "store"

    kind: Literal["file", "configmap"] = Field(description="Forecast store: 'file' or 'configmap'.")
    file: FileStoreConfig | None = Field(None, description="Used when kind is file.")
    configmap: ConfigMapStoreConfig | None = Field(None, description="Used when kind is configmap.")

    @model_validator(mode="after")
    def _kind_has_its_section(self) -> Self:
        check(self.kind != "file" or self.file is not None, "file", "required when store.kind is file")
        check(
            self.kind != "configmap" or self.configmap is not None,
            "configmap",
            "required when store.kind is configmap",
        )
        return self


class ScheduleConfig(ConfigModel):
    """When the long-running job forecasts (ignored with --once)."""

    config_path = "schedule"

    cron: str = Field(
        "*/30 * * * *", description="Five-field crontab (minute hour day month weekday) of forecast runs.",
    )
    timezone: str = Field("UTC", description="Zone the cron expression is read in.")
    misfire_grace_time: Annotated[Duration, Between("1s", "1d")] = Field(
        Duration(300),
        description="A run that could not start on time still starts if it is at most this late.",
        json_schema_extra={"unit": "s"},
    )
    run_on_start: bool = Field(True, description="Run once immediately at start, then on the cron schedule.")
    run_timeout: Annotated[Duration, Between("1s", "1d")] = Field(
        Duration(1200),
        description="Longest a whole forecast run may take, with --once too (reading history, fitting, "
        "storing); a run that passes it fails (exit 3) and the last good forecast is kept. Keep it below the "
        "cron period and the CronJob's activeDeadlineSeconds.",
        json_schema_extra={"unit": "s"},
    )

    @model_validator(mode="after")
    def _valid_cron(self) -> Self:
        try:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(self.cron, timezone=self.timezone)
        except Exception as exc:
            raise FieldError(
                "cron",
                f"invalid crontab {self.cron!r} in zone {self.timezone!r} ({exc}); "
                "expected five fields like '*/30 * * * *'",
            ) from None
        return self


class MetricsConfig(ConfigModel):
    """The job's own Prometheus metrics endpoint (long-running mode only)."""

    config_path = "metrics"

    enabled: bool = Field(True, description="Serve /metrics while the job runs on its schedule.")
    port: int = Field(
        9109, ge=0, le=65535, description="TCP port of the metrics endpoint (0 = any free port).",
        json_schema_extra={"unit": "port"},
    )
    address: str = Field("0.0.0.0", description="Address the metrics endpoint listens on.")


class LoggingConfig(ConfigModel):
    """Log format and verbosity (the --log-level/--log-json flags win when given)."""

    config_path = "logging"

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(
        None, description="Log level; unset = INFO when running on a schedule, WARNING with --once.",
    )
    json_lines: bool = Field(
        False, alias="json", description="Write logs as JSON lines on stderr (for log collectors).",
    )


class JobConfig(ConfigModel):
    """The forecast job: read history, forecast, store the result, on a schedule."""

    source: SourceConfig = Field(description="Where history comes from.")
    store: StoreConfig = Field(description="Where the forecast is written.")
    forecast: ForecastConfig = Field(default_factory=ForecastConfig, description="What to forecast and how.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="When to run.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="The job's /metrics endpoint.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log format and verbosity.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_sections(self.source, self.forecast)
        return self


def check_sections(
    source: SourceConfig | None, forecast: ForecastConfig, *, history_query: bool = True
) -> None:
    """Rules across sections: a Prometheus source has its history query (unless ``history_query`` is False:
    a fleet's config file, whose queries are in its PredictiveScalers, gives only the connection), and the
    forecast interval is a whole number of Prometheus steps."""
    prom = source.prometheus if source is not None and source.kind == "prometheus" else None
    if prom is not None and history_query:
        check(bool(prom.query), "source.prometheus.query",
              "required: a PromQL expression returning one series")
    if prom is not None:
        interval, step = round(forecast.interval), round(prom.step)
        check(
            step > 0 and interval % step == 0,
            "forecast.interval",
            f"must be a multiple of source.prometheus.step ({interval}s is not a multiple of {step}s)",
        )


def resolve_source(source: SourceConfig, base: Path, env: Mapping[str, str]) -> SourceConfig:
    """``source`` with the history file resolved against ``base`` and the secret-path env overrides."""
    if source.prometheus is not None:
        source = source.evolve(prometheus=with_env_overrides(source.prometheus, env))
    if source.file is not None:
        source = source.evolve(file=source.file.evolve(path=resolve_path(base, source.file.path)))
    return source


def resolve_store(store: StoreConfig, base: Path) -> StoreConfig:
    """``store`` with a forecast file path resolved against ``base``."""
    if store.file is not None:
        return store.evolve(file=store.file.evolve(path=resolve_path(base, store.file.path)))
    return store


def resolve_forecast(forecast: ForecastConfig, base: Path) -> ForecastConfig:
    """``forecast`` with the promotions file resolved against ``base``."""
    promotions = forecast.calendar.promotions_file
    if promotions:
        return forecast.evolve(
            calendar=forecast.calendar.evolve(promotions_file=resolve_path(base, promotions))
        )
    return forecast


def parse_job_config(
    data: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] = ".",
    environ: Mapping[str, str] | None = None,
) -> JobConfig:
    """Validate the job's sections of a loaded mapping; resolve relative paths against ``base_dir``; apply env
    overrides. The ``controller`` section is left to :mod:`controller.configfile`."""
    cfg = parse(JobConfig, {k: v for k, v in data.items() if k != "controller"})
    env = os.environ if environ is None else environ
    base = Path(base_dir)
    return cfg.evolve(
        source=resolve_source(cfg.source, base, env),
        store=resolve_store(cfg.store, base),
        forecast=resolve_forecast(cfg.forecast, base),
    )


def load_job_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> JobConfig:
    """Load and validate the job's sections of the YAML config file at ``path``."""
    data = load_yaml(Path(path))
    try:
        return parse_job_config(data, base_dir=Path(path).resolve().parent, environ=environ)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def resolve_path(base: Path, path: str) -> str:
    """``path`` (``~`` expanded) made absolute against ``base`` unless it already is."""
    p = Path(os.path.expanduser(path))
    return os.path.normpath(p if p.is_absolute() else base / p)
