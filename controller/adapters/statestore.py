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
    """State as JSON under key ``state.json`` of a small ConfigMap (the shared compare-and-swap document)."""

    KEY = "state.json"

    def __init__(self, api_client: Any, *, namespace: str, name: str, timeout: float = 5.0) -> None:
        from kubernetes import client

        from forecaster.adapters.configmap_store import ConfigMapDocument

        self.doc = ConfigMapDocument(
            client.CoreV1Api(api_client), namespace, name, self.KEY, retries=1, conflict_retries=2,
            timeout=timeout, too_big_hint="use a dedicated ConfigMap for the controller state",
            conflict_hint="is another controller using the same state ConfigMap? The previous state was kept",
        )

    def describe(self) -> str:
        return f"configmap {self.doc.namespace}/{self.doc.name}"

    def load(self) -> ControllerState | None:
        text = self.doc.read()
        if not text:
            return None
        try:
            return ControllerState.from_dict(json.loads(text), where=self.describe())
        except ValueError as exc:
            raise StoreError(f"{self.describe()}: state is not valid JSON ({exc})") from None

    def save(self, state: ControllerState) -> None:
        self.doc.write(json.dumps(state.to_dict(), separators=(",", ":")))
