"""The controller's memory between decisions, kept as an immutable value so that decide() stays pure.

``decide()`` takes a :class:`ControllerState` and returns a new one inside its Decision: the recommendation
history (scale-down stabilisation), the recent scale events (HPA-style rate limits per period) and the
idempotency keys of warm-ups already issued (so a restart does not repeat them). The live loop keeps the
latest state in memory, refreshes ``replicas`` from the cluster before each decision, and persists the
issued warm-up keys (``to_dict``/``from_dict`` give a JSON-safe form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from forecaster.errors import StoreError


@dataclass(frozen=True)
class ControllerState:
    """What the controller remembers between decisions. All timestamps tz-aware."""

    replicas: int | None = None
    """Replicas currently requested on the target; None when unknown (first decision: no rate limits)."""
    recommendations: tuple[tuple[pd.Timestamp, int], ...] = ()
    """(when, recommended replicas before limits) for stabilisation windows, oldest first."""
    scale_events: tuple[tuple[pd.Timestamp, int], ...] = ()
    """(when, change in replicas) of applied decisions, for the per-period rate limits."""
    issued_warmups: tuple[tuple[str, pd.Timestamp], ...] = ()
    """(idempotency key, time after which the key can be forgotten) of warm-ups already issued."""
    level: float = 0.0
    """Average of log(observed load / forecast mean) for the level correction; 0 means on forecast."""
    level_at: pd.Timestamp | None = None
    """When ``level`` was last updated; None when there is no level yet (it then starts afresh)."""
    level_since: pd.Timestamp | None = None
    """Since when ``level`` has stayed beyond the deadband on its current side; None while within it."""

    def with_replicas(self, replicas: int | None) -> ControllerState:
        """The same state with the replica count the cluster reports (the loop calls this before deciding)."""
        return replace(self, replicas=replicas)

    def forget_warmup(self, key: str) -> ControllerState:
        """The same state without ``key`` among the issued warm-ups (a call that failed may be retried)."""
        return replace(self, issued_warmups=tuple((k, t) for k, t in self.issued_warmups if k != key))

    def issued(self, key: str) -> bool:
        return any(k == key for k, _ in self.issued_warmups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "recommendations": [[_iso(t), n] for t, n in self.recommendations],
            "scaleEvents": [[_iso(t), n] for t, n in self.scale_events],
            "issuedWarmups": [[k, _iso(t)] for k, t in self.issued_warmups],
            "level": {
                "log": self.level,
                "at": None if self.level_at is None else _iso(self.level_at),
                "since": None if self.level_since is None else _iso(self.level_since),
            },
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "controller state") -> ControllerState:
        """Inverse of :meth:`to_dict`; raises StoreError naming ``where`` on malformed input."""
        try:
            replicas = data.get("replicas")
            return cls(
                replicas=None if replicas is None else int(replicas),
                recommendations=tuple((_ts(t), int(n)) for t, n in data.get("recommendations", [])),
                scale_events=tuple((_ts(t), int(n)) for t, n in data.get("scaleEvents", [])),
                issued_warmups=tuple((str(k), _ts(t)) for k, t in data.get("issuedWarmups", [])),
                **_level(data.get("level")),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise StoreError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None


def _level(data: Any) -> dict[str, Any]:
    """The level-correction fields of :meth:`ControllerState.from_dict` (absent in older state: none)."""
    if data is None:
        return {}
    log = float(data.get("log", 0.0))
    if not math.isfinite(log):
        raise ValueError(f"level {log!r} is not finite")
    at, since = data.get("at"), data.get("since")
    return {
        "level": log,
        "level_at": None if at is None else _ts(at),
        "level_since": None if since is None else _ts(since),
    }


def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).isoformat()


def _ts(text: Any) -> pd.Timestamp:
    t = pd.Timestamp(text)
    if t.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return t
