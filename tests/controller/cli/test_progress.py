"""The one progress helper: a bar on a terminal, periodic plain lines elsewhere, silence when quiet."""

from __future__ import annotations

import io
import logging

import pytest

from controller.cli.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_terminal_gets_one_rewritten_bar_and_it_is_cleared() -> None:
    out = Tty()
    with Progress("plan", stages=2, out=out) as p:
        p.stage("forecasting")
        p("21/42 snaive")  # the pipeline's callback format
        p.stage("replaying decide()")
        p.step(750, 1000)
    text = out.getvalue()
    assert "\n" not in text  # one line, rewritten in place
    assert "[###############...............]  50% plan 1/2: forecasting (snaive)" in text
    assert " 75% plan 2/2: replaying decide()" in text
    assert text.endswith("\r\033[K")  # cleared on exit: the command's own output starts clean


def test_pipe_gets_periodic_lines_after_a_quiet_start() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("report", stages=2, out=out, every=10, after=3, clock=clock)
    p.stage("forecasting")
    p.step(1, 10)
    assert out.getvalue() == ""  # a quick command prints nothing but its result
    clock.t = 4
    p.step(2, 10)
    clock.t = 5
    p.step(3, 10)  # within 10 s of the last line: not printed
    clock.t = 15
    p.step(9, 10, "seasonal_median")
    p.stage("replaying")  # a new stage prints at once
    assert out.getvalue().splitlines() == [
        "report 1/2: forecasting 20%",
        "report 1/2: forecasting 90% (seasonal_median)",
        "report 2/2: replaying",
    ]


def test_logger_mode_for_the_scheduled_job(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = logging.getLogger("test.progress")
    p = Progress("forecast-job", log=log, after=0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        p.stage("backtesting")
        p("5/10 snaive")
    assert [r.getMessage() for r in caplog.records] == ["progress: forecast-job 1/1: backtesting"]


def test_quiet_prints_nothing() -> None:
    out = Tty()
    with Progress("whatif", out=out, enabled=False) as p:
        p.stage("forecasting")
        p.step(1, 2)
    assert out.getvalue() == ""
