"""The fleet's forecast job: every PredictiveScaler's history query forecast in one run, one artifact each.

Why this module exists: the forecasting side (:mod:`forecaster.job.fleet`) forecasts a list of targets and
knows nothing of the CRD; this is where the PredictiveScalers become that list. :func:`discover` lists the
scalers of the watched namespaces once (no watch: the job is one-shot), and for each one:

- no ``spec.history``: skipped (it has nothing to forecast; the controller may still run it on a forecast
  someone else writes);
- a spec that does not validate (an unknown field, a bad calendar): failed, with the one-line error the
  scaler's status shows too (cross-field scaling rules such as min <= max are the controller's business:
  the forecast does not depend on them);
- otherwise a target: its ``spec.history.query``, its ``spec.calendar``, and its own forecast ConfigMap
  (``spec.forecastConfigMap``, default ``<scaler>-forecast``, key ``forecast.json``) labelled
  ``app.kubernetes.io/managed-by=recharge-autoscaler``, which is what the controller's ConfigMap informer
  selects, so the controller sees each new artifact within a tick.

:func:`forecast_fleet` runs the discovery and then :func:`forecaster.job.fleet.run_fleet_once` on the engine
the caller chose. The CLI (:mod:`controller.cli.fleet_job`) adds flags, the schedule and the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from controller.adapters.informer import Kind, list_objects
from controller.fleet.spec import GROUP, PLURAL, VERSION, forecast_config_map, parse_spec
from forecaster.adapters.configmap_store import MANAGED_BY
from forecaster.adapters.prometheus_config import PrometheusConfig
from forecaster.engine import Engine
from forecaster.errors import ConfigError
from forecaster.job.config import ConfigMapStoreConfig, ForecastConfig, StoreConfig
from forecaster.job.fleet import FleetRun, FleetTarget, prometheus_sources, run_fleet_once

SCALERS = Kind(GROUP, VERSION, PLURAL)
FORECAST_KEY = "forecast.json"  # the key the controller reads (controller.adapters.cached)
NO_HISTORY = "no spec.history.query: nothing to forecast"


@dataclass(frozen=True)
class Discovery:
    """The scalers of one run: targets to forecast, skipped ones and broken ones, as (id, reason)."""

    targets: list[FleetTarget] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)

    @property
    def scalers(self) -> int:
        return len(self.targets) + len(self.skipped) + len(self.invalid)


def discover(api_client: Any, namespaces: Sequence[str] | None) -> Discovery:
    """The PredictiveScalers of ``namespaces`` (None: all) as fleet targets, sorted by namespace and name."""
    from forecaster.adapters.store import open_store

    objs = list_objects(
        api_client, SCALERS, namespaces=namespaces,
        hint="is the PredictiveScaler CRD installed? (`recharge-autoscaler fleet --print-crd`)",
    )
    out = Discovery()
    for obj in sorted(objs, key=_key):
        ns, name = _key(obj)
        sid = f"{ns}/{name}"
        try:
            spec = parse_spec(obj.get("spec"))
        except ConfigError as exc:
            out.invalid.append((sid, f"invalid scaler: {exc}"))
            continue
        if spec.history is None:
            out.skipped.append((sid, NO_HISTORY))
            continue
        cm = ConfigMapStoreConfig(name=forecast_config_map(spec, name), namespace=ns, key=FORECAST_KEY)
        store = open_store(
            StoreConfig(kind="configmap", configmap=cm), api_client=api_client, labels=MANAGED_BY
        )
        out.targets.append(FleetTarget(sid, spec.history.query, store, spec.calendar))
    return out


def forecast_fleet(
    api_client: Any,
    *,
    forecast: ForecastConfig,
    prometheus: PrometheusConfig,
    namespaces: Sequence[str] | None,
    engine_for: Callable[[int], Engine],
    now: pd.Timestamp,
    progress: Callable[[int, int], None] | None = None,
) -> FleetRun:
    """One run: discover the scalers, read, forecast on ``engine_for(number of targets)``, store each."""
    found = discover(api_client, namespaces)
    engine = engine_for(len(found.targets))
    try:
        return run_fleet_once(
            forecast, pd.Timedelta(seconds=prometheus.step), found.targets,
            source_for=prometheus_sources(prometheus), engine=engine, now=now,
            skipped=found.skipped, failed=found.invalid, progress=progress,
        )
    finally:
        engine.close()


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
