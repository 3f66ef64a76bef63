"""A thin fault-injecting proxy in front of the real kube-apiserver, for failures a healthy one never gives.

The suite's API server (:mod:`tests.support.kube_envtest`) is real, so 404, 409 (a concurrent writer) and 403
(a missing RBAC verb) come from it. What it will not produce on demand are the failures of a sick or distant
one: 5xx, 429, slow answers and dropped connections. :class:`KubeFaultProxy` listens on a loopback port and
forwards every request unchanged to the server over TLS, verified against the server's CA. Given the
server's own serving certificate and key it speaks TLS itself, so clients verify it with the same CA file
(kubectl and helm send a bearer token only over TLS); tests point the code under test at
:attr:`KubeFaultProxy.url` and tell the proxy what to do with the next N requests that match a method and a
path regex:

- :meth:`~KubeFaultProxy.fail`: answer ``status`` with a ``Status`` body like the server's, without
  forwarding (the server never sees the request);
- :meth:`~KubeFaultProxy.slow`: sleep, then forward (a client with a shorter timeout gives up first);
- :meth:`~KubeFaultProxy.drop`: close the connection without an answer, before forwarding or (``after``)
  once the server has applied the request and only the answer is lost;
- :meth:`~KubeFaultProxy.before`: run a callback (a concurrent writer, usually) and then forward, so the
  server itself answers 409 to the request that carried the now stale ``resourceVersion``.

Every request is recorded in :attr:`~KubeFaultProxy.requests` with the status the client got, so tests can
count reads and writes. The proxy never interprets the API: it knows HTTP, not Kubernetes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
REASONS = {429: "TooManyRequests", 500: "InternalError", 502: "", 503: "ServiceUnavailable", 504: "Timeout"}
UPSTREAM_TIMEOUT_S = 60.0


@dataclass
class Rule:
    """What to do with the next ``count`` requests matching ``method`` and ``path`` (a regex, searched)."""

    action: str  # "fail" | "slow" | "drop" | "before"
    count: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    status: int = 0
    message: str = ""
    delay: float = 0.0
    after: bool = False
    callback: Callable[[], Any] | None = None
    hits: int = 0
    errors: list[BaseException] = field(default_factory=list)  # what ``callback`` raised, if anything

    def matches(self, method: str, path: str) -> bool:
        return (
            self.count > 0
            and (self.method is None or self.method == method)
            and (self.path is None or self.path.search(path) is not None)
        )


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it; ``status`` is what the client got (0: connection dropped)."""

    method: str
    path: str
    query: str
    content_type: str
    body: Any
    status: int
    injected: str = ""  # the rule's action when a rule acted on it


@dataclass
class KubeFaultProxy:
    """Loopback HTTP proxy to ``upstream`` (the API server's https URL) verified with ``ca_file``."""

    upstream: str
    ca_file: Path
    cert_file: Path | None = None  # serve TLS with this certificate and key (the API server's own)
    key_file: Path | None = None
    requests: list[Seen] = field(default_factory=list)
    _rules: list[Rule] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _httpd: ThreadingHTTPServer | None = field(default=None, repr=False)
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)
    _serve_ssl: ssl.SSLContext | None = field(default=None, repr=False)

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> KubeFaultProxy:
        self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file is not None:
            self._serve_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._serve_ssl.load_cert_chain(str(self.cert_file), str(self.key_file or self.cert_file))
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._httpd = _Server(("127.0.0.1", 0), handler, self._serve_ssl)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="kubeproxy", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> KubeFaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "proxy not started"
        scheme = "https" if self._serve_ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    # --- what to do with the next requests ------------------------------------------------------------------

    def _add(self, action: str, count: int, method: str | None, path: str | None, **kw: Any) -> Rule:
        rule = Rule(
            action,
            count,
            method.upper() if method else None,
            re.compile(path) if path is not None else None,
            **kw,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(
        self,
        status: int,
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        message: str | None = None,
    ) -> Rule:
        """Answer the next ``count`` matching requests with ``status`` (a ``Status`` body), not forwarded."""
        return self._add(
            "fail",
            count,
            method,
            path,
            status=status,
            message=message or f"injected by the test proxy: HTTP {status}",
        )

    def slow(
        self, seconds: float, count: int = 1, *, method: str | None = None, path: str | None = None
    ) -> Rule:
        """Hold the next ``count`` matching requests for ``seconds``, then forward them."""
        return self._add("slow", count, method, path, delay=seconds)

    def drop(
        self, count: int = 1, *, method: str | None = None, path: str | None = None, after: bool = False
    ) -> Rule:
        """Close the connection of the next ``count`` matching requests without answering.

        ``after``: forward first, so the server applies the request and only its answer is lost.
        """
        return self._add("drop", count, method, path, after=after)

    def before(
        self,
        callback: Callable[[], Any],
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> Rule:
        """Run ``callback()`` before forwarding each of the next ``count`` matching requests."""
        return self._add("before", count, method, path, callback=callback)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    rule.hits += 1
                    return rule
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """Recorded requests with this method (any when None) whose path matches the regex ``path``."""
        with self._lock:
            seen = list(self.requests)
        return [
            s
            for s in seen
            if (method is None or s.method == method.upper()) and (path is None or re.search(path, s.path))
        ]

    # --- clients --------------------------------------------------------------------------------------------

    def api_client(self, token: str, *, timeout_retries: bool = False) -> Any:
        """A ``kubernetes.client.ApiClient`` through the proxy as ``token``, without urllib3's own retries."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.api_key = {"authorization": f"Bearer {token}"}
        if not timeout_retries:
            cfg.retries = False
        return client.ApiClient(cfg)

    def write_kubeconfig(self, path: Path, *, token: str, namespace: str = "default") -> Path:
        """A kubeconfig whose server is the proxy (for the product's CLI, kubectl and helm)."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "envtest-proxy",
            "preferences": {},
            "clusters": [
                {
                    "name": "envtest-proxy",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "proxy-user", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "envtest-proxy",
                    "context": {"cluster": "envtest-proxy", "user": "proxy-user", "namespace": namespace},
                }
            ],
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

    # --- forwarding -----------------------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPSConnection:
        parts = urlsplit(self.upstream)
        assert parts.hostname and parts.port and self._ssl is not None
        return http.client.HTTPSConnection(
            parts.hostname, parts.port, context=self._ssl, timeout=UPSTREAM_TIMEOUT_S
        )


def _status_body(status: int, message: str) -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": REASONS.get(status, ""),
            "code": status,
        }
    ).encode()


class _Server(ThreadingHTTPServer):
    """Accepts plain sockets and wraps them in TLS in the connection's own thread (see _Handler.setup)."""

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None
    ) -> None:
        self.tls = tls
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


class _Handler(BaseHTTPRequestHandler):
    proxy: KubeFaultProxy
    protocol_version = "HTTP/1.1"
    _upstream: http.client.HTTPSConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(UPSTREAM_TIMEOUT_S)
            self.request.do_handshake()  # here, not in the accept loop: a slow client blocks only itself
            self.request.settimeout(None)
        super().setup()

    def handle(self) -> None:
        with contextlib.suppress(ssl.SSLError, OSError):
            super().handle()

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        with contextlib.suppress(OSError):
            super().finish()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        path, _, query = self.path.partition("?")
        content_type = self.headers.get("Content-Type", "")
        parsed: Any = None
        if body and ("json" in content_type or not content_type):  # the python client may omit the header
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        rule = self.proxy._take(self.command, path)

        def record(status: int) -> None:
            self.proxy._record(
                Seen(self.command, path, query, content_type, parsed, status, rule.action if rule else "")
            )

        if rule is not None and rule.action == "fail":
            self._answer(rule.status, rule.message)
            record(rule.status)
            return
        if rule is not None and rule.action == "drop" and not rule.after:
            record(0)
            self._hang_up()
            return
        if rule is not None and rule.action == "slow":
            time.sleep(rule.delay)
        if rule is not None and rule.action == "before":
            assert rule.callback is not None
            try:
                rule.callback()
            except Exception as exc:  # kept for the test to see; the request is forwarded anyway
                rule.errors.append(exc)
        try:
            response = self._forward(body)
        except (OSError, http.client.HTTPException) as exc:  # the server is gone (end of the session)
            self._answer(502, f"test proxy: no answer from the API server ({exc})")
            record(502)
            return
        if rule is not None and rule.action == "drop":
            response.read()
            record(0)
            self._hang_up()
            return
        record(response.status)
        self._relay(response)

    def _answer(self, status: int, message: str) -> None:
        payload = _status_body(status, message)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status in (429, 503):
            self.send_header("Retry-After", "1")  # as kube-apiserver does when it sheds load
        self.end_headers()
        self.wfile.write(payload)

    def _forward(self, body: bytes) -> http.client.HTTPResponse:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed by the server
            if self._upstream is None:
                self._upstream = self.proxy._connect()
            try:
                self._upstream.request(self.command, self.path, body=body or None, headers=headers)
                return self._upstream.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        length = response.getheader("Content-Length")
        if length is not None:
            payload = response.read()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("Transfer-Encoding", "chunked")  # a watch or another streamed answer
        self.end_headers()
        while chunk := response.read1(65536):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _serve(self) -> None:
        try:
            self._handle()
        except OSError:
            self.close_connection = True  # the client gave up (its timeout) before the answer came

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve
