"""Leader election over a coordination.k8s.io/v1 Lease, so only one controller replica changes the target.

The algorithm is client-go's ``leaderelection`` reduced to what the loop needs, with the clock passed in:

- no Lease: create it holding it (``leaseTransitions`` 0);
- held by us: renew ``renewTime`` (update with the read ``resourceVersion``);
- held by someone else: take it over only after the record has not changed for ``leaseDurationSeconds`` *as
  observed by this process* (so clock skew between pods cannot create two leaders), or at once when the
  holder released it (empty ``holderIdentity``); a takeover increments ``leaseTransitions``.

Every write is a compare-and-swap on ``resourceVersion``: of two candidates racing for a free lease, one gets
409 Conflict and stays a follower. A leader that cannot renew for ``renew_deadline`` steps down. API errors
never raise out of :meth:`LeaseLock.acquire_or_renew` (the answer is "not leader"); the last one is kept in
``last_error`` for readiness reporting.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd

from forecaster.adapters.kube import KubeConflict, KubeError, KubeNotFound, call_api, read_json

log = logging.getLogger(__name__)


def default_identity() -> str:
    """``<pod name or host>_<random>``: unique per process, readable in ``kubectl get lease``."""
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}_{uuid.uuid4().hex[:8]}"


def _micro(t: pd.Timestamp | datetime) -> datetime:
    """A UTC datetime for a Lease MicroTime field.

    The client serialises datetimes with ``isoformat()``, which drops the fraction when it is zero, while the
    API server's MicroTime parser requires exactly six fractional digits; a zero fraction is nudged to 1 us.
    """
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    dt = ts.to_pydatetime()
    return dt if dt.microsecond else dt.replace(microsecond=1)


class LeaseLock:
    """:class:`controller.ports.LeaderLock` backed by a Lease object."""

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        name: str,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        timeout: float = 5.0,
        clock: Callable[[], pd.Timestamp] = lambda: pd.Timestamp.now(tz="UTC"),
    ) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.coord = client.CoordinationV1Api(api_client)
        self.namespace, self.name = namespace, name
        self.identity = identity or default_identity()
        self.lease_duration, self.renew_deadline, self.timeout = lease_duration, renew_deadline, timeout
        self.clock = clock
        self.held = False
        self.last_error: KubeError | None = None
        self._mutex = threading.Lock()  # the renew job and the control tick may call concurrently
        self._last_renew: pd.Timestamp | None = None
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at: pd.Timestamp | None = None  # our clock when that record was first seen

    def describe(self) -> str:
        return f"lease/{self.namespace}/{self.name} as {self.identity}"

    def _call(self, fn: Callable[[], Any], verb: str) -> dict[str, Any]:
        resp = call_api(fn, verb=verb, resource="leases", namespace=self.namespace, name=self.name, retries=0)
        return read_json(resp)

    def _spec(self, now: pd.Timestamp, *, transitions: int, acquire: datetime | None) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            # an integer > 0 on the server; rounded up, never down, so followers never see the lease run out
            # before this holder's renew deadline (< lease_duration) has made it step down
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "acquireTime": acquire or _micro(now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    def acquire_or_renew(self, now: pd.Timestamp) -> bool:
        """True when this process holds the lease after the call (acquired or renewed)."""
        with self._mutex:
            return self._acquire_or_renew(pd.Timestamp(now))

    def _acquire_or_renew(self, now: pd.Timestamp) -> bool:
        try:
            result = self._try(now)
            self.last_error = None
        except KubeError as exc:
            self.last_error = exc
            log.warning("leader election on %s failed: %s", self.describe(), exc)
            result = False
        if result:
            self.held, self._last_renew = True, now
        elif self.held:
            since = (now - self._last_renew).total_seconds() if self._last_renew is not None else float("inf")
            deadline_ok = since < self.renew_deadline
            if self.last_error is not None and deadline_ok:
                return True  # a transient failure inside the renew deadline: keep leading
            log.warning("lost leadership of %s", self.describe())
            self.held = False
        return self.held

    def _try(self, now: pd.Timestamp) -> bool:
        try:
            lease = self._call(
                lambda: self.coord.read_namespaced_lease(
                    self.name, self.namespace, _request_timeout=self.timeout, _preload_content=False
                ),
                "get",
            )
        except KubeNotFound:
            body: Any = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, transitions=0, acquire=None),
            }
            try:
                self._call(
                    lambda: self.coord.create_namespaced_lease(
                        self.namespace, body, _request_timeout=self.timeout, _preload_content=False
                    ),
                    "create",
                )
            except KubeConflict:
                return False  # another candidate created it first
            log.info("acquired %s (new lease)", self.describe())
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquire = _micro(pd.Timestamp(spec["acquireTime"])) if spec.get("acquireTime") else None
            new_spec = self._spec(now, transitions=transitions, acquire=acquire)
        else:
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            assert self._observed_at is not None
            if holder and (now - self._observed_at).total_seconds() < duration:
                return False
            new_spec = self._spec(now, transitions=transitions + 1, acquire=None)
        body = {**lease, "spec": new_spec}
        try:
            self._call(
                lambda: self.coord.replace_namespaced_lease(
                    self.name, self.namespace, body, _request_timeout=self.timeout, _preload_content=False
                ),
                "update",
            )
        except KubeConflict:
            return False  # someone else wrote first; re-evaluate next time
        if holder != self.identity:
            log.info("acquired %s (previous holder %r)", self.describe(), holder or None)
        self._observed = None  # our own write: re-observe from the server's copy next time
        return True

    def release(self) -> None:
        """Give the lease up (empty holder) so another replica can take over at once. Never raises."""
        with self._mutex:
            if self.held:
                self.held = False
                self._release()

    def _release(self) -> None:
        try:
            lease = self._call(
                lambda: self.coord.read_namespaced_lease(
                    self.name, self.namespace, _request_timeout=self.timeout, _preload_content=False
                ),
                "get",
            )
            spec = dict(lease.get("spec") or {})
            if (spec.get("holderIdentity") or "") != self.identity:
                return
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=_micro(self.clock()))
            spec.pop("acquireTime", None)
            body: Any = {**lease, "spec": spec}
            self._call(
                lambda: self.coord.replace_namespaced_lease(
                    self.name, self.namespace, body, _request_timeout=self.timeout, _preload_content=False
                ),
                "update",
            )
            log.info("released %s", self.describe())
        except KubeError as exc:
            log.warning("cannot release %s: %s", self.describe(), exc)
