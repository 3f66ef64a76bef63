"""Where the live controller's memory survives restarts: the :class:`StateStore` Protocol and its stores.

:class:`controller.loop.ControlLoop` persists its :class:`controller.core.state.ControllerState`
(recommendation
history, scale events, issued warm-up keys) after every acting tick, so a restart neither repeats warm-ups
nor forgets its stabilisation window. The stores are adapters, kept apart from the tick logic: the
``run`` wiring (:mod:`controller.cli.run`) picks :class:`ConfigMapStateStore` for a live controller and
:class:`MemoryStateStore` for a dry run, and tests pass the memory store. Re-exported by
:mod:`controller.loop`.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from controller.core.state import ControllerState
from forecaster.errors import StoreError

__all__ = ["ConfigMapStateStore", "MemoryStateStore", "StateStore"]


class StateStore(Protocol):
    """Where the controller's memory survives restarts."""

    def describe(self) -> str: ...

    def load(self) -> ControllerState | None: ...

    def save(self, state: ControllerState) -> None: ...


class MemoryStateStore:
    """Keeps state in memory only (dry-run, tests)."""

    def __init__(self, state: ControllerState | None = None) -> None:
        self.state = state

    def describe(self) -> str:
        return "memory"

    def load(self) -> ControllerState | None:
        return self.state

    def save(self, state: ControllerState) -> None:
        self.state = state


class ConfigMapStateStore:
    """State as JSON under key ``state.json`` of a small ConfigMap (compare-and-swap on resourceVersion)."""

    KEY = "state.json"

    def __init__(self, api_client: Any, *, namespace: str, name: str, timeout: float = 5.0) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.namespace, self.name, self.timeout = namespace, name, timeout

    def describe(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    def _call(self, fn: Any, verb: str) -> Any:
        from forecaster.adapters.kube import call_api

        return call_api(
            fn, verb=verb, resource="configmaps", namespace=self.namespace, name=self.name, retries=1
        )

    def _read(self) -> Any:
        return self._call(
            lambda: self.core.read_namespaced_config_map(
                self.name, self.namespace, _request_timeout=self.timeout
            ),
            "get",
        )

    def load(self) -> ControllerState | None:
        from forecaster.adapters.kube import KubeNotFound

        try:
            cm = self._read()
        except KubeNotFound:
            return None
        text = (cm.data or {}).get(self.KEY)
        if not text:
            return None
        try:
            return ControllerState.from_dict(json.loads(text), where=self.describe())
        except ValueError as exc:
            raise StoreError(f"{self.describe()}: state is not valid JSON ({exc})") from None

    def save(self, state: ControllerState) -> None:
        from forecaster.adapters.kube import KubeConflict

        text = json.dumps(state.to_dict(), separators=(",", ":"))
        for _ in range(3):
            try:
                self._save_once(text)
                return
            except KubeConflict:
                continue
        raise StoreError(f"{self.describe()}: state not saved: conflicting writers")

    def _save_once(self, text: str) -> None:
        from forecaster.adapters.kube import KubeNotFound

        try:
            cm = self._read()
        except KubeNotFound:
            body: Any = {
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "recharge-autoscaler"},
                },
                "data": {self.KEY: text},
            }
            self._call(
                lambda: self.core.create_namespaced_config_map(
                    self.namespace, body, _request_timeout=self.timeout
                ),
                "create",
            )
            return
        cm.data = {**(cm.data or {}), self.KEY: text}
        self._call(
            lambda: self.core.replace_namespaced_config_map(
                self.name, self.namespace, cm, _request_timeout=self.timeout
            ),
            "update",
        )
