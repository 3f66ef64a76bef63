"""A total deadline for one HTTP request, however slowly the server answers.

``requests``/``urllib3`` timeouts bound each socket operation, not the request: a server that sends one byte
every 2 s never trips a 5 s read timeout and can hold a caller for as long as it likes (issue 10, item 3).
:func:`total_deadline` arms a watchdog for the calls made inside it; when the time is up it shuts down the
socket of the connection in use, which ends any blocked read at once, and the call raises
:class:`TotalTimeout` (a ``requests`` ``Timeout``, so callers that retry timeouts keep doing so).

The watchdog finds the connection through the connection pools of a session or pool manager prepared by
:func:`install` (HTTP and HTTPS pools whose ``_get_conn`` reports the connection handed out to the calling
thread). A call outside :func:`total_deadline` behaves exactly as before. Used by the Prometheus source (the
job's history and the controller's live load) and the warm-up client; callers create their sessions, this
module creates none.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["TotalTimeout", "install", "total_deadline"]

_current = threading.local()


class TotalTimeout(requests.exceptions.Timeout):
    """The request did not complete within its total deadline (connect, send and every byte of the reply)."""


class _Watch:
    """One armed deadline: remembers the connection in use and shuts its socket down when time is up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.conn: Any = None
        self.done = False
        self.fired = False
        self.timer = threading.Timer(max(0.0, seconds), self._fire)
        self.timer.daemon = True

    def attach(self, conn: Any) -> None:
        with self.lock:
            self.conn = conn
            fired = self.fired
        if fired:
            _shutdown(conn)

    def _fire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
        # The socket exists only once connected (the connect timeout bounds that part): wait for it.
        while True:
            with self.lock:
                if self.done:
                    return
                conn = self.conn
            if conn is not None and getattr(conn, "sock", None) is not None:
                _shutdown(conn)
                return
            time.sleep(0.02)

    def finish(self) -> bool:
        """Disarm; True when the deadline fired first."""
        with self.lock:
            self.done = True
            fired = self.fired
        self.timer.cancel()
        return fired


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    # socket.socket.shutdown, not SSLSocket.shutdown (which drops its SSL object under a reading thread)
    with contextlib.suppress(OSError, TypeError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextmanager
def total_deadline(seconds: float, *, what: str = "request") -> Iterator[None]:
    """Calls inside end within ``seconds`` or raise :class:`TotalTimeout`.

    Only sessions and pool managers prepared by :func:`install` are watched. Not reentrant per thread:
    an inner deadline replaces the outer one for its duration.
    """
    watch = _Watch(seconds)
    outer = getattr(_current, "watch", None)
    _current.watch = watch
    watch.timer.start()
    try:
        yield
    except Exception:  # requests, urllib3 (the Kubernetes client) or the socket itself
        if watch.finish():
            raise TotalTimeout(f"{what} did not complete within {seconds:g}s") from None
        raise
    else:
        if watch.finish():
            # the socket was shut under the call: whatever was read may be cut short
            raise TotalTimeout(f"{what} did not complete within {seconds:g}s")
    finally:
        watch.finish()
        _current.watch = outer


class _Report:
    """Mixin for connection pools: tell the armed deadline of this thread which connection it uses."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(conn)
        return conn


class _HTTPPool(_Report, HTTPConnectionPool):
    pass


class _HTTPSPool(_Report, HTTPSConnectionPool):
    pass


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        install(self.poolmanager)


def install(target: Any) -> Any:
    """Make ``target`` (a ``requests.Session`` or a urllib3 ``PoolManager``) honour :func:`total_deadline`.

    A session gets adapters (keeping its ``max_retries`` of 0) whose pools report their connections; a pool
    manager gets those pool classes directly. Returns ``target``.
    """
    if isinstance(target, requests.Session):
        for prefix in ("http://", "https://"):
            target.mount(prefix, _Adapter())
        return target
    target.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return target
