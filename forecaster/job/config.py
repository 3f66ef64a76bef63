"""The forecast job's configuration: one YAML file, validated once at start with errors that name the field.

The same file carries the controller's ``controller`` section (read by ``controller/config.py``), so the
top-level keys allowed here are :data:`TOP_LEVEL_SECTIONS`; anything else is a typo and is rejected.
Relative paths (history file, forecast file, promotions file) are resolved against the config file's
directory, so the job behaves the same from any working directory. Secret file paths may be overridden by
environment variables (``RECHARGE_PROMETHEUS_BEARER_TOKEN_FILE`` and friends), which is how the Helm chart
mounts them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from forecaster.adapters.files import FileSourceConfig
from forecaster.adapters.prometheus import PrometheusConfig, with_env_overrides
from forecaster.configbase import Duration, build, check, doc, load_yaml
from forecaster.errors import ConfigError
from forecaster.series.calendar import CalendarConfig

TOP_LEVEL_SECTIONS = frozenset(
    {"source", "forecast", "store", "schedule", "metrics", "logging", "controller"}
)


@dataclass(frozen=True)
class SourceConfig:
    """Where history comes from."""

    kind: Literal["prometheus", "file"] = field(
        metadata=doc("History source: 'prometheus' (range queries) or 'file' (CSV/Parquet).")
    )
    prometheus: PrometheusConfig | None = field(default=None, metadata=doc("Used when kind is prometheus."))
    file: FileSourceConfig | None = field(default=None, metadata=doc("Used when kind is file."))

    def __post_init__(self) -> None:
        check(
            self.kind != "prometheus" or self.prometheus is not None,
            "source.prometheus",
            "required when source.kind is prometheus",
        )
        check(
            self.kind != "prometheus" or bool(self.prometheus and self.prometheus.query),
            "source.prometheus.query",
            "required: a PromQL expression returning one series",
        )
        check(
            self.kind != "file" or self.file is not None, "source.file", "required when source.kind is file"
        )


@dataclass(frozen=True)
class ForecastConfig:
    """What to forecast and how."""

    horizon: Duration = field(default=Duration(86400), metadata=doc("How far ahead to forecast.", unit="s"))
    interval: Duration = field(
        default=Duration(3600),
        metadata=doc("Width of each forecast interval; a multiple of the history's resolution.", unit="s"),
    )
    history: Duration = field(
        default=Duration(28 * 86400),
        metadata=doc(
            "How much history to read, ending at the latest sample. Four weeks or more lets "
            "weekly seasonality and backtests work.",
            unit="s",
        ),
    )
    model: str = field(
        default="auto",
        metadata=doc(
            "Model alias (see `recharge-autoscaler forecast --help`), or 'auto' to pick the best by backtest."
        ),
    )
    candidates: list[str] | None = field(
        default=None,
        metadata=doc(
            "Models that 'auto' backtests and may pick or blend; unset = the fast default set. Add "
            "'prophet' or 'mstl_ets' to let them compete (each costs 30-100x a seasonal baseline per fold)."
        ),
    )
    band_level: float = field(
        default=0.9,
        metadata=doc("Nominal coverage of the [yhat_lower, yhat_upper] band, between 0.5 and 0.99."),
    )
    folds: int | None = field(
        default=None, metadata=doc("Backtest folds used to pick and calibrate the model; unset = automatic.")
    )
    timezone: str = field(
        default="UTC",
        metadata=doc("IANA zone whose local days/weeks shape the traffic (seasonality, calendar events)."),
    )
    calendar: CalendarConfig = field(
        default_factory=CalendarConfig, metadata=doc("Holidays, month starts, paydays and promotions.")
    )

    def __post_init__(self) -> None:
        check(self.horizon > 0, "forecast.horizon", "must be positive")
        check(self.interval > 0, "forecast.interval", "must be positive")
        check(self.horizon >= self.interval, "forecast.horizon", "must be at least one forecast.interval")
        check(self.history >= 2 * self.interval, "forecast.history", "must cover at least two intervals")
        check(
            0.5 <= self.band_level <= 0.99,
            "forecast.bandLevel",
            f"must be in [0.5, 0.99], got {self.band_level}",
        )
        check(self.folds is None or 1 <= self.folds <= 20, "forecast.folds", "must be between 1 and 20")
        check(bool(self.model), "forecast.model", "must not be empty")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except Exception:
            raise ConfigError(
                f"forecast.timezone: unknown time zone {self.timezone!r}; use an IANA name like Asia/Jakarta"
            ) from None


@dataclass(frozen=True)
class FileStoreConfig:
    """A JSON file on a filesystem the controller can read."""

    path: str = field(
        metadata=doc("Forecast file; relative paths are resolved against the config file's directory.")
    )


@dataclass(frozen=True)
class ConfigMapStoreConfig:
    """A key of a Kubernetes ConfigMap (the forecast must stay under 1 MiB)."""

    name: str = field(metadata=doc("ConfigMap name."))
    namespace: str | None = field(
        default=None,
        metadata=doc("Namespace; unset = the pod's own namespace (or 'default' outside a cluster)."),
    )
    key: str = field(default="forecast.json", metadata=doc("Data key holding the forecast JSON."))
    kubeconfig: str | None = field(
        default=None,
        metadata=doc("Kubeconfig file used outside a cluster; in a pod the service account is used."),
    )
    context: str | None = field(default=None, metadata=doc("Kubeconfig context; unset = current context."))

    def __post_init__(self) -> None:
        check(bool(self.name), "store.configmap.name", "must not be empty")
        check(bool(self.key), "store.configmap.key", "must not be empty")


@dataclass(frozen=True)
class StoreConfig:
    """Where the last good forecast is kept."""

    kind: Literal["file", "configmap"] = field(metadata=doc("Forecast store: 'file' or 'configmap'."))
    file: FileStoreConfig | None = field(default=None, metadata=doc("Used when kind is file."))
    configmap: ConfigMapStoreConfig | None = field(default=None, metadata=doc("Used when kind is configmap."))

    def __post_init__(self) -> None:
        check(self.kind != "file" or self.file is not None, "store.file", "required when store.kind is file")
        check(
            self.kind != "configmap" or self.configmap is not None,
            "store.configmap",
            "required when store.kind is configmap",
        )


@dataclass(frozen=True)
class ScheduleConfig:
    """When the long-running job forecasts (ignored with --once)."""

    cron: str = field(
        default="*/30 * * * *",
        metadata=doc("Five-field crontab (minute hour day month weekday) of forecast runs."),
    )
    timezone: str = field(default="UTC", metadata=doc("Zone the cron expression is read in."))
    misfire_grace_time: Duration = field(
        default=Duration(300),
        metadata=doc("A run that could not start on time still starts if it is at most this late.", unit="s"),
    )
    run_on_start: bool = field(
        default=True, metadata=doc("Run once immediately at start, then on the cron schedule.")
    )

    def __post_init__(self) -> None:
        check(self.misfire_grace_time >= 1, "schedule.misfireGraceTime", "must be at least 1s")
        try:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(self.cron, timezone=self.timezone)
        except Exception as exc:
            raise ConfigError(
                f"schedule.cron: invalid crontab {self.cron!r} in zone {self.timezone!r} "
                f"({exc}); expected five fields like '*/30 * * * *'"
            ) from None


@dataclass(frozen=True)
class MetricsConfig:
    """The job's own Prometheus metrics endpoint (long-running mode only)."""

    enabled: bool = field(default=True, metadata=doc("Serve /metrics while the job runs on its schedule."))
    port: int = field(default=9109, metadata=doc("TCP port of the metrics endpoint (0 = any free port)."))
    address: str = field(default="0.0.0.0", metadata=doc("Address the metrics endpoint listens on."))

    def __post_init__(self) -> None:
        check(0 <= self.port <= 65535, "metrics.port", f"must be between 0 and 65535, got {self.port}")


@dataclass(frozen=True)
class LoggingConfig:
    """Log format and verbosity (the --log-level/--log-json flags win when given)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = field(
        default=None, metadata=doc("Log level; unset = INFO when running on a schedule, WARNING with --once.")
    )
    json: bool = field(
        default=False, metadata=doc("Write logs as JSON lines on stderr (for log collectors).")
    )


@dataclass(frozen=True)
class JobConfig:
    """The forecast job: read history, forecast, store the result, on a schedule."""

    source: SourceConfig = field(metadata=doc("Where history comes from."))
    store: StoreConfig = field(metadata=doc("Where the forecast is written."))
    forecast: ForecastConfig = field(
        default_factory=ForecastConfig, metadata=doc("What to forecast and how.")
    )
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig, metadata=doc("When to run."))
    metrics: MetricsConfig = field(
        default_factory=MetricsConfig, metadata=doc("The job's /metrics endpoint.")
    )
    logging: LoggingConfig = field(default_factory=LoggingConfig, metadata=doc("Log format and verbosity."))

    def __post_init__(self) -> None:
        prom = self.source.prometheus
        if self.source.kind == "prometheus" and prom is not None:
            interval, step = round(self.forecast.interval), round(prom.step)
            check(
                interval % step == 0,
                "forecast.interval",
                f"must be a multiple of source.prometheus.step ({interval}s is not a multiple of {step}s)",
            )


def parse_job_config(
    data: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] = ".",
    environ: Mapping[str, str] | None = None,
) -> JobConfig:
    """Validate a loaded mapping; resolve relative paths against ``base_dir``; apply env overrides."""
    unknown = sorted(set(map(str, data)) - TOP_LEVEL_SECTIONS)
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: unknown top-level section; allowed: {', '.join(sorted(TOP_LEVEL_SECTIONS))}"
        )
    job_part = {k: v for k, v in data.items() if k != "controller"}
    try:
        cfg = build(JobConfig, job_part)
    except ConfigError as exc:
        text = str(exc)  # the calendar section is shared; its own checks name it "calendar.<field>"
        raise ConfigError("forecast." + text if text.startswith("calendar.") else text) from None
    from forecaster.models import available_models

    if cfg.forecast.model != "auto" and cfg.forecast.model not in available_models():
        raise ConfigError(
            f"forecast.model: unknown model {cfg.forecast.model!r}; use auto or one of "
            f"{', '.join(available_models())}"
        )
    for i, name in enumerate(cfg.forecast.candidates or ()):
        if name not in available_models():
            raise ConfigError(
                f"forecast.candidates[{i}]: unknown model {name!r}; "
                f"use one of {', '.join(available_models())}"
            )
    if cfg.forecast.candidates is not None and not cfg.forecast.candidates:
        raise ConfigError("forecast.candidates: must name at least one model, or be left unset")
    env = os.environ if environ is None else environ
    base = Path(base_dir)
    source = cfg.source
    if source.prometheus is not None:
        source = replace(source, prometheus=with_env_overrides(source.prometheus, env))
    if source.file is not None:
        source = replace(source, file=replace(source.file, path=_resolve(base, source.file.path)))
    store = cfg.store
    if store.file is not None:
        store = replace(store, file=replace(store.file, path=_resolve(base, store.file.path)))
    forecast = cfg.forecast
    promotions = getattr(forecast.calendar, "promotions_file", None)
    if promotions:
        forecast = replace(
            forecast, calendar=replace(forecast.calendar, promotions_file=_resolve(base, promotions))
        )
    return replace(cfg, source=source, store=store, forecast=forecast)


def load_job_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> JobConfig:
    """Load and validate the job's sections of the YAML config file at ``path``."""
    data = load_yaml(Path(path))
    try:
        return parse_job_config(data, base_dir=Path(path).resolve().parent, environ=environ)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _resolve(base: Path, path: str) -> str:
    p = Path(os.path.expanduser(path))
    return os.path.normpath(p if p.is_absolute() else base / p)
