"""A loopback HTTP server that misbehaves at the byte level: drips, stalls, echoes, redirects.

``http.server`` cannot send half a status line, so this one talks raw sockets. Each connection reads one
request (headers and a Content-Length body) and hands it to the server's ``behaviour``, which writes to the
socket as it likes. The suite uses it for deadline, redaction and redirect tests and the chaos suite.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FaultServer:
    url: str
    behaviour: Callable[[Request, socket.socket], None]
    requests: list[Request] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip()] = v.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, path, headers, body)


def reply(sock: socket.socket, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    """A complete, well-formed response (``body`` as JSON unless bytes/str)."""
    data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}", "Content-Type: application/json",
            "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)


def drip(every: float, *, where: str = "body", stop: threading.Event | None = None) -> Callable[..., None]:
    """A behaviour that sends one byte every ``every`` seconds, in the headers or in the body."""

    def run(req: Request, sock: socket.socket) -> None:
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
        body = body + b" " * 200
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        if where == "headers":
            payload, slow_from = head.encode() + body, 0
        else:
            sock.sendall(head.encode())
            payload, slow_from = body, 0
        for i in range(slow_from, len(payload)):
            if stop is not None and stop.is_set():
                return
            sock.sendall(payload[i : i + 1])
            time.sleep(every)

    return run


@contextmanager
def fault_server(behaviour: Callable[[Request, socket.socket], None]) -> Iterator[FaultServer]:
    state = FaultServer(url="", behaviour=behaviour)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            try:
                req = _read_request(sock)
                if req is None:
                    return
                state.requests.append(req)
                state.behaviour(req, sock)
            except OSError:
                pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
