"""Calls to the Kubernetes API server with failures mapped to actionable errors; shared by every adapter.

Both sides of the product talk to the API server: the forecast job stores its forecast in a ConfigMap; the
controller scales its target, holds a Lease and records Events. :func:`call_api` gives them one policy:
401/403 become :class:`KubeForbidden` naming the RBAC verb, resource and namespace the service account
lacks; 404 and 409 are raised at once for the caller to handle; 429, 5xx and transport errors are retried
with exponential back-off and then raised as :class:`KubeUnavailable`. :func:`load_api_client` and
:func:`pod_namespace` find credentials and namespace the same way for the job and the controller.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from forecaster.errors import ConfigError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
CALL_DEADLINE = 30.0
"""Seconds one API call attempt may take in all (connect, send, the whole reply)."""


class KubeError(OperationalError):
    """An API server call failed; ``kind`` labels the error metric (forbidden, conflict, unavailable, ...)."""

    kind = "api"


class KubeForbidden(KubeError):
    kind = "forbidden"


class KubeNotFound(KubeError):
    kind = "not_found"


class KubeConflict(KubeError):
    kind = "conflict"


class KubeUnavailable(KubeError):
    kind = "unavailable"


def _is_transient(exc: BaseException) -> bool:
    """Connection resets, timeouts and refused connections (urllib3 raises a zoo of types for them)."""
    import urllib3.exceptions as u3

    return isinstance(exc, u3.HTTPError | OSError | TimeoutError)


def call_api(
    fn: Callable[[], T],
    *,
    verb: str,
    resource: str,
    namespace: str,
    name: str = "",
    retries: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    hint: str = "check controller.target",
    deadline: float | None = CALL_DEADLINE,
) -> T:
    """Run one API call, mapping failures to :class:`KubeError` subclasses with actionable messages.

    ``resource`` is the RBAC resource (``deployments/scale``); ``verb`` the RBAC verb (``patch``). 409 is
    raised as :class:`KubeConflict` at once (the caller re-reads); 429, 5xx and transport errors are retried
    ``retries`` times with exponential back-off. Each attempt, body included, ends within ``deadline``
    seconds in total, however slowly the server answers (clients from :func:`load_api_client`;
    ``_request_timeout`` bounds each read only).
    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.response import BaseHTTPResponse

    from forecaster.adapters.deadline import total_deadline

    what = f"{resource} {namespace}/{name}" if name else f"{resource} in namespace {namespace}"
    last = ""
    for attempt in range(retries + 1):
        try:
            if deadline is None:
                return fn()
            with total_deadline(deadline, what=f"{verb} {what}"):
                out = fn()
                if isinstance(out, BaseHTTPResponse):
                    out.data  # noqa: B018  (a _preload_content=False body is read here, inside the deadline)
                return out
        except ApiException as exc:
            status, msg = int(exc.status or 0), server_message(exc)
            if status in (401, 403):
                raise KubeForbidden(
                    f"forbidden: the service account needs '{verb}' on '{resource}' in namespace {namespace} "
                    f"(API server: {msg})"
                ) from None
            if status == 404:
                advice = f"; {hint}" if hint else ""
                raise KubeNotFound(f"{what} not found (API server: {msg}){advice}") from None
            if status == 409:
                raise KubeConflict(f"{verb} {what}: conflict ({msg})") from None
            if status != 429 and status < 500:
                raise KubeError(f"{verb} {what} rejected with HTTP {status}: {msg}") from None
            last = f"HTTP {status}: {msg}"
        except Exception as exc:
            if not _is_transient(exc):
                raise
            cause = getattr(exc, "reason", None) or exc  # urllib3's MaxRetryError wraps the real error
            last = f"{type(cause).__name__}: {cause}"
        if attempt < retries:
            delay = backoff * (2**attempt)
            log.warning("%s %s failed (%s); retrying in %.1fs", verb, what, last, delay)
            sleep(delay)
    raise KubeUnavailable(f"{verb} {what} failed after {retries + 1} attempts ({last})")


def server_message(exc: Any) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, TypeError, AttributeError):
        return str(getattr(exc, "reason", "") or exc)


def load_api_client(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    advice: str = "pass --kubeconfig or run in-cluster",
) -> Any:
    """An ApiClient from ``kubeconfig`` (file), else in-cluster service account, else ``~/.kube/config``.

    urllib3's own retries are off: :func:`call_api` is the one retry policy. Left on, urllib3 retried every
    GET and PUT three more times on 429/503 (sleeping for the server's Retry-After) and on read timeouts,
    under each of call_api's attempts, so an overloaded or hung API server held a tick 4x longer than the
    policy says.
    """
    from kubernetes import client, config

    from forecaster.adapters.deadline import install

    cfg = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except config.ConfigException as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ConfigError(
            f"{where}: cannot load Kubernetes credentials ({exc}); {advice}"
        ) from None
    cfg.retries = False
    api = client.ApiClient(cfg)
    install(api.rest_client.pool_manager)  # call_api's total deadline can end a call that drips
    return api


def read_json(response: Any) -> dict[str, Any]:
    """The JSON body of a ``_preload_content=False`` response.

    Objects are read as plain JSON rather than the client's generated models: those reject objects that
    omit fields they consider required (an HPA without status yet, a field added by a newer server), and
    the controller only needs a handful of fields.
    """
    data = getattr(response, "data", response)
    try:
        doc = json.loads(data)
    except (TypeError, ValueError) as exc:
        raise KubeError(f"API server returned a body that is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise KubeError("API server returned JSON that is not an object")
    return doc


def pod_namespace(fallback: str = "default", path: str | None = None) -> str:
    """The namespace this pod runs in (service-account namespace file), else ``fallback``.

    An unset ``store.configmap.namespace`` means exactly this for the forecast job and the controller ("the
    pod's own namespace, or 'default' outside a cluster"), so both read and write the same ConfigMap.
    """
    try:
        ns = Path(path or SERVICE_ACCOUNT_NAMESPACE).read_text(encoding="utf-8").strip()
    except OSError:
        return fallback
    return ns or fallback
