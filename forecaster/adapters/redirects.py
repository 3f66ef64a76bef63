"""Redirects never carry credentials or request bodies to another host.

``requests`` follows redirects by default. It drops the ``Authorization`` header when the host changes but
re-sends every other header (a tenant ``X-Scope-OrgID``, an ``Idempotency-Key``) and, for 307/308, the
request body (issue 10, item 8). :func:`same_host_only` makes a session stop at a redirect to another host
(or port; an http -> https upgrade on the same host is allowed) and hand the 3xx response to the caller,
which reports it with :func:`describe`. The warm-up client follows no redirect at all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from forecaster.redact import redact

__all__ = ["describe", "is_redirect", "same_host_only"]

_DEFAULT_PORT = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORT.get(scheme, 0)


def allowed(source: str, target: str) -> bool:
    """Same host and port, or the same host upgraded from http to https."""
    s_scheme, s_host, s_port = _origin(source)
    t_scheme, t_host, t_port = _origin(target)
    if s_host != t_host:
        return False
    return (s_scheme, s_port) == (t_scheme, t_port) or (s_scheme, t_scheme, t_port) == ("http", "https", 443)


def same_host_only(session: requests.Session) -> requests.Session:
    """Make ``session`` follow only redirects that stay on the same host; returns ``session``."""
    follow = session.get_redirect_target

    def target(resp: requests.Response) -> Any:
        location = follow(resp)
        if location is None or allowed(resp.url, urljoin(resp.url, location)):
            return location
        return None  # stop here: the caller gets the 3xx response

    session.get_redirect_target = target  # type: ignore[method-assign]
    return session


def is_redirect(resp: requests.Response) -> bool:
    return 300 <= resp.status_code < 400


def describe(resp: requests.Response) -> str:
    """``HTTP 307 redirect to https://other/...`` (redacted), for an error message."""
    location = resp.headers.get("Location", "")
    where = redact(urljoin(resp.url, location)) if location else "(no Location)"
    return f"HTTP {resp.status_code} redirect to {where}"
