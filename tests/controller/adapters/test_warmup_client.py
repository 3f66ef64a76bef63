"""The warm-up executor against a loopback HTTP server: body, idempotency header, retries, never raising."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from controller.adapters.warmup_client import HttpWarmupClient


class WarmupService:
    """Loopback stand-in for the recharge service: answers with the scripted statuses, then 200."""

    def __init__(self) -> None:
        self.script: list[int | float] = []  # an int is a status; a float is a delay in seconds before 200
        self.received: list[tuple[dict[str, str], Any]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.received.append((dict(self.headers), json.loads(raw or b"null")))
                step = service.script.pop(0) if service.script else 200
                if isinstance(step, float):
                    time.sleep(step)
                    step = 200
                data = b'{"ok": true}'
                try:
                    self.send_response(step)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out first, which is what the timeout tests want

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/internal/warmup"


@pytest.fixture
def service() -> Iterator[WarmupService]:
    svc = WarmupService()
    yield svc
    svc.httpd.shutdown()
    svc.httpd.server_close()


def client(url: str, **kw: Any) -> tuple[HttpWarmupClient, list[float]]:
    sleeps: list[float] = []
    return HttpWarmupClient(url, timeout=kw.pop("timeout", 2.0), sleep=sleeps.append, **kw), sleeps


def test_posts_body_and_idempotency_key(service: WarmupService) -> None:
    c, _ = client(service.url)
    assert c.warm("recharge-ramp-20261126T0900", 12, "ramp: +45% at 09:00") is True
    headers, body = service.received[0]
    assert body == {"replicas": 12, "reason": "ramp: +45% at 09:00", "key": "recharge-ramp-20261126T0900"}
    assert headers["Idempotency-Key"] == "recharge-ramp-20261126T0900"
    assert headers["Content-Type"] == "application/json"
    assert (c.successes, c.failures) == (1, 0)


@pytest.mark.parametrize(
    ("script", "retries", "ok", "calls", "sleeps"),
    [
        ([503], 2, True, 2, [0.5]),
        ([500, 502], 2, True, 3, [0.5, 1.0]),
        ([500, 500, 500], 2, False, 3, [0.5, 1.0]),
        ([429], 1, True, 2, [0.5]),
        ([400], 3, False, 1, []),
        ([404], 3, False, 1, []),
        ([204], 0, True, 1, []),
    ],
    ids=[
        "503-then-ok",
        "two-5xx-then-ok",
        "5xx-exhausts",
        "429-retried",
        "400-not-retried",
        "404-not-retried",
        "204-is-success",
    ],
)
def test_retries_only_what_can_recover(
    service: WarmupService, script: list[int | float], retries: int, ok: bool, calls: int, sleeps: list[float]
) -> None:
    service.script = list(script)
    c, slept = client(service.url, retries=retries)
    assert c.warm("k", 5, "r") is ok
    assert len(service.received) == calls
    assert slept == sleeps
    assert {h["Idempotency-Key"] for h, _ in service.received} == {"k"}  # same key on every retry
    assert (c.successes, c.failures) == ((1, 0) if ok else (0, 1))
    if not ok:
        assert c.last_error is not None and c.last_error.startswith("HTTP")


def test_timeout_is_retried_then_false(service: WarmupService) -> None:
    service.script = [0.6, 0.6]
    c, slept = client(service.url, retries=1, timeout=0.2)
    assert c.warm("k", 5, "r") is False
    assert "Timeout" in (c.last_error or "")
    assert slept == [0.5]


def test_connection_refused_never_raises() -> None:
    svc = WarmupService()
    url = svc.url
    svc.httpd.shutdown()
    svc.httpd.server_close()
    c, slept = client(url, retries=2)
    assert c.warm("k", 5, "r") is False
    assert "ConnectionError" in (c.last_error or "")
    assert len(slept) == 2


def test_from_config_uses_timeout_and_retries() -> None:
    from controller.config import WarmupConfig

    c = HttpWarmupClient.from_config(
        WarmupConfig(enabled=True, url="http://127.0.0.1:1/w", timeout=3, retries=4)
    )
    assert (c.url, c.timeout, c.retries) == ("http://127.0.0.1:1/w", 3.0, 4)


def test_credentials_in_the_url_and_echoed_headers_are_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10, item 6: a warm-up URL with user:pass@ was logged verbatim, and an upstream echoing the
    request headers put the Basic credentials into last_error."""
    import base64
    import logging

    from tests.support.faultserver import fault_server, reply

    with fault_server(lambda req, sock: reply(sock, 400, f"bad request, headers were {req.headers}")) as srv:
        host = srv.url.removeprefix("http://")
        client = HttpWarmupClient(f"http://svc:s3cretpw@{host}/warm", retries=0)
        with caplog.at_level(logging.DEBUG):
            assert client.warm("k1", 3, "RampAhead") is False
    creds = base64.b64encode(b"svc:s3cretpw").decode()
    # the call itself still authenticates
    assert srv.requests[0].headers.get("Authorization") == f"Basic {creds}"
    for text in (caplog.text, client.last_error or "", client.describe()):
        assert "s3cretpw" not in text and creds not in text, text
    assert "HTTP 400" in (client.last_error or "")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(status: int) -> None:
    """Issue 10, item 8: a 307 to another host re-sent the POST body (and Idempotency-Key) there."""
    from tests.support.faultserver import fault_server, reply

    with fault_server(lambda req, sock: reply(sock, 200, {"ok": True})) as other:
        elsewhere = other.url.replace("127.0.0.1", "localhost") + "/steal"
        with fault_server(lambda req, sock: reply(sock, status, "", {"Location": elsewhere})) as srv:
            client = HttpWarmupClient(srv.url + "/warm", retries=2, sleep=lambda s: None)
            assert client.warm("k1", 3, "RampAhead") is False
        assert other.requests == []  # nothing reached the other host
    assert len(srv.requests) == 1  # not retried either: a redirect will not go away
    assert f"HTTP {status}" in (client.last_error or "") and "not followed" in (client.last_error or "")
    assert "controller.warmup.url" in (client.last_error or "")


def test_a_dripping_warmup_service_cannot_stall_the_tick() -> None:
    """Sibling of issue 10, item 3: warm-ups run inside the control tick; a service that drips a byte every
    0.25 s never trips the 1 s read timeout and held the tick for a minute."""
    from tests.support.faultserver import drip, fault_server

    with fault_server(drip(0.25)) as srv:
        client = HttpWarmupClient(srv.url + "/warm", timeout=1.0, retries=1, sleep=lambda s: None)
        t0 = time.monotonic()
        assert client.warm("k1", 3, "RampAhead") is False
        assert time.monotonic() - t0 < 2 * 1.0 + 1.0
    assert "1s" in (client.last_error or "")
