"""Logging set-up: every line the process writes is redacted, whoever logged it (issue 10, item 6)."""

from __future__ import annotations

import json
import logging

import pytest

from forecaster.logs import setup_logging


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_every_log_line_is_redacted(json_lines: bool, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging("INFO", json_lines=json_lines)
        # a third-party logger, %-args and an exception: none of them go through our own messages
        logging.getLogger("somelib").warning("retrying %s", "https://bob:hunter22@prom.example/api")
        try:
            raise RuntimeError("server said: Authorization: Bearer abcDEF123456789")
        except RuntimeError:
            logging.getLogger("somelib").exception("call failed")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "hunter22" not in err and "abcDEF123456789" not in err, err
    assert "<redacted>" in err
    if json_lines:
        assert all(json.loads(line) for line in err.strip().splitlines())
