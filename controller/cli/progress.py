"""Progress feedback for subcommands that can run longer than a few seconds: the one helper they all use.

``backtest``, ``plan``, ``whatif``, ``report``, ``simulate`` and ``forecast-job --once`` spend tens of seconds
backtesting models and replaying ``decide()``; a silent terminal looks hung. :class:`Progress` shows:

- on a terminal, one self-rewriting line: ``[#########.....]  45% report 2/5: planning replicas``;
- anywhere else (CI logs, ``kubectl logs``, a pipe), nothing for the first ``after`` seconds (a quick
  command, or one that fails at once, prints only its result or its one-line error), then a plain line
  when a stage starts and at most one every ``every`` seconds while it runs, so logs show the work is alive
  without flooding them; with ``log=``
  (the scheduled forecast job) those lines go to that logger at INFO instead;
- nothing when disabled (``--quiet``).

Library code never sees this class: planning and forecasting functions take plain callbacks
(``progress(done, total)``, or the pipeline's ``progress("3/42 snaive")``), which :meth:`Progress.step`
and :meth:`Progress.__call__` are.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 30


class Progress:
    """Feedback on ``out`` (stderr by default) for a command made of named stages."""

    def __init__(
        self,
        command: str,
        *,
        stages: int = 1,
        out: TextIO | None = None,
        enabled: bool = True,
        every: float = 10.0,
        after: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self.command, self.stages, self.every, self.clock = command, max(stages, 1), every, clock
        self.started = clock()
        self.after = after
        self.out = out if out is not None else sys.stderr
        self.enabled = enabled
        self.log = log
        self.tty = enabled and log is None and bool(getattr(self.out, "isatty", lambda: False)())
        self.index = 0
        self.label = ""
        self._last_line = -float("inf")
        self._drawn = False

    def stage(self, label: str) -> Progress:
        """Start the next stage (``label`` says what it does)."""
        self.index = min(self.index + 1, self.stages)
        self.label = label
        self._last_line = -float("inf")
        self.step(0, 0)
        return self

    def step(self, done: int, total: int, detail: str = "") -> None:
        """``done`` of ``total`` units of the current stage (``total`` 0: unknown)."""
        if not self.enabled:
            return
        frac = min(max(done / total, 0.0), 1.0) if total > 0 else None
        head = f"{self.command} {self.index}/{self.stages}: {self.label}"
        tail = f" ({detail})" if detail else ""
        if self.tty:
            filled = int((frac or 0.0) * WIDTH)
            pct = f"{frac:4.0%}" if frac is not None else "    "
            line = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {pct} {head}{tail}"
            self.out.write("\r\033[K" + line[:150])
            self.out.flush()
            self._drawn = True
            return
        now = self.clock()
        if now - self.started < self.after or now - self._last_line < self.every:
            return
        self._last_line = now
        pct = f" {frac:.0%}" if frac is not None and total > 0 and done > 0 else ""
        if self.log is not None:
            self.log.info("progress: %s%s%s", head, pct, tail)
            return
        self.out.write(f"{head}{pct}{tail}\n")
        self.out.flush()

    def __call__(self, message: str) -> None:
        """The forecasting pipeline's callback: ``"3/42 snaive"`` (done/total, then what is running)."""
        head, _, what = message.partition(" ")
        done, _, total = head.partition("/")
        try:
            self.step(int(done), int(total), what)
        except ValueError:
            self.step(0, 0, message)

    def close(self) -> None:
        """Clear the bar (terminal); nothing to do for plain lines."""
        if self.tty and self._drawn:
            self.out.write("\r\033[K")
            self.out.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
