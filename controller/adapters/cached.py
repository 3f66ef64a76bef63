"""Adapters that read from informer caches and write through the API: the fleet's target and forecast store.

With hundreds of scalers, a GET of every Deployment, HPA and forecast ConfigMap on every tick would make the
API calls grow with the fleet. These adapters read the objects the informers (:mod:`controller.adapters.
informer`) keep current, and only writes reach the API server, so calls grow with what changes.

:class:`CachedScaleTarget` is the live :class:`~controller.adapters.kube.KubeScaleTarget` with its reads
served from the caches. A write carries the cached ``resourceVersion``; when the cache was behind, the API
server answers 409 and the write is retried on live reads, as the uncached target does. A target missing
from the cache is :class:`~forecaster.adapters.kube.KubeNotFound` (the scaler's condition says so).

:class:`CachedForecastStore` reads one scaler's forecast artifact from the ConfigMap cache and parses it
once per ``resourceVersion``.
"""

from __future__ import annotations

from typing import Any

from controller.adapters.informer import Informer, strip_bookkeeping
from controller.adapters.kube import KubeScaleTarget
from forecaster.adapters.kube import KubeConflict, KubeNotFound
from forecaster.artifact import ForecastArtifact
from forecaster.errors import StoreError


def scale_target_view(obj: dict[str, Any]) -> dict[str, Any]:
    """What :class:`CachedScaleTarget` reads of a Deployment (metadata, ``spec.replicas``, ``status``): the
    transform of the fleet's Deployment informer. The pod template, managedFields and the last-applied
    annotation are dropped (most of a production Deployment; the informer holds every Deployment of the
    watched namespaces, targets or not). Modifies ``obj`` in place."""
    strip_bookkeeping(obj)
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.pop("template", None)
    return obj


class CachedScaleTarget(KubeScaleTarget):
    """A :class:`KubeScaleTarget` whose reads come from the Deployment and HPA informers."""

    def __init__(
        self, api_client: Any, *, deployments: Informer, hpas: Informer | None, **kwargs: Any
    ) -> None:
        super().__init__(api_client, **kwargs)
        self.deployments, self.hpas = deployments, hpas
        self._live = False

    def _cached(self, informer: Informer | None, what: str, name: str) -> dict[str, Any]:
        obj = informer.get(self.namespace, name) if informer is not None else None
        if obj is None:
            raise KubeNotFound(f"{what} {self.namespace}/{name} not found")
        return obj

    def _read_deployment(self) -> dict[str, Any]:
        if self._live:
            return super()._read_deployment()
        return self._cached(self.deployments, "deployment", self.name)

    def _read_hpa(self) -> dict[str, Any]:
        if self._live:
            return super()._read_hpa()
        return self._cached(self.hpas, "horizontalpodautoscaler", self.hpa_name)

    def apply(self, replicas: int, annotation: str) -> None:
        try:
            self._apply_once(replicas, annotation)
            return
        except KubeConflict:
            pass  # the cache was behind the API server: re-read live, as the uncached target does
        self._live = True
        try:
            super().apply(replicas, annotation)
        finally:
            self._live = False


class CachedForecastStore:
    """Read side of :class:`forecaster.ports.ForecastStore` over the forecast ConfigMap informer."""

    def __init__(
        self, configmaps: Informer, *, namespace: str, name: str, key: str = "forecast.json"
    ) -> None:
        self.configmaps, self.namespace, self.name, self.key = configmaps, namespace, name, key
        self._memo: tuple[str, ForecastArtifact | StoreError | None] | None = None

    def describe(self) -> str:
        return f"configmap {self.namespace}/{self.name} key {self.key}"

    def read(self) -> ForecastArtifact | None:
        cm = self.configmaps.get(self.namespace, self.name)
        if cm is None:
            return None
        rv = str((cm.get("metadata") or {}).get("resourceVersion") or "")
        if self._memo is None or self._memo[0] != rv:
            text = (cm.get("data") or {}).get(self.key)
            parsed: ForecastArtifact | StoreError | None = None
            try:
                if text is not None:
                    parsed = ForecastArtifact.from_json(text, where=self.describe())
            except StoreError as exc:  # remembered too: an invalid artifact is parsed once, not every tick
                parsed = exc
            self._memo = (rv, parsed)
        result = self._memo[1]
        if isinstance(result, StoreError):
            raise result
        return result

    def write(self, artifact: ForecastArtifact) -> None:
        raise StoreError(f"{self.describe()}: the controller only reads forecasts")
