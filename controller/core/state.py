"""The controller's memory between decisions, kept as an immutable value so that decide() stays pure.

``decide()`` takes a :class:`ControllerState` and returns a new one inside its Decision: the recommendation
history (scale-down stabilisation), the recent scale events (HPA-style rate limits per period) and the
idempotency keys of warm-ups already issued (so a restart does not repeat them). The live loop keeps the
latest state in memory, refreshes ``replicas`` from the cluster before each decision, and persists the
issued warm-up keys (``to_dict``/``from_dict`` give a JSON-safe form). After a restart the loop adds a
``restart_hold``: no scale-down below the replicas seen at restart for one stabilisation window.
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
    restart_hold: tuple[pd.Timestamp, int] | None = None
    """(until, replicas): after a restart, a failover or a lost state the replicas seen then count as the
    recommendation of the whole scale-down stabilisation window, until ``until`` (scale-down only: it never
    holds a scale-up). None when no hold is active."""

    def with_replicas(self, replicas: int | None) -> ControllerState:
        """The same state with the replica count the cluster reports (the loop calls this before deciding)."""
        return replace(self, replicas=replicas)

    def held_after_restart(self, replicas: int, now: pd.Timestamp, window_seconds: int) -> ControllerState:
        """The same state with ``replicas`` held against scale-down for a full window from ``now``.

        The live loop calls this whenever it (re)loads its memory: whatever the saved history says, it may
        be incomplete (another replica may have acted, the state may be lost or old), so the count the
        target has now is treated as recommended for a whole scale-down stabilisation window, as the
        Kubernetes HPA does when it first sees a target. A longer or higher hold already in place is kept.
        """
        if window_seconds <= 0:
            return self
        until = now + pd.Timedelta(seconds=window_seconds)
        old = self.restart_hold
        if old is not None and old[0] > now:
            until, replicas = max(until, old[0]), max(replicas, old[1])
        return replace(self, restart_hold=(until, int(replicas)))

    def not_after(self, now: pd.Timestamp, *, hold_seconds: int) -> ControllerState:
        """The same memory with nothing dated after ``now``; ``self`` when nothing is.

        A wall clock that steps back (an NTP correction, a resumed VM, a restart on a node whose clock is
        behind) leaves recommendations and scale events dated "in the future". Counted as they are, they
        would sit in every stabilisation window and rate-limit period until the clock caught up: a scale-up
        frozen for as long as the jump. They count as made ``now`` instead (a scale-down waits one window,
        scale events one period), and a restart hold ends at most ``hold_seconds`` from ``now``.
        """
        now_ns = now.value
        hold = self.restart_hold
        late_hold = hold is not None and hold[0].value > now_ns + hold_seconds * 1_000_000_000
        if not late_hold and not any(t.value > now_ns for t, _ in self.recommendations) and not any(
            t.value > now_ns for t, _ in self.scale_events
        ):
            return self
        if late_hold and hold is not None:
            hold = (now + pd.Timedelta(seconds=hold_seconds), hold[1])
        return replace(
            self,
            recommendations=tuple((min(t, now), n) for t, n in self.recommendations),
            scale_events=tuple((min(t, now), n) for t, n in self.scale_events),
            restart_hold=hold,
        )

    def forget_warmup(self, key: str) -> ControllerState:
        """The same state without ``key`` among the issued warm-ups (a call that failed may be retried)."""
        return replace(self, issued_warmups=tuple((k, t) for k, t in self.issued_warmups if k != key))

    def issued(self, key: str) -> bool:
        return any(k == key for k, _ in self.issued_warmups)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
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
        if self.restart_hold is not None:
            out["restartHold"] = [_iso(self.restart_hold[0]), self.restart_hold[1]]
        return out

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "controller state") -> ControllerState:
        """Inverse of :meth:`to_dict`; raises StoreError naming ``where`` on malformed input."""
        try:
            replicas = data.get("replicas")
            hold = data.get("restartHold")
            return cls(
                replicas=None if replicas is None else int(replicas),
                recommendations=tuple((_ts(t), int(n)) for t, n in data.get("recommendations", [])),
                scale_events=tuple((_ts(t), int(n)) for t, n in data.get("scaleEvents", [])),
                issued_warmups=tuple((str(k), _ts(t)) for k, t in data.get("issuedWarmups", [])),
                **_level(data.get("level")),
                restart_hold=None if hold is None else (_ts(hold[0]), int(hold[1])),
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
