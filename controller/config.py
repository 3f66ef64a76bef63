"""The controller's configuration: the ``controller`` section of the same YAML file the forecast job reads.

One frozen dataclass tree describes every knob the decision core and the live loop use: the scale target,
the capacity model (``capacityPerReplica``, ``headroom``), limits, HPA-style ``behavior`` policies, the
safety rules (forecast/load staleness, max-capacity policy), cache warm-up and the loop's own plumbing
(leader election, ports, annotations). Field docs carry units; the Helm values schema and
``docs/configuration.md`` mirror these fields. Validation errors name the dotted field
(``controller.maxReplicas: must be >= minReplicas (3)``).

Connections are not repeated here: the live load query uses the top-level ``source.prometheus`` connection
and the forecast is read from the top-level ``store`` section of the same file (see
:mod:`forecaster.job.config`).

The decision core (:func:`controller.core.decision.decide`) reads only the capacity, limit, behavior, safety
and
warm-up fields, so offline callers (``plan``, the simulator) build a :class:`ControllerConfig` from keyword
arguments and leave ``target``/``load`` unset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import pandas as pd

from forecaster.configbase import Duration, build, check, doc, load_yaml

SECTION = "controller"
PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]


@dataclass(frozen=True)
class TargetConfig:
    """The workload the controller scales."""

    name: str = field(metadata=doc("Name of the Deployment that serves recharge traffic."))
    namespace: str = field(default="default", metadata=doc("Namespace of the Deployment (and its HPA)."))
    kind: Literal["Deployment"] = field(default="Deployment", metadata=doc("Kind of the scale target."))
    mode: Literal["hpa", "scale"] = field(
        default="hpa",
        metadata=doc(
            "How replicas are applied: 'hpa' raises/lowers the HPA's minReplicas (the HPA keeps reacting to "
            "CPU); 'scale' sets the Deployment's scale subresource directly (no HPA on the target)."
        ),
    )
    hpa_name: str | None = field(
        default=None, metadata=doc("Name of the HPA in 'hpa' mode; defaults to the Deployment name.")
    )

    def __post_init__(self) -> None:
        check(bool(self.name.strip()), "controller.target.name", "must not be empty")
        check(bool(self.namespace.strip()), "controller.target.namespace", "must not be empty")
        if self.hpa_name is not None:
            check(bool(self.hpa_name.strip()), "controller.target.hpaName", "must not be empty when set")

    @property
    def hpa(self) -> str:
        """The HPA name actually used in 'hpa' mode."""
        return self.hpa_name or self.name

    def describe(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ScalingPolicy:
    """One rate limit, exactly like an HPA ``behavior`` policy."""

    type: PolicyType = field(
        metadata=doc("'Pods' (absolute count) or 'Percent' (of the replicas at period start).")
    )
    value: int = field(metadata=doc("Pods or percent allowed to change per period.", unit="pods or %"))
    period_seconds: int = field(
        default=60, metadata=doc("Length of the window the change is counted over.", unit="s")
    )

    def __post_init__(self) -> None:
        check(self.value > 0, "controller.behavior.policies.value", f"must be > 0, got {self.value}")
        check(
            0 < self.period_seconds <= 1800,
            "controller.behavior.policies.periodSeconds",
            f"must be in 1..1800, got {self.period_seconds}",
        )


@dataclass(frozen=True)
class ScalingRules:
    """Rate limits and stabilisation for one direction (scale-up or scale-down), as in HPA ``behavior``."""

    policies: tuple[ScalingPolicy, ...] = field(
        metadata=doc("Rate limits; which one applies is chosen by selectPolicy.")
    )
    select_policy: SelectPolicy = field(
        default="Max",
        metadata=doc("'Max' allows the largest change of the policies, 'Min' the smallest, 'Disabled' none."),
    )
    stabilization_window_seconds: int = field(
        default=0,
        metadata=doc(
            "Scale-down: use the highest recommendation of this window; scale-up: the lowest (anti-flap).",
            unit="s",
        ),
    )

    def __post_init__(self) -> None:
        check(
            0 <= self.stabilization_window_seconds <= 3600,
            "controller.behavior.stabilizationWindowSeconds",
            f"must be in 0..3600, got {self.stabilization_window_seconds}",
        )
        check(
            bool(self.policies) or self.select_policy == "Disabled",
            "controller.behavior.policies",
            "needs at least one policy unless selectPolicy is Disabled",
        )


def _default_scale_up() -> ScalingRules:
    return ScalingRules(
        policies=(ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)),
        select_policy="Max",
        stabilization_window_seconds=0,
    )


def _default_scale_down() -> ScalingRules:
    return ScalingRules(
        policies=(ScalingPolicy("Percent", 100, 15),), select_policy="Max", stabilization_window_seconds=300
    )


@dataclass(frozen=True)
class BehaviorConfig:
    """Scale-up and scale-down rules. Defaults are the Kubernetes HPA defaults."""

    scale_up: ScalingRules = field(
        default_factory=_default_scale_up,
        metadata=doc("Default: +100% or +4 pods per 15 s, whichever is more; no stabilisation."),
    )
    scale_down: ScalingRules = field(
        default_factory=_default_scale_down,
        metadata=doc("Default: -100% per 15 s after a 300 s stabilisation window."),
    )


@dataclass(frozen=True)
class LeaderElectionConfig:
    """A coordination.k8s.io Lease so that only one controller replica acts."""

    enabled: bool = field(default=True, metadata=doc("Elect a leader among controller replicas."))
    lease_name: str = field(default="recharge-autoscaler", metadata=doc("Name of the Lease object."))
    lease_namespace: str | None = field(
        default=None, metadata=doc("Namespace of the Lease; defaults to the target's namespace.")
    )
    lease_duration: Duration = field(
        default=Duration(15), metadata=doc("How long a lease is valid without renewal.", unit="s")
    )
    renew_deadline: Duration = field(
        default=Duration(10), metadata=doc("The leader gives up if it cannot renew within this.", unit="s")
    )
    retry_period: Duration = field(
        default=Duration(2), metadata=doc("Wait between attempts to acquire or renew.", unit="s")
    )

    def __post_init__(self) -> None:
        p = "controller.leaderElection"
        check(bool(self.lease_name.strip()), f"{p}.leaseName", "must not be empty")
        check(self.retry_period > 0, f"{p}.retryPeriod", "must be positive")
        check(
            self.renew_deadline < self.lease_duration,
            f"{p}.renewDeadline",
            f"must be < leaseDuration ({self.lease_duration:g}s), got {self.renew_deadline:g}s",
        )
        check(
            self.retry_period < self.renew_deadline,
            f"{p}.retryPeriod",
            f"must be < renewDeadline ({self.renew_deadline:g}s), got {self.retry_period:g}s",
        )


@dataclass(frozen=True)
class WarmupConfig:
    """Cache warm-up calls issued before forecast ramps and for newly added replicas."""

    enabled: bool = field(default=False, metadata=doc("Plan and issue warm-up calls (`run` needs url)."))
    url: str | None = field(
        default=None, metadata=doc("HTTP(S) endpoint of the recharge service's warm-up call (POST).")
    )
    lead: Duration = field(
        default=Duration(300), metadata=doc("Issue the warm-up this long before a ramp starts.", unit="s")
    )
    ramp_threshold: float = field(
        default=0.3,
        metadata=doc("A ramp is a forecast rise above this fraction within rampWindow (0.3 = +30%).",
                     unit="fraction"),
    )
    ramp_window: Duration = field(
        default=Duration(3600), metadata=doc("Span over which the rise is measured.", unit="s")
    )
    lookahead: Duration = field(
        default=Duration(7200), metadata=doc("How far ahead of now ramps are looked for.", unit="s")
    )
    new_replicas: bool = field(default=True, metadata=doc("Also warm up when replicas are added."))
    timeout: Duration = field(default=Duration(5), metadata=doc("Timeout of one warm-up call.", unit="s"))
    retries: int = field(default=2, metadata=doc("Retries of a failed warm-up call.", unit="count"))

    def __post_init__(self) -> None:
        p = "controller.warmup"
        if self.url is not None:
            check(
                self.url.startswith(("http://", "https://")),
                f"{p}.url",
                f"must start with http:// or https://, got {self.url!r}",
            )
        check(self.lead >= 0, f"{p}.lead", "must not be negative")
        check(
            0 < self.ramp_threshold <= 10, f"{p}.rampThreshold",
            f"must be in (0, 10], got {self.ramp_threshold}"
        )
        check(self.ramp_window > 0, f"{p}.rampWindow", "must be positive")
        check(self.lookahead > 0, f"{p}.lookahead", "must be positive")
        check(self.timeout > 0, f"{p}.timeout", "must be positive")
        check(0 <= self.retries <= 10, f"{p}.retries", f"must be in 0..10, got {self.retries}")


@dataclass(frozen=True)
class LevelCorrectionConfig:
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

    enabled: bool = field(default=True, metadata=doc("Correct the forecast level from the live load."))
    window: Duration = field(
        default=Duration(1800),
        metadata=doc("Time constant of the average (a cut is released six times faster).", unit="s"),
    )
    sustain: Duration = field(
        default=Duration(1800),
        metadata=doc("How long the ratio must stay beyond deadband on one side before it is applied.",
                     unit="s"),
    )
    deadband: float = field(
        default=0.15,
        metadata=doc("Ratios within 1 +- deadband count as on forecast (no correction).", unit="fraction"),
    )
    min_factor: float = field(
        default=0.6, metadata=doc("Lowest factor the forecast is scaled by (0.6 = -40%).", unit="factor")
    )
    max_factor: float = field(
        default=1.5, metadata=doc("Highest factor the forecast is scaled by (1.5 = +50%).", unit="factor")
    )

    def __post_init__(self) -> None:
        p = "controller.levelCorrection"
        check(self.window > 0, f"{p}.window", "must be positive")
        check(self.sustain >= 0, f"{p}.sustain", "must not be negative")
        check(0 <= self.deadband < 1, f"{p}.deadband", f"must be in [0, 1), got {self.deadband}")
        check(
            0 < self.min_factor <= 1, f"{p}.minFactor", f"must be in (0, 1], got {self.min_factor}"
        )
        check(
            1 <= self.max_factor <= 10, f"{p}.maxFactor", f"must be in [1, 10], got {self.max_factor}"
        )


@dataclass(frozen=True)
class LoadConfig:
    """Where the live request rate comes from (the reactive safety net)."""

    kind: Literal["prometheus", "file"] = field(
        default="prometheus",
        metadata=doc(
            "'prometheus': instant query against the top-level source.prometheus connection; "
            "'file': the last value of a CSV/Parquet history (replays, tests)."
        ),
    )
    query: str | None = field(
        default=None, metadata=doc("PromQL returning the current request rate (prometheus).", unit="req/s")
    )
    path: str | None = field(default=None, metadata=doc("History file (file kind)."))
    time_column: str | None = field(default=None, metadata=doc("Time column of the file (auto-detected)."))
    value_column: str | None = field(default=None, metadata=doc("Value column of the file (auto-detected)."))

    def __post_init__(self) -> None:
        if self.kind == "prometheus":
            check(bool(self.query), "controller.load.query", "is required when kind is prometheus")
        else:
            check(bool(self.path), "controller.load.path", "is required when kind is file")


@dataclass(frozen=True)
class ControllerConfig:
    """The ``controller`` section. Only ``capacityPerReplica`` is required for offline use."""

    capacity_per_replica: float = field(
        metadata=doc("Request rate one replica serves within its SLO.", unit="req/s")
    )
    target: TargetConfig | None = field(
        default=None, metadata=doc("The Deployment to scale; required by `run`.")
    )
    load: LoadConfig | None = field(
        default=None, metadata=doc("The live request rate source; required by `run` (the safety net).")
    )
    headroom: float = field(
        default=0.1,
        metadata=doc(
            "Margin above the forecast mean: the forecast need is the larger of the peak upper band and "
            "the mean x (1 + headroom), never both stacked; the reactive need is observed x (1 + headroom) "
            "(0.1 = +10%).",
            unit="fraction",
        ),
    )
    min_replicas: int = field(default=2, metadata=doc("Never fewer replicas than this.", unit="replicas"))
    max_replicas: int = field(
        default=50, metadata=doc("Never more replicas than this (see maxCapacity).", unit="replicas")
    )
    startup: Duration = field(
        default=Duration(60), metadata=doc("Time from scale-up to a replica being ready.", unit="s")
    )
    warmup_time: Duration = field(
        default=Duration(30), metadata=doc("Time a ready replica needs to warm its caches.", unit="s")
    )
    tolerance: float = field(
        default=0.1,
        metadata=doc(
            "Ignore scale-downs smaller than this fraction of current replicas (scale-ups always proceed).",
            unit="fraction",
        ),
    )
    behavior: BehaviorConfig = field(
        default_factory=BehaviorConfig, metadata=doc("Rate limits and stabilisation, as in HPA behavior.")
    )
    forecast_max_age: Duration = field(
        default=Duration(3 * 3600),
        metadata=doc("An older forecast is ignored: reactive scaling, no scale-down.", unit="s"),
    )
    load_max_age: Duration = field(
        default=Duration(120),
        metadata=doc("An older load sample counts as missing: forecast only, no scale-down.", unit="s"),
    )
    max_capacity: Literal["honour", "exceed"] = field(
        default="honour",
        metadata=doc("When demand needs more than maxReplicas: 'honour' caps at maxReplicas, 'exceed' allows "
                     "up to maxReplicas + burstBuffer; both warn."),
    )
    burst_buffer: int = field(
        default=0, metadata=doc("Replicas allowed above maxReplicas in 'exceed' mode.", unit="replicas")
    )
    interval: Duration = field(default=Duration(30), metadata=doc("Period of the control loop.", unit="s"))
    dry_run: bool = field(default=False, metadata=doc("Decide and report, but never change the target."))
    pause_annotation: str = field(
        default="recharge-autoscaler.io/paused",
        metadata=doc("When this annotation is 'true' on the target, the controller leaves it alone."),
    )
    decision_annotation: str = field(
        default="recharge-autoscaler.io/decision",
        metadata=doc("Annotation on the target where the last decision (replicas, reason) is recorded."),
    )
    leader_election: LeaderElectionConfig = field(
        default_factory=LeaderElectionConfig, metadata=doc("Leader election among controller replicas.")
    )
    warmup: WarmupConfig = field(default_factory=WarmupConfig, metadata=doc("Cache warm-up calls."))
    level_correction: LevelCorrectionConfig = field(
        default_factory=LevelCorrectionConfig,
        metadata=doc("Scale the near-term forecast by the sustained ratio of live load to forecast."),
    )
    health_port: int = field(default=8080, metadata=doc("Port of /healthz and /readyz.", unit="port"))
    metrics_port: int = field(default=9090, metadata=doc("Port of /metrics (Prometheus).", unit="port"))

    def __post_init__(self) -> None:
        p = SECTION
        check(
            math.isfinite(self.capacity_per_replica) and self.capacity_per_replica > 0,
            f"{p}.capacityPerReplica",
            f"must be a positive number of requests per second, got {self.capacity_per_replica}",
        )
        check(0 <= self.headroom <= 10, f"{p}.headroom", f"must be in 0..10 (fraction), got {self.headroom}")
        check(self.min_replicas >= 0, f"{p}.minReplicas", f"must be >= 0, got {self.min_replicas}")
        check(self.max_replicas >= 1, f"{p}.maxReplicas", f"must be >= 1, got {self.max_replicas}")
        check(
            self.max_replicas >= self.min_replicas,
            f"{p}.maxReplicas",
            f"must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}",
        )
        check(self.startup >= 0, f"{p}.startup", "must not be negative")
        check(self.warmup_time >= 0, f"{p}.warmupTime", "must not be negative")
        check(0 <= self.tolerance < 1, f"{p}.tolerance", f"must be in [0, 1), got {self.tolerance}")
        check(self.forecast_max_age > 0, f"{p}.forecastMaxAge", "must be positive")
        check(self.load_max_age > 0, f"{p}.loadMaxAge", "must be positive")
        check(self.burst_buffer >= 0, f"{p}.burstBuffer", f"must be >= 0, got {self.burst_buffer}")
        check(self.interval > 0, f"{p}.interval", "must be positive")
        check(bool(self.pause_annotation.strip()), f"{p}.pauseAnnotation", "must not be empty")
        check(bool(self.decision_annotation.strip()), f"{p}.decisionAnnotation", "must not be empty")
        for key, port in (("healthPort", self.health_port), ("metricsPort", self.metrics_port)):
            check(1 <= port <= 65535, f"{p}.{key}", f"must be a TCP port in 1..65535, got {port}")
        check(
            self.health_port != self.metrics_port,
            f"{p}.metricsPort",
            f"must differ from healthPort ({self.health_port})",
        )

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
    """Build a ControllerConfig from the plain mapping of the ``controller`` section."""
    return build(ControllerConfig, data, SECTION)


def load_controller_config(path: str | Path) -> ControllerConfig:
    """Read the ``controller`` section of the YAML config file at ``path``.

    Raises ConfigError (a UserError) naming the file when the section is missing and naming the dotted field
    for any invalid value.
    """
    data = load_yaml(path)
    check(SECTION in data, str(path), f"has no '{SECTION}' section (needed by the controller)")
    return parse_controller_config(data[SECTION])
