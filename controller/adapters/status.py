"""Writes a custom resource's ``status`` subresource: how the fleet reports each scaler to ``kubectl``.

A merge patch of ``{"status": ...}`` on the status subresource (so it never touches the spec the user owns),
through the shared API-call policy. A failure is logged and returned as False: the caller compares and
writes again on its next tick, a status is a report and never a control action.
"""

from __future__ import annotations

import logging
from typing import Any

from controller.adapters.informer import Kind

log = logging.getLogger(__name__)


class StatusWriter:
    """``write(namespace, name, status)`` for objects of one custom ``kind``."""

    def __init__(self, api_client: Any, kind: Kind, *, timeout: float = 10.0) -> None:
        from kubernetes import client

        self.api, self.kind, self.timeout = client.CustomObjectsApi(api_client), kind, timeout

    def write(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        from forecaster.adapters.kube import call_api

        k = self.kind
        try:
            call_api(
                lambda: self.api.patch_namespaced_custom_object_status(
                    k.group, k.version, namespace, k.plural, name, {"status": status},
                    _request_timeout=self.timeout,
                ),
                verb="patch", resource=f"{k.plural}/status", namespace=namespace, name=name, retries=1,
                hint="",
            )
        except Exception as exc:  # not written: compared (and written) again on the next tick
            log.warning("%s %s/%s: status not written: %s", k.plural, namespace, name, exc)
            return False
        return True
