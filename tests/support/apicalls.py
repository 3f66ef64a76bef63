"""Count the HTTP requests a ``kubernetes.client.ApiClient`` makes, by thread, verb and resource.

The fleet's promise is that its API calls follow what changes, not the size of the fleet. To check it,
:class:`ApiCalls` wraps one ApiClient's ``call_api`` (every request of every generated API method goes
through it, exactly once when the client makes no retries, as the suite's clients do) and records each
request's thread, HTTP method and path. :meth:`ApiCalls.window` collects the requests the *current* thread
makes inside a ``with`` block: a controller tick, without the informers' watch and relist requests that
other threads make meanwhile (those are in :attr:`ApiCalls.calls` too, to be reported separately).

Used by the fleet tests (tests/controller/fleet/test_fleet_scale.py) and benchmarks/fleet_bench.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Call:
    """One HTTP request: ``resource`` is the plural after the namespace (``horizontalpodautoscalers``,
    ``predictivescalers/status``, ``events``), ``name`` the object's name ('' for a collection)."""

    thread: int
    method: str
    path: str
    namespace: str
    resource: str
    name: str

    @property
    def read(self) -> bool:
        return self.method in READ_METHODS


def parse_path(path: str) -> tuple[str, str, str]:
    """(namespace, resource, name) of an API path; resource keeps a subresource (``deployments/scale``)."""
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if "namespaces" in parts:
        i = parts.index("namespaces")
        rest = parts[i + 1:]
        if len(rest) == 1:  # /api/v1/namespaces/<ns>: the namespace object itself
            return "", "namespaces", rest[0]
        ns, rest = rest[0], rest[1:]
    else:
        ns, rest = "", parts[2:] if parts[:1] == ["api"] else parts[3:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    return ns, resource, name


class ApiCalls:
    """Records every request ``api_client`` makes (see the module docstring); :meth:`close` unwraps it."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._original = api_client.call_api

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            ns, resource, name = parse_path(url)
            call = Call(threading.get_ident(), str(method).upper(), urlsplit(url).path, ns, resource, name)
            with self._lock:
                self.calls.append(call)
            return self._original(method, url, *args, **kwargs)

        api_client.call_api = counted

    def close(self) -> None:
        self.api_client.call_api = self._original

    def since(self, start: int, *, thread: int | None = None) -> list[Call]:
        """The calls recorded after the first ``start`` ones, of ``thread`` only when given."""
        with self._lock:
            new = self.calls[start:]
        return [c for c in new if thread is None or c.thread == thread]

    @contextmanager
    def window(self) -> Iterator[list[Call]]:
        """``with calls.window() as made:``; ``made`` then holds this thread's requests inside the block."""
        made: list[Call] = []
        with self._lock:
            start = len(self.calls)
        try:
            yield made
        finally:
            made.extend(self.since(start, thread=threading.get_ident()))


def summary(calls: list[Call]) -> dict[str, int]:
    """``{'reads': n, 'writes': n, '<METHOD> <resource>': n, ...}``."""
    out: Counter[str] = Counter()
    for c in calls:
        out["reads" if c.read else "writes"] += 1
        out[f"{c.method} {c.resource}"] += 1
    out.setdefault("reads", 0)
    out.setdefault("writes", 0)
    return dict(out)
