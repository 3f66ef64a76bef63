"""Logging set-up, called once by the CLI (never at import time): plain text or JSON lines on stderr.

Every line is redacted on the way out (credentials in URLs and headers, secrets the product read), whoever
logged it: our adapters, the Kubernetes client, urllib3 or a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from forecaster.redact import redact

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class TextFormatter(logging.Formatter):
    """``time level logger: message``, redacted (:func:`forecaster.redact.redact`) like every line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and any ``extra=`` fields; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for k, v in record.__dict__.items():
            if k not in _RESERVED and not k.startswith("_"):
                plain = isinstance(v, int | float | bool | type(None))
                out[k] = v if plain else redact(str(v))
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out)


def setup_logging(level: str = "WARNING", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter (cmdstanpy prints every Stan chain start) stays quiet unless debugging.
    for noisy in ("cmdstanpy", "prophet", "urllib3", "apscheduler", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
