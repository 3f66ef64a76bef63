"""Narrow I/O interfaces of the controller; the CLI wires in implementations, tests use fakes.

- ``LoadSource``: the live request rate (Prometheus instant query, or a file for replays).
- ``ScaleTarget``: the Kubernetes object we act on (HPA minReplicas or Deployment scale subresource).
- ``WarmupClient``: the recharge service's cache warm-up endpoint.
- ``EventSink``: Kubernetes Events (or a log in dry-run/offline use).
- ``LeaderLock``: a coordination.k8s.io Lease so only one controller replica acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd


@dataclass(frozen=True)
class ObservedLoad:
    """The live request rate and when it was sampled."""

    rate: float  # requests per second
    sampled_at: pd.Timestamp


@dataclass(frozen=True)
class TargetStatus:
    """What the cluster says about the target right now."""

    replicas: int  # desired replicas currently set (Deployment spec.replicas, or HPA current)
    ready_replicas: int
    floor: int | None  # HPA minReplicas in HPA mode; None in direct-scale mode
    paused: bool  # the pause annotation is set on the target
    resource_version: str | None = None


class LoadSource(Protocol):
    def describe(self) -> str: ...

    def current(self, now: pd.Timestamp) -> ObservedLoad: ...


class ScaleTarget(Protocol):
    def describe(self) -> str: ...

    def status(self) -> TargetStatus: ...

    def apply(self, replicas: int, annotation: str) -> None:
        """Set the replica count (or HPA floor) and record the decision annotation; retries 409s."""
        ...


class WarmupClient(Protocol):
    def warm(self, key: str, replicas: int, reason: str) -> bool:
        """POST a warm-up with idempotency ``key``; True on success. Never raises for HTTP failures."""
        ...


class EventSink(Protocol):
    def emit(self, reason: str, message: str, *, warning: bool = False) -> None: ...


class LeaderLock(Protocol):
    def acquire_or_renew(self, now: pd.Timestamp) -> bool: ...

    def release(self) -> None: ...
