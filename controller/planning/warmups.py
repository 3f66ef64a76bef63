"""One definition and one count of cache warm-ups, for ``plan``, ``whatif``, ``simulate`` and ``report``.

Before this module each command counted warm-ups its own way (rows with a warm-up, calls in a replay, or not
at all when the replay had warm-ups switched off), so one sample gave three different numbers. The one
definition: **a warm-up is one warm-up call that** :func:`controller.core.decision.decide` **issues**, i.e.
one idempotency key, for one of four reasons (:mod:`controller.core.warmup`, :mod:`controller.core.schedule`):

- ``RampAhead``: a forecast ramp is about to start (issued ``warmup.lead`` before it);
- ``EventAhead``: a declared event (promotion, month start, payday with an uplift) is about to start;
- ``NewReplicas``: replicas added by a scale-up have become ready and need their caches filled;
- ``WindowAhead``: a declared scaling window with a floor is about to open.

Every command plans warm-ups unless ``--no-warmup`` is given, and counts them with :func:`count_warmups`.
Only the predictive controller issues warm-ups: the reactive (HPA), cron and oracle baselines of the
simulator make no warm-up calls (:data:`WHY_NONE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controller.core.schedule import WINDOW_AHEAD
from controller.core.warmup import EVENT, NEW_REPLICAS, RAMP

WHY_NONE = (
    "they are baselines replayed without warm-up calls (an HPA cannot see a ramp coming); only the "
    "predictive controller plans warm-ups"
)
WHY_OFF = "warm-ups are switched off (--no-warmup)"


@dataclass(frozen=True)
class WarmupCount:
    """Warm-up calls by reason."""

    ramp: int = 0
    event: int = 0
    new_replicas: int = 0
    window: int = 0

    @property
    def total(self) -> int:
        return self.ramp + self.event + self.new_replicas + self.window

    def describe(self) -> str:
        """``'13 (3 ramp, 10 new replicas)'``; ``'0'`` when none."""
        parts = [
            f"{n} {label}"
            for n, label in ((self.ramp, "ramp"), (self.event, "event"), (self.new_replicas, "new replicas"),
                             (self.window, "scaling window"))
            if n
        ]
        return f"{self.total} ({', '.join(parts)})" if parts else "0"


def count_warmups(reasons: Iterable[str]) -> WarmupCount:
    """Count warm-up calls from their reason codes (one per call)."""
    counts = {RAMP: 0, EVENT: 0, NEW_REPLICAS: 0, WINDOW_AHEAD: 0}
    for reason in reasons:
        if reason not in counts:
            raise ValueError(f"unknown warm-up reason {reason!r}")
        counts[reason] += 1
    return WarmupCount(counts[RAMP], counts[EVENT], counts[NEW_REPLICAS], counts[WINDOW_AHEAD])
