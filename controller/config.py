"""The controller's configuration: the ``controller`` section of the same YAML file the forecast job reads.

One frozen model tree (pydantic, see :mod:`forecaster.configbase`) describes every knob the decision core
and the live loop use: the scale target, the capacity model (``capacityPerReplica``, ``headroom`` or
``availabilityTarget``), limits, declared ``scalingWindows`` (see :mod:`controller.windows`), HPA-style
``behavior`` policies, the safety rules (forecast/load staleness, max-capacity policy), cache warm-up and
the loop's own plumbing (leader election, ports, annotations). Field docs carry units and every duration
its allowed range; ``docs/configuration.md`` and the Helm values schema are generated from
these models. Validation errors name the dotted field (``controller.maxReplicas: must be >= minReplicas
(3), got 2``).

Connections are not repeated here: the live load query uses the top-level ``source.prometheus`` connection
and the forecast is read from the top-level ``store`` section of the same file (see
:mod:`forecaster.job.config`). The whole file is read and validated at once by :mod:`controller.configfile`.

The decision core (:func:`controller.core.decision.decide`) reads only the capacity, limit, behavior, safety
and warm-up fields, so offline callers (``plan``, the simulator) build a :class:`ControllerConfig` from
keyword arguments and leave ``target``/``load`` unset.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from typing import Annotated, Any, Literal, Self

import pandas as pd
from pydantic import AfterValidator, Field, field_validator, model_validator

from controller.windows import ScalingWindow
from forecaster.configbase import (
    Between,
    ConfigModel,
    Duration,
    Explain,
    FieldError,
    NonEmptyStr,
    check,
    parse,
)

SECTION = "controller"
MAX_TARGET = 0.999  # the highest availability target the backtest error table can support
PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]
Port = Annotated[int, Explain("must be a TCP port in 1..65535"), Field(ge=1, le=65535)]


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"must be an IP address such as 0.0.0.0, :: or 127.0.0.1, got {value!r}") from None
    return value


BindAddress = Annotated[str, AfterValidator(_ip_address)]
"""Where the probe and metrics servers listen (``bindAddress`` of the controller and of the fleet)."""


class TargetConfig(ConfigModel):
    """The workload the controller scales."""

    config_path = "controller.target"

    name: NonEmptyStr = Field(description="Name of the Deployment that serves recharge traffic.")
    namespace: NonEmptyStr = Field("default", description="Namespace of the Deployment (and its HPA).")
    kind: Literal["Deployment"] = Field("Deployment", description="Kind of the scale target.")
    mode: Literal["hpa", "scale"] = Field(
        "hpa",
        description="How replicas are applied: 'hpa' raises/lowers the HPA's minReplicas (the HPA keeps "
        "reacting to CPU); 'scale' sets the Deployment's scale subresource directly (no HPA on the target).",
    )
    hpa_name: NonEmptyStr | None = Field(
        None, description="Name of the HPA in 'hpa' mode; defaults to the Deployment name.",
    )

    @property
    def hpa(self) -> str:
        """The HPA name actually used in 'hpa' mode."""
        return self.hpa_name or self.name

    def describe(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


class ScalingPolicy(ConfigModel):
    """One rate limit, exactly like an HPA ``behavior`` policy."""

    config_path = "controller.behavior.policies"
    positional = ("type", "value", "period_seconds")

    type: PolicyType = Field(
        description="'Pods' (absolute count) or 'Percent' (of the replicas at period start).",
    )
    value: int = Field(
        gt=0, description="Pods or percent allowed to change per period.",
        json_schema_extra={"unit": "pods or %"},
    )
    period_seconds: int = Field(
        60, ge=1, le=1800, description="Length of the window the change is counted over.",
        json_schema_extra={"unit": "s"},
    )


class ScalingRules(ConfigModel):
    """Rate limits and stabilisation for one direction (scale-up or scale-down), as in HPA ``behavior``."""

    config_path = "controller.behavior"
    positional = ("policies", "select_policy", "stabilization_window_seconds")

    policies: tuple[ScalingPolicy, ...] = Field(
        strict=False, description="Rate limits; which one applies is chosen by selectPolicy.",
    )
    select_policy: SelectPolicy = Field(
        "Max",
        description="'Max' allows the largest change of the policies, 'Min' the smallest, 'Disabled' none.",
    )
    stabilization_window_seconds: int = Field(
        0,
        ge=0,
        le=3600,
        description="Scale-down: use the highest recommendation of this window; scale-up: the lowest "
        "(anti-flap).",
        json_schema_extra={"unit": "s"},
    )

    @model_validator(mode="after")
    def _needs_a_policy(self) -> Self:
        check(
            bool(self.policies) or self.select_policy == "Disabled",
            "policies",
            "needs at least one policy unless selectPolicy is Disabled",
        )
        return self


def _default_scale_up() -> ScalingRules:
    return ScalingRules(
        policies=(
            ScalingPolicy(type="Percent", value=100, period_seconds=15),
            ScalingPolicy(type="Pods", value=4, period_seconds=15),
        ),
        select_policy="Max",
        stabilization_window_seconds=0,
    )


def _default_scale_down() -> ScalingRules:
    return ScalingRules(
        policies=(ScalingPolicy(type="Percent", value=100, period_seconds=15),),
        select_policy="Max",
        stabilization_window_seconds=300,
    )


class BehaviorConfig(ConfigModel):
    """Scale-up and scale-down rules. Defaults are the Kubernetes HPA defaults."""

    config_path = "controller.behavior"

    scale_up: ScalingRules = Field(
        default_factory=_default_scale_up,
        description="Default: +100% or +4 pods per 15 s, whichever is more; no stabilisation.",
    )
    scale_down: ScalingRules = Field(
        default_factory=_default_scale_down,
        description="Default: -100% per 15 s after a 300 s stabilisation window.",
    )


class LeaderElectionConfig(ConfigModel):
    """A coordination.k8s.io Lease so that only one controller replica acts."""

    config_path = "controller.leaderElection"

    enabled: bool = Field(True, description="Elect a leader among controller replicas.")
    lease_name: NonEmptyStr = Field("recharge-autoscaler", description="Name of the Lease object.")
    lease_namespace: str | None = Field(
        None, description="Namespace of the Lease; defaults to the target's namespace.",
    )
    lease_duration: Annotated[Duration, Between("0s", "1h", open_low=True)] = Field(
        Duration(15), description="How long a lease is valid without renewal.",
        json_schema_extra={"unit": "s"},
    )
    renew_deadline: Annotated[Duration, Between("0s", "1h", open_low=True)] = Field(
        Duration(10), description="The leader gives up if it cannot renew within this.",
        json_schema_extra={"unit": "s"},
    )
    retry_period: Annotated[Duration, Between("0s", "1h", open_low=True)] = Field(
        Duration(2), description="Wait between attempts to acquire or renew.",
        json_schema_extra={"unit": "s"},
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        check(
            self.renew_deadline < self.lease_duration,
            "renewDeadline",
            f"must be < leaseDuration ({self.lease_duration:g}s), got {self.renew_deadline:g}s",
        )
        check(
            self.retry_period < self.renew_deadline,
            "retryPeriod",
            f"must be < renewDeadline ({self.renew_deadline:g}s), got {self.retry_period:g}s",
        )
        return self


class WarmupConfig(ConfigModel):
    """Cache warm-up calls issued before forecast ramps and for newly added replicas."""

    config_path = "controller.warmup"

    enabled: bool = Field(False, description="Plan and issue warm-up calls (`run` needs url).")
    url: str | None = Field(
        None, description="HTTP(S) endpoint of the recharge service's warm-up call (POST).",
    )
    lead: Annotated[Duration, Between("0s", "1d")] = Field(
        Duration(300), description="Issue the warm-up this long before a ramp starts.",
        json_schema_extra={"unit": "s"},
    )
    ramp_threshold: float = Field(
        0.3, gt=0, le=10,
        description="A ramp is a forecast rise above this fraction within rampWindow (0.3 = +30%).",
        json_schema_extra={"unit": "fraction"},
    )
    ramp_window: Annotated[Duration, Between("0s", "7d", open_low=True)] = Field(
        Duration(3600), description="Span over which the rise is measured.", json_schema_extra={"unit": "s"},
    )
    lookahead: Annotated[Duration, Between("0s", "7d", open_low=True)] = Field(
        Duration(7200), description="How far ahead of now ramps are looked for.",
        json_schema_extra={"unit": "s"},
    )
    new_replicas: bool = Field(True, description="Also warm up when replicas are added.")
    timeout: Annotated[Duration, Between("0s", "5m", open_low=True)] = Field(
        Duration(5), description="Timeout of one warm-up call.", json_schema_extra={"unit": "s"},
    )
    retries: int = Field(
        2, ge=0, le=10, description="Retries of a failed warm-up call.", json_schema_extra={"unit": "count"},
    )

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {url!r}")
        return url


class LevelCorrectionConfig(ConfigModel):
    """Online level correction ("nowcast"): scale the near-term forecast by the live load's sustained ratio.

    Every decision with a fresh load sample compares it with the forecast mean (``yhat``) of the current
    interval and keeps an exponentially weighted average of log(observed / forecast) in the controller
    state, with a time constant of ``window``; a cut (average below 1) is released six times faster, up to
    on-forecast (the safe direction). Once it has stayed beyond ``deadband`` on the same
    side for ``sustain``, the forecast of the decision window and of ramp anticipation is multiplied by it,
    bounded to [minFactor, maxFactor] (step ``ForecastLevelCorrected``). The observed-load floor and the
    no-scale-down-while-blind rule still apply on top, and the correction is off whenever the live load is
    missing or stale.
    """

    config_path = "controller.levelCorrection"

    enabled: bool = Field(True, description="Correct the forecast level from the live load.")
    window: Annotated[Duration, Between("0s", "7d", open_low=True)] = Field(
        Duration(1800), description="Time constant of the average (a cut is released six times faster).",
        json_schema_extra={"unit": "s"},
    )
    sustain: Annotated[Duration, Between("0s", "7d")] = Field(
        Duration(1800),
        description="How long the ratio must stay beyond deadband on one side before it is applied.",
        json_schema_extra={"unit": "s"},
    )
    deadband: float = Field(
        0.15, ge=0, lt=1, description="Ratios within 1 +- deadband count as on forecast (no correction).",
        json_schema_extra={"unit": "fraction"},
    )
    min_factor: float = Field(
        0.6, gt=0, le=1, description="Lowest factor the forecast is scaled by (0.6 = -40%).",
        json_schema_extra={"unit": "factor"},
    )
    max_factor: float = Field(
        1.5, ge=1, le=10, description="Highest factor the forecast is scaled by (1.5 = +50%).",
        json_schema_extra={"unit": "factor"},
    )


class LoadConfig(ConfigModel):
    """Where the live request rate comes from (the reactive safety net)."""

    config_path = "controller.load"

    kind: Literal["prometheus", "file"] = Field(
        "prometheus",
        description="'prometheus': instant query against the top-level source.prometheus connection; "
        "'file': the last value of a CSV/Parquet history (replays, tests).",
    )
    query: str | None = Field(
        None, description="PromQL returning the current request rate (prometheus).",
        json_schema_extra={"unit": "req/s"},
    )
    path: str | None = Field(None, description="History file (file kind).")
    time_column: str | None = Field(None, description="Time column of the file (auto-detected).")
    value_column: str | None = Field(None, description="Value column of the file (auto-detected).")

    @model_validator(mode="after")
    def _source_given(self) -> Self:
        if self.kind == "prometheus":
            check(bool(self.query), "query", "is required when kind is prometheus")
        else:
            check(bool(self.path), "path", "is required when kind is file")
        return self


class ControllerConfig(ConfigModel):
    """The ``controller`` section. Only ``capacityPerReplica`` is required for offline use."""

    config_path = SECTION

    capacity_per_replica: Annotated[float, Explain("must be a positive number of requests per second")] = (
        Field(
            gt=0, description="Request rate one replica serves within its SLO (1e-06 to 1e+12).",
            json_schema_extra={"unit": "req/s"},
        )
    )
    target: TargetConfig | None = Field(None, description="The Deployment to scale; required by `run`.")
    load: LoadConfig | None = Field(
        None, description="The live request rate source; required by `run` (the safety net).",
    )
    headroom: float = Field(
        0.1,
        ge=0,
        le=10,
        description="Margin above the forecast mean: the forecast need is the larger of the peak upper band "
        "and the mean x (1 + headroom), never both stacked; the reactive need is observed x (1 + headroom) "
        "(0.1 = +10%).",
        json_schema_extra={"unit": "fraction"},
    )
    availability_target: float | None = Field(
        None, ge=0.5, le=MAX_TARGET,
        description="Instead of the band and headroom: the share of intervals whose capacity must cover the "
        "demand (0.995 = 99.5%). Each interval is sized at the quantile of the forecast's backtest errors at "
        "its lead time that meets it; the live-load safety net keeps headroom's default margin. In a config "
        "file, setting headroom too is an error.",
        json_schema_extra={"unit": "fraction"},
    )
    min_replicas: int = Field(
        2, ge=0, description="Never fewer replicas than this.", json_schema_extra={"unit": "replicas"},
    )
    max_replicas: int = Field(
        50, ge=1, description="Never more replicas than this (see maxCapacity).",
        json_schema_extra={"unit": "replicas"},
    )
    scaling_windows: tuple[ScalingWindow, ...] = Field(
        (), strict=False,
        description="Declared scaling windows (cron start, end or duration, zone, minReplicas, optional "
        "maxReplicas): floors (and caps) on a schedule, reason ScheduledFloor / ScheduledCap.",
    )
    startup: Annotated[Duration, Between("0s", "1h")] = Field(
        Duration(60), description="Time from scale-up to a replica being ready.",
        json_schema_extra={"unit": "s"},
    )
    warmup_time: Annotated[Duration, Between("0s", "1h")] = Field(
        Duration(30), description="Time a ready replica needs to warm its caches.",
        json_schema_extra={"unit": "s"},
    )
    tolerance: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Ignore scale-downs smaller than this fraction of current replicas (scale-ups always "
        "proceed).",
        json_schema_extra={"unit": "fraction"},
    )
    behavior: BehaviorConfig = Field(
        default_factory=BehaviorConfig, description="Rate limits and stabilisation, as in HPA behavior.",
    )
    forecast_max_age: Annotated[Duration, Between("0s", "366d", open_low=True)] = Field(
        Duration(3 * 3600), description="An older forecast is ignored: reactive scaling, no scale-down.",
        json_schema_extra={"unit": "s"},
    )
    load_max_age: Annotated[Duration, Between("0s", "1d", open_low=True)] = Field(
        Duration(120), description="An older load sample counts as missing: forecast only, no scale-down.",
        json_schema_extra={"unit": "s"},
    )
    max_capacity: Literal["honour", "exceed"] = Field(
        "honour",
        description="When demand needs more than maxReplicas: 'honour' caps at maxReplicas, 'exceed' allows "
        "up to maxReplicas + burstBuffer; both warn.",
    )
    burst_buffer: int = Field(
        0, ge=0, description="Replicas allowed above maxReplicas in 'exceed' mode.",
        json_schema_extra={"unit": "replicas"},
    )
    interval: Annotated[Duration, Between("0s", "1h", open_low=True)] = Field(
        Duration(30), description="Period of the control loop.", json_schema_extra={"unit": "s"},
    )
    dry_run: bool = Field(False, description="Decide and report, but never change the target.")
    pause_annotation: NonEmptyStr = Field(
        "recharge-autoscaler.io/paused",
        description="When this annotation is 'true' on the target, the controller leaves it alone.",
    )
    decision_annotation: NonEmptyStr = Field(
        "recharge-autoscaler.io/decision",
        description="Annotation on the target where the last decision (replicas, reason) is recorded.",
    )
    leader_election: LeaderElectionConfig = Field(
        default_factory=LeaderElectionConfig, description="Leader election among controller replicas.",
    )
    warmup: WarmupConfig = Field(default_factory=WarmupConfig, description="Cache warm-up calls.")
    level_correction: LevelCorrectionConfig = Field(
        default_factory=LevelCorrectionConfig,
        description="Scale the near-term forecast by the sustained ratio of live load to forecast.",
    )
    health_port: Port = Field(
        8080, description="Port of /healthz and /readyz.", json_schema_extra={"unit": "port"},
    )
    metrics_port: Port = Field(
        9090, description="Port of /metrics (Prometheus).", json_schema_extra={"unit": "port"},
    )
    bind_address: BindAddress = Field(
        "0.0.0.0",
        description="IP address the /healthz, /readyz and /metrics servers listen on: 0.0.0.0 (every "
        "interface, so the kubelet can probe and Prometheus scrape the pod), '::' for IPv6, or 127.0.0.1 to "
        "serve only inside the pod (a proxy sidecar). Probe bodies are one status word either way; the "
        "reasons are shown only to loopback clients asking with ?verbose (kubectl port-forward).",
    )

    @field_validator("capacity_per_replica")
    @classmethod
    def _meaningful_capacity(cls, value: float) -> float:
        if not 1e-6 <= value <= 1e12:  # 1e-320 or 1e300 req/s: replica counts overflow (issue 10, item 11)
            raise ValueError(
                f"must be a positive number of requests per second, between 1e-06 and 1e+12 (beyond, replica "
                f"counts stop meaning anything), got {value:g}"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_sizing(cls, data: Any) -> Any:
        # Keys as written in the config file: a target and a headroom are two answers to one question.
        if isinstance(data, dict) and data.get("availabilityTarget") is not None and "headroom" in data:
            raise FieldError("availabilityTarget", "set either availabilityTarget or headroom, not both (the "
                             "target sizes the forecast need from its error quantiles, not a margin)")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check(
            self.max_replicas >= self.min_replicas,
            "maxReplicas",
            f"must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}",
        )
        names = [w.name for w in self.scaling_windows]
        for i, w in enumerate(self.scaling_windows):
            key = f"scalingWindows[{i}]"
            check(names.count(w.name) == 1, f"{key}.name", f"window {w.name!r} is declared more than once")
            check(w.min_replicas <= self.max_replicas, f"{key}.minReplicas",
                  f"window {w.name!r}: must be <= maxReplicas ({self.max_replicas}), got {w.min_replicas}")
            if w.max_replicas is not None:
                check(w.max_replicas >= self.min_replicas, f"{key}.maxReplicas",
                      f"window {w.name!r}: must be >= minReplicas ({self.min_replicas}), "
                      f"got {w.max_replicas}")
        check(
            self.health_port != self.metrics_port,
            "metricsPort",
            f"must differ from healthPort ({self.health_port})",
        )
        return self

    # Derived values the decision core and the loop use, as timedeltas.
    @cached_property
    def lead(self) -> pd.Timedelta:
        """Time from a scale-up decision to useful capacity: pod start-up + cache warm-up."""
        return pd.Timedelta(seconds=float(self.startup) + float(self.warmup_time))

    @cached_property
    def interval_td(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=float(self.interval))

    @cached_property
    def window_td(self) -> pd.Timedelta:
        """``lead + interval``: how far ahead of now a decision must cover."""
        return self.lead + self.interval_td

    # The same spans in integer nanoseconds (memoised): the decision core compares pd.Timestamp.value.
    @cached_property
    def lead_ns(self) -> int:
        return int(self.lead.value)

    @cached_property
    def interval_ns(self) -> int:
        return int(self.interval_td.value)

    @cached_property
    def load_max_age_ns(self) -> int:
        return int(pd.Timedelta(seconds=float(self.load_max_age)).value)

    @cached_property
    def forecast_max_age_ns(self) -> int:
        return int(pd.Timedelta(seconds=float(self.forecast_max_age)).value)

    @property
    def ceiling(self) -> int:
        """The highest replica count the controller may ever ask for."""
        return self.max_replicas + (self.burst_buffer if self.max_capacity == "exceed" else 0)

    def require_target(self) -> TargetConfig:
        """The target, or a ConfigError saying it must be set (the live loop needs it)."""
        check(self.target is not None, f"{SECTION}.target", "is required by `run` (set target.name)")
        assert self.target is not None
        return self.target

    def check_runnable(self) -> None:
        """ConfigError unless everything the live loop needs is set: target, load, and warm-up url if enabled.

        Offline callers (plan, simulate) do not need these, so they are not checked at construction.
        """
        self.require_target()
        self.require_load()
        if self.warmup.enabled:
            check(bool(self.warmup.url), f"{SECTION}.warmup.url", "is required when warm-up is enabled")

    def require_load(self) -> LoadConfig:
        """The live load source, or a ConfigError saying it must be set."""
        check(
            self.load is not None,
            f"{SECTION}.load",
            "is required to run the controller (kind: prometheus with a query, or kind: file with a path)",
        )
        assert self.load is not None
        return self.load


def parse_controller_config(data: object) -> ControllerConfig:
    """Build a ControllerConfig from the plain mapping of the ``controller`` section.

    The whole config file is read by :func:`controller.configfile.load_controller_config`.
    """
    return parse(ControllerConfig, data, SECTION)


class FleetConfig(ConfigModel):
    """The `fleet` section: one controller for every PredictiveScaler in the watched namespaces."""

    config_path = "fleet"

    namespaces: list[NonEmptyStr] = Field(
        default_factory=list,
        description="Namespaces whose PredictiveScalers this controller reconciles; empty means all.",
    )
    interval: Annotated[Duration, Between("0s", "1h", open_low=True)] = Field(
        Duration(30), description="Period of the fleet's reconcile round.", json_schema_extra={"unit": "s"},
    )
    leader_election: LeaderElectionConfig = Field(
        default_factory=lambda: LeaderElectionConfig(lease_name="recharge-autoscaler-fleet"),
        description="One Lease for the whole fleet controller.",
    )
    health_port: Port = Field(
        8080, description="Port of /healthz and /readyz.", json_schema_extra={"unit": "port"},
    )
    metrics_port: Port = Field(
        9090, description="Port of /metrics (Prometheus).", json_schema_extra={"unit": "port"},
    )
    bind_address: BindAddress = Field(
        "0.0.0.0",
        description="IP address the /healthz, /readyz and /metrics servers listen on (see "
        "controller.bindAddress).",
    )
