"""Periodic jobs for the live controller, on APScheduler: the loop's tick and the leader lease's renewal.

APScheduler gives what a hand-written timer thread would get wrong: a job never runs twice at once
(``max_instances=1``), missed runs after a long tick or a suspended process coalesce into one, and
shutdown waits for the running job. The controller's ``run`` wiring hands it plain callables, so nothing
here knows about the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class PeriodicJob:
    """Call ``fn`` every ``seconds``; ``at_start`` runs it once immediately."""

    id: str
    fn: Callable[[], object]
    seconds: float
    at_start: bool = False


class PeriodicJobs:
    """Runs :class:`PeriodicJob` s on a background scheduler between :meth:`start` and :meth:`stop`."""

    def __init__(self, jobs: list[PeriodicJob]) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self._scheduler = BackgroundScheduler(timezone="UTC")
        for job in jobs:
            extra = {"next_run_time": datetime.now(UTC)} if job.at_start else {}
            self._scheduler.add_job(
                job.fn, "interval", seconds=float(job.seconds), max_instances=1, coalesce=True, id=job.id,
                **extra,
            )

    def start(self) -> PeriodicJobs:
        self._scheduler.start()
        return self

    def stop(self) -> None:
        """Stop scheduling and wait for a running job to finish."""
        self._scheduler.shutdown(wait=True)


def run_until(
    stop: threading.Event,
    *,
    name: str,
    tick: Callable[[], object],
    interval: float,
    renew: Callable[[], object] | None = None,
    retry_period: float = 0.0,
) -> None:
    """Call ``tick`` every ``interval`` (first at once) and ``renew`` every ``retry_period`` until ``stop``.

    The leader lease is renewed between ticks, because a tick may take longer than the lease lasts. The
    live controller (``run``) and the fleet (``fleet``) both run this way.
    """
    jobs = [PeriodicJob(name, tick, interval, at_start=True)]
    if renew is not None:
        jobs.append(PeriodicJob("leader-election", renew, retry_period))
    scheduler = PeriodicJobs(jobs).start()
    try:
        stop.wait()
    finally:
        scheduler.stop()


def stop_on_signals(what: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT (logged as stopping after the current ``what``)."""
    import logging
    import signal
    from types import FrameType

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after the current %s", signum, what)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop
