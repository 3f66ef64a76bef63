"""Where batch work runs: in this process, in a local process pool or on a Dask cluster, behind one interface.

Why this module exists: :mod:`forecaster.batch` cuts a fleet of series into chunks and needs them run
somewhere; which "somewhere" is a deployment choice (a laptop, a 2-core job pod, a Dask cluster run by the
Dask Kubernetes operator) and must not change the results. Every engine implements :class:`Engine`: ``map(fn,
items)`` yields ``fn(item)`` for every item, in completion order is fine for the caller, and keeps at most a
few items in flight so the driver never serialises the whole fleet at once.

Dask is imported only when a Dask engine is made. Who calls it: :mod:`forecaster.batch` and the CLI, which
picks the engine from ``--workers`` / ``--dask-scheduler``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from forecaster.errors import OperationalError, UserError

T = TypeVar("T")
R = TypeVar("R")
IN_FLIGHT_PER_WORKER = 2


class Engine(Protocol):
    """Runs a function over items; results may come back in any order."""

    name: str
    workers: int

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


def default_workers() -> int:
    """The cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


class InProcessEngine:
    """Runs every item here, one after the other (the reference the other engines must match)."""

    name = "in-process"
    workers = 1

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)

    def close(self) -> None:
        pass


class ProcessPoolEngine:
    """A pool of local worker processes (forked on Linux, so they start with this process's imports)."""

    def __init__(self, workers: int | None = None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        n = default_workers() if workers is None else int(workers)
        if n < 1:
            raise UserError(f"--workers: must be at least 1, got {n}")
        self.workers = n
        self.name = f"processes({n})"
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self._pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        from concurrent.futures import FIRST_COMPLETED, wait

        pending: set[Any] = set()
        limit = IN_FLIGHT_PER_WORKER * self.workers
        for item in items:
            pending.add(self._pool.submit(fn, item))
            if len(pending) >= limit:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)

    def submit(self, fn: Callable[[T], R], item: T) -> Future[R]:
        """``fn(item)`` on a worker, now; for work that runs beside this process's own (see ``map``)."""
        return self._pool.submit(fn, item)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskEngine:
    """Tasks on a Dask distributed cluster: a scheduler address (``tcp://host:8786``) or a Client."""

    def __init__(self, scheduler: str | Any, *, timeout: float = 30.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UserError(
                "--dask-scheduler: the dask distributed package is not installed "
                "(pip install 'dask[distributed]')"
            ) from None
        self._own = isinstance(scheduler, str)
        self._client: Any
        if self._own:
            try:
                self._client = Client(scheduler, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise OperationalError(
                    f"--dask-scheduler: cannot reach the Dask scheduler at {scheduler} ({exc})"
                ) from None
        else:
            self._client = scheduler
        info = self._client.scheduler_info()
        threads = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
        self.workers = max(threads, 1)
        self.name = f"dask({len(info.get('workers', {}))} workers, {self.workers} threads)"

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        from distributed import as_completed

        limit = IN_FLIGHT_PER_WORKER * self.workers
        it = iter(items)
        first = [self._client.submit(fn, item, pure=False) for _, item in zip(range(limit), it, strict=False)]
        queue = as_completed(first, loop=self._client.loop)
        for future in queue:
            result = future.result()
            future.release()
            nxt = next(it, None)
            if nxt is not None:
                queue.add(self._client.submit(fn, nxt, pure=False))
            yield result

    def close(self) -> None:
        if self._own:
            self._client.close()


def make_engine(workers: int | None = None, dask_scheduler: str | None = None) -> Engine:
    """The engine the flags ask for: Dask if a scheduler is given, else processes (1 worker = in-process)."""
    if dask_scheduler:
        return DaskEngine(dask_scheduler)
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise UserError(f"--workers: must be at least 1, got {n}")
    return InProcessEngine() if n == 1 else ProcessPoolEngine(n)
