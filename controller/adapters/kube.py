"""Kubernetes adapters of the controller: the scale target (HPA floor or Deployment scale) and Events.

:class:`KubeScaleTarget` implements :class:`controller.ports.ScaleTarget` in two modes:

- ``hpa``: the predictive decision becomes the HPA's ``spec.minReplicas`` (a floor, clamped to the HPA's
  ``maxReplicas``); the HPA keeps reacting to CPU above it. The decision annotation goes on the HPA.
- ``scale``: the decision is written to the Deployment's ``scale`` subresource and the annotation on the
  Deployment.

Every write carries the ``resourceVersion`` that was read, so a concurrent change yields 409 Conflict; the
adapter re-reads and retries a bounded number of times. 403 raises :class:`KubeForbidden` naming the RBAC
verb, resource and namespace the service account lacks; 429/5xx/timeouts back off and retry, then raise
:class:`KubeUnavailable`. :class:`KubeEventSink` writes core/v1 Events about the target (repeats within a
window bump ``count`` instead of creating new objects) and never raises into the control loop.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from controller.ports import TargetStatus
from forecaster.adapters.kube import (
    KubeConflict,
    call_api,
    read_json,
)
from forecaster.errors import ConfigError

__all__ = ["KubeEventSink", "KubeScaleTarget", "LogEventSink"]

log = logging.getLogger(__name__)
T = TypeVar("T")

COMPONENT = "recharge-autoscaler"


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("spec") or {})


def _rv(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class KubeScaleTarget:
    """:class:`controller.ports.ScaleTarget` for a Deployment, in ``hpa`` (floor) or ``scale`` mode."""

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        name: str,
        mode: str = "hpa",
        hpa_name: str | None = None,
        pause_annotation: str = "recharge-autoscaler.io/paused",
        decision_annotation: str = "recharge-autoscaler.io/decision",
        retries: int = 3,
        conflict_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from kubernetes import client

        if mode not in ("hpa", "scale"):
            raise ConfigError(f"controller.target.mode: {mode!r} is not one of 'hpa', 'scale'")
        self.apps = client.AppsV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)
        self.namespace, self.name, self.mode = namespace, name, mode
        self.hpa_name = hpa_name or name
        self.pause_annotation, self.decision_annotation = pause_annotation, decision_annotation
        self.retries, self.conflict_retries, self.backoff = retries, conflict_retries, backoff
        self.timeout, self.sleep = timeout, sleep
        self.last_applied: int | None = None
        """Replicas (or floor) written by the last apply(), after clamping; None if nothing written."""

    @classmethod
    def from_config(cls, api_client: Any, config: Any, **kwargs: Any) -> KubeScaleTarget:
        """Build from a :class:`controller.config.ControllerConfig` (its ``target`` must be set)."""
        target = config.require_target()
        return cls(
            api_client,
            namespace=target.namespace,
            name=target.name,
            mode=target.mode,
            hpa_name=target.hpa_name,
            pause_annotation=config.pause_annotation,
            decision_annotation=config.decision_annotation,
            **kwargs,
        )

    def describe(self) -> str:
        if self.mode == "hpa":
            return f"hpa/{self.namespace}/{self.hpa_name} (floor of deployment/{self.name})"
        return f"deployment/{self.namespace}/{self.name} (scale)"

    def _call(self, fn: Callable[[], Any], verb: str, resource: str, name: str) -> dict[str, Any]:
        return read_json(
            call_api(
                fn,
                verb=verb,
                resource=resource,
                namespace=self.namespace,
                name=name,
                retries=self.retries,
                backoff=self.backoff,
                sleep=self.sleep,
            )
        )

    def _read_deployment(self) -> dict[str, Any]:
        return self._call(
            lambda: self.apps.read_namespaced_deployment(
                self.name, self.namespace, _request_timeout=self.timeout, _preload_content=False
            ),
            "get",
            "deployments",
            self.name,
        )

    def _read_hpa(self) -> dict[str, Any]:
        return self._call(
            lambda: self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                self.hpa_name, self.namespace, _request_timeout=self.timeout, _preload_content=False
            ),
            "get",
            "horizontalpodautoscalers",
            self.hpa_name,
        )

    def _paused(self, *objs: dict[str, Any]) -> bool:
        return any(_annotations(o).get(self.pause_annotation, "").strip().lower() == "true" for o in objs)

    def status(self) -> TargetStatus:
        dep = self._read_deployment()
        spec_replicas = _spec(dep).get("replicas")
        replicas = 1 if spec_replicas is None else int(spec_replicas)  # the API server defaults it to 1
        ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
        if self.mode == "scale":
            return TargetStatus(replicas, ready, None, self._paused(dep), _rv(dep))
        hpa = self._read_hpa()
        floor = int(_spec(hpa).get("minReplicas", 1))
        return TargetStatus(replicas, ready, floor, self._paused(dep, hpa), _rv(hpa))

    def apply(self, replicas: int, annotation: str) -> None:
        """Write ``replicas`` (HPA floor or Deployment scale) and the decision annotation; retries 409s."""
        if replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {replicas}")
        for attempt in range(self.conflict_retries + 1):
            try:
                self._apply_once(replicas, annotation)
                return
            except KubeConflict as exc:
                if attempt == self.conflict_retries:
                    raise KubeConflict(f"{exc} (gave up after {attempt + 1} attempts)") from None
                log.info("conflict writing %s; re-reading and retrying", self.describe())

    def _apply_once(self, replicas: int, annotation: str) -> None:
        if self.mode == "hpa":
            hpa = self._read_hpa()
            max_r = int(_spec(hpa)["maxReplicas"])
            floor = max(1, min(replicas, max_r))
            if floor > replicas:
                log.info(
                    "HPA %s/%s: floor %d raised to %d (an HPA's minReplicas cannot be below 1)",
                    self.namespace,
                    self.hpa_name,
                    replicas,
                    floor,
                )
            elif floor < replicas:
                log.warning(
                    "HPA %s/%s: floor %d lowered to %d (the HPA's maxReplicas)",
                    self.namespace,
                    self.hpa_name,
                    replicas,
                    floor,
                )
            if (
                _spec(hpa).get("minReplicas", 1) == floor
                and _annotations(hpa).get(self.decision_annotation) == annotation
            ):
                self.last_applied = floor
                return
            body = {
                "metadata": {
                    "resourceVersion": _rv(hpa),
                    "annotations": {self.decision_annotation: annotation},
                },
                "spec": {"minReplicas": floor},
            }
            self._call(
                lambda: self.autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                    self.hpa_name, self.namespace, body, _request_timeout=self.timeout, _preload_content=False
                ),
                "patch",
                "horizontalpodautoscalers",
                self.hpa_name,
            )
            self.last_applied = floor
            return
        dep = self._read_deployment()
        rv = _rv(dep)
        if _spec(dep).get("replicas", 1) != replicas:
            scale = {"metadata": {"resourceVersion": rv}, "spec": {"replicas": replicas}}
            result = self._call(
                lambda: self.apps.patch_namespaced_deployment_scale(
                    self.name, self.namespace, scale, _request_timeout=self.timeout, _preload_content=False
                ),
                "patch",
                "deployments/scale",
                self.name,
            )
            rv = _rv(result)
        if _annotations(dep).get(self.decision_annotation) != annotation:
            meta = {
                "metadata": {"resourceVersion": rv, "annotations": {self.decision_annotation: annotation}}
            }
            self._call(
                lambda: self.apps.patch_namespaced_deployment(
                    self.name, self.namespace, meta, _request_timeout=self.timeout, _preload_content=False
                ),
                "patch",
                "deployments",
                self.name,
            )
        self.last_applied = replicas


class KubeEventSink:
    """:class:`controller.ports.EventSink` writing core/v1 Events whose involvedObject is the target.

    A repeat of the same (reason, message, type) within ``dedup_window`` patches the existing Event's
    ``count`` and ``lastTimestamp`` like kubelet does. Failures are logged and counted in ``failures``;
    they never propagate (an Event is a report, not a control action).
    """

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        involved: dict[str, str],
        instance: str = "",
        dedup_window: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: float = 5.0,
    ) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.namespace, self.involved, self.instance = namespace, dict(involved), instance
        self.dedup_window, self.clock, self.timeout = dedup_window, clock, timeout
        self.failures = 0
        self._recent: dict[tuple[str, str, str], tuple[str, int, datetime]] = {}

    def emit(self, reason: str, message: str, *, warning: bool = False) -> None:
        kind = "Warning" if warning else "Normal"
        now = self.clock()
        key = (reason, message, kind)
        try:
            seen = self._recent.get(key)
            if seen is not None and now - seen[2] <= self.dedup_window:
                name, count, _ = seen
                body = {"count": count + 1, "lastTimestamp": _rfc3339(now)}
                self.core.patch_namespaced_event(
                    name, self.namespace, body, _request_timeout=self.timeout, _preload_content=False
                )
                self._recent[key] = (name, count + 1, now)
                return
            name = f"{self.involved.get('name', COMPONENT)}.{uuid.uuid4().hex[:16]}"
            event: Any = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": self.namespace},
                "involvedObject": {**self.involved, "namespace": self.namespace},
                "reason": reason,
                "message": message[:1024],
                "type": kind,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT,
                "reportingInstance": self.instance or COMPONENT,
                "firstTimestamp": _rfc3339(now),
                "lastTimestamp": _rfc3339(now),
                "count": 1,
            }
            self.core.create_namespaced_event(
                self.namespace, event, _request_timeout=self.timeout, _preload_content=False
            )
            self._recent[key] = (name, 1, now)
        except Exception as exc:  # reporting must not break scaling
            self.failures += 1
            self._recent.pop(key, None)
            log.warning("cannot record Event %s (%s): %s", reason, kind, exc)


class LogEventSink:
    """:class:`controller.ports.EventSink` that only logs (dry-run, offline use)."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, str, bool]] = []

    def emit(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.emitted.append((reason, message, warning))
        log.log(logging.WARNING if warning else logging.INFO, "event %s: %s", reason, message)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
