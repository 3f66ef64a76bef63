"""Fault injection and request recording of the test API server (see :meth:`KubeApiServer.fail`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    """Makes the next ``count`` requests matching ``method``/``path`` fail with ``status`` (or just sleep)."""

    status: int | None
    count: int = 1
    method: str | None = None
    path: str | None = None  # substring of the URL path
    delay: float = 0.0
    message: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.count > 0
            and (self.method is None or self.method.upper() == method)
            and (self.path is None or self.path in path)
        )


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any
    status: int = 0
