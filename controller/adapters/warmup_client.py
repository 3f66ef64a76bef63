"""HTTP executor of cache warm-ups: asks the recharge service to warm caches before load or new replicas.

The loop decides *when* to warm up (:mod:`controller.core.warmup`); this module only delivers the call. Each
call is a ``POST`` of ``{"replicas", "reason", "key"}`` with an ``Idempotency-Key`` header, so a retried or
repeated call is harmless on the service side. A warm-up is an optimisation, never a precondition for scaling:
failures (timeouts, refused connections, 5xx after bounded retries, 4xx) are logged and counted and
:meth:`HttpWarmupClient.warm` returns False; it never raises into the scaling path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from forecaster.adapters import redirects
from forecaster.adapters.deadline import install, total_deadline
from forecaster.redact import redact, remember

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class HttpWarmupClient:
    """:class:`controller.ports.WarmupClient` over HTTP(S) with bounded retries."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self.headers = dict(headers or {})
        remember(urlsplit(url).password, *self.headers.values())
        self.session = install(session or requests.Session())
        self.sleep = sleep
        self.successes = 0
        self.failures = 0
        self.last_error: str | None = None

    @classmethod
    def from_config(cls, warmup: Any, **kwargs: Any) -> HttpWarmupClient:
        """Build from a :class:`controller.config.WarmupConfig` (``url`` must be set)."""
        return cls(str(warmup.url), timeout=float(warmup.timeout), retries=int(warmup.retries), **kwargs)

    def describe(self) -> str:
        return f"warm-up POST {redact(self.url)}"

    def warm(self, key: str, replicas: int, reason: str) -> bool:
        body = {"replicas": int(replicas), "reason": reason, "key": key}
        headers = {**self.headers, "Idempotency-Key": key, "Content-Type": "application/json"}
        problem = ""
        for attempt in range(self.retries + 1):
            try:
                with total_deadline(self.timeout, what="warm-up call"):  # the whole call, not each read
                    resp = self.session.post(
                        self.url, json=body, headers=headers, timeout=self.timeout, allow_redirects=False
                    )
            except requests.RequestException as exc:
                problem = redact(f"{type(exc).__name__}: {exc}")
            else:
                if 200 <= resp.status_code < 300:
                    self.successes += 1
                    log.info("warm-up %s delivered (replicas=%d, reason=%s)", key, replicas, reason)
                    return True
                problem = redact(f"HTTP {resp.status_code}: {resp.text[:200]}")
                if redirects.is_redirect(resp):  # the body would go to wherever it points: never followed
                    problem = (
                        f"{redirects.describe(resp)} not followed (a warm-up is never re-sent elsewhere); "
                        "set controller.warmup.url to the final address"
                    )
                    break
                if resp.status_code not in _RETRY_STATUS:
                    break  # the service rejected the request itself; repeating it will not help
            if attempt < self.retries:
                self.sleep(self.backoff * (2**attempt))
        self.failures += 1
        self.last_error = problem
        log.warning("warm-up %s to %s failed: %s", key, redact(self.url), problem)
        return False
