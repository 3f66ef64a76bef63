"""Documents kept in Kubernetes ConfigMaps, written with compare-and-swap: the one ConfigMap store.

Two things live in ConfigMaps: the forecast job's last good forecast (read by the controller) and the
controller's own memory (recommendation history, issued warm-ups). Both need the same care, so both use
:class:`ConfigMapDocument`: one key of one ConfigMap, read and written through the shared API-call policy
(:func:`forecaster.adapters.kube.call_api`). Writes are compare-and-swap: the ConfigMap is replaced with the
``resourceVersion`` that was read, a 409 Conflict (someone else wrote in between) re-reads and retries a
bounded number of times, and a missing ConfigMap is created. A document that would push the ConfigMap past
the API server's 1 MiB limit is refused, other keys of the ConfigMap are kept, and nothing is ever deleted:
any failure leaves the previous document in place and raises :class:`~forecaster.errors.StoreError`.
A document whose reader finds it by labels (the fleet controller's informer selects
``app.kubernetes.io/managed-by=recharge-autoscaler``) passes ``labels``: they are added to a ConfigMap that
lacks them, and a ConfigMap that gives such a label another value (another tool manages it) is refused.

:class:`ConfigMapStore` is the forecast store on top of it (``forecaster.ports.ForecastStore``): it
validates the artifact before anything is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from forecaster.artifact import ForecastArtifact
from forecaster.errors import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BYTES = 1024 * 1024  # kube-apiserver rejects ConfigMaps whose data exceeds 1 MiB
MANAGED_BY = {"app.kubernetes.io/managed-by": "recharge-autoscaler"}


class _Conflict(Exception):
    pass


class _NotFound(Exception):
    pass


class ConfigMapDocument:
    """Key ``key`` of ConfigMap ``namespace/name``: text read and written with compare-and-swap."""

    def __init__(
        self,
        core_v1_api: Any,
        namespace: str,
        name: str,
        key: str,
        *,
        retries: int = 3,
        conflict_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        too_big_hint: str = "use a dedicated ConfigMap",
        conflict_hint: str = "is another writer using the same ConfigMap? The previous document was kept",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.api, self.namespace, self.name, self.key = core_v1_api, namespace, name, key
        self.labels = dict(labels or {})  # its reader selects on them: added when missing, never overwritten
        self.retries, self.conflict_retries, self.backoff = retries, conflict_retries, backoff
        self.timeout, self.sleep = timeout, sleep
        self.too_big_hint, self.conflict_hint = too_big_hint, conflict_hint

    def describe(self) -> str:
        return f"configmap {self.namespace}/{self.name} key {self.key}"

    def _call(self, fn: Callable[[], T], verb: str) -> T:
        """One API call under the shared policy; every failure but 404/409 becomes a StoreError."""
        from forecaster.adapters.kube import KubeConflict, KubeError, KubeNotFound, call_api

        try:
            return call_api(
                fn,
                verb=verb,
                resource="configmaps",
                namespace=self.namespace,
                name=self.name,
                retries=self.retries,
                backoff=self.backoff,
                sleep=self.sleep,
                hint="",
            )
        except KubeNotFound as exc:
            raise _NotFound(str(exc)) from None
        except KubeConflict as exc:
            raise _Conflict(str(exc)) from None
        except KubeError as exc:
            raise StoreError(f"{self.describe()}: {exc}") from None

    def _read_cm(self) -> Any:
        return self._call(
            lambda: self.api.read_namespaced_config_map(
                self.name, self.namespace, _request_timeout=self.timeout
            ),
            "get",
        )

    def read(self) -> str | None:
        """The stored text; None when the ConfigMap or the key does not exist; StoreError when unreadable."""
        try:
            cm = self._read_cm()
        except _NotFound:
            return None
        except _Conflict as exc:  # not expected on a read
            raise StoreError(f"{self.describe()}: unexpected conflict on read ({exc})") from None
        text = (cm.data or {}).get(self.key)
        return None if text is None else str(text)

    def write(self, text: str) -> None:
        """Store ``text`` under the key (compare-and-swap, bounded retries); the previous text survives."""
        for attempt in range(self.conflict_retries + 1):
            try:
                self._write_once(text)
                return
            except _Conflict as exc:
                log.info("%s: conflict (%s); re-reading (attempt %d)", self.describe(), exc, attempt + 1)
        raise StoreError(
            f"{self.describe()}: still conflicting after {self.conflict_retries + 1} attempts; "
            f"{self.conflict_hint}"
        )

    def _write_once(self, text: str) -> None:
        try:
            cm = self._read_cm()
        except _NotFound:
            body: Any = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": self.name, "namespace": self.namespace, "labels": {**MANAGED_BY, **self.labels},
                },
                "data": {self.key: text},
            }
            try:
                self._call(
                    lambda: self.api.create_namespaced_config_map(
                        self.namespace, body, _request_timeout=self.timeout
                    ),
                    "create",
                )
            except _NotFound as exc:
                raise StoreError(f"{self.describe()}: namespace {self.namespace} not found ({exc})") from None
            return
        self._check_labels(cm)
        data = dict(cm.data or {})
        data[self.key] = text
        total = sum(len(k) + len(v.encode("utf-8")) for k, v in data.items())
        if total > MAX_BYTES:
            others = sorted(k for k in data if k != self.key)
            raise StoreError(
                f"{self.describe()}: the ConfigMap would hold {total} bytes (limit {MAX_BYTES}) with its "
                f"other keys {others}; {self.too_big_hint}"
            )
        cm.data = data
        try:
            self._call(
                lambda: self.api.replace_namespaced_config_map(
                    self.name, self.namespace, cm, _request_timeout=self.timeout
                ),
                "update",
            )
        except _NotFound:
            raise _Conflict("deleted while writing") from None


    def _check_labels(self, cm: Any) -> None:
        """Add the labels its reader selects on; refuse a ConfigMap that says another tool manages it."""
        if not self.labels:
            return
        have = dict(cm.metadata.labels or {})
        for k, v in self.labels.items():
            if k in have and have[k] != v:
                raise StoreError(
                    f"{self.describe()}: labelled {k}={have[k]}, but its reader needs {k}={v}; "
                    "use a ConfigMap of its own. The previous document was kept"
                )
        if any(k not in have for k in self.labels):
            cm.metadata.labels = {**have, **self.labels}


class ConfigMapStore:
    """Implements ``forecaster.ports.ForecastStore`` as key ``key`` of ConfigMap ``namespace/name``."""

    def __init__(
        self,
        core_v1_api: Any,
        namespace: str,
        name: str,
        key: str = "forecast.json",
        *,
        retries: int = 3,
        conflict_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.doc = ConfigMapDocument(
            core_v1_api, namespace, name, key, retries=retries, conflict_retries=conflict_retries,
            backoff=backoff, timeout=timeout, sleep=sleep, labels=labels,
            too_big_hint="use a dedicated ConfigMap for the forecast",
            conflict_hint="is another forecast job writing the same ConfigMap? "
            "The previous forecast was kept",
        )

    def describe(self) -> str:
        return self.doc.describe()

    def read(self) -> ForecastArtifact | None:
        """The stored forecast; None when the ConfigMap or key does not exist; StoreError when unusable."""
        text = self.doc.read()
        return None if text is None else ForecastArtifact.from_json(text, where=self.describe())

    def write(self, artifact: ForecastArtifact) -> None:
        """Validate, size-check and store ``artifact``; the previous forecast survives any failure."""
        try:
            text = artifact.to_json()
        except StoreError as exc:
            raise StoreError(f"{self.describe()}: refusing to write an invalid forecast ({exc})") from None
        size = len(text.encode("utf-8"))
        if size + len(self.doc.key) > MAX_BYTES:
            raise StoreError(
                f"{self.describe()}: forecast is {size} bytes but a ConfigMap holds at most {MAX_BYTES} "
                "bytes; shorten forecast.horizon, use a coarser forecast.interval, or use a file store"
            )
        self.doc.write(text)
