"""PrometheusSource faults and transport against a loopback HTTP server that misbehaves on purpose."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import math
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from forecaster.adapters.prometheus import PrometheusSource
from forecaster.adapters.prometheus_config import BasicAuthConfig, PrometheusConfig
from forecaster.errors import ConfigError, SourceError

T0 = 1_700_000_100  # a multiple of 300
SECRET = "s3cr3t-T0KEN-value"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> raw text; callable(params, headers) -> dict
    delay: float = 0.0


@dataclass
class FakeProm:
    url: str
    replies: list[Reply] = field(default_factory=list)
    default: Callable[[dict[str, str], dict[str, str]], Any] | None = None
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)


def matrix(
    series: list[tuple[dict[str, str], list[tuple[int, str]]]], warnings: list[str] | None = None
) -> dict:
    body: dict[str, Any] = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": m, "values": [[t, v] for t, v in vals]} for m, vals in series],
        },
    }
    if warnings:
        body["warnings"] = warnings
    return body


def ramp(params: dict[str, str], headers: dict[str, str]) -> dict:
    """A well-behaved range query: value = (t - T0) / 300 at every step of the requested window."""
    start, end, step = int(params["start"]), int(params["end"]), int(params["step"])
    return matrix([({}, [(t, str((t - T0) / 300)) for t in range(start, end + 1, step)])])


@pytest.fixture
def fake() -> Iterator[FakeProm]:
    state = FakeProm(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            headers = dict(self.headers.items())
            state.requests.append((parts.path, params, headers))
            reply = state.replies.pop(0) if state.replies else Reply(body=state.default)
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.body(params, headers) if callable(reply.body) else reply.body
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    state.default = ramp
    yield state
    server.shutdown()
    server.server_close()


def source(url: str, sleeps: list[float] | None = None, **kw: Any) -> PrometheusSource:
    kw.setdefault("retries", 2)
    kw.setdefault("timeout", 5)
    cfg = PrometheusConfig(url=url, query="sum(rate(recharge_requests_total[5m]))", step=300, **kw)
    return PrometheusSource(cfg, sleep=(sleeps if sleeps is not None else []).append, jitter=lambda: 0.5)


def window(points: int) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]:
    start = pd.Timestamp(T0, unit="s", tz="UTC")
    return start, start + pd.Timedelta(seconds=300 * (points - 1)), pd.Timedelta(seconds=300)


# -- chunking --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "per", "requests"),
    [(10, 11_000, 1), (10, 5, 2), (10, 3, 4), (11, 2, 6), (25_000, 11_000, 3)],
    ids=["one", "exact-split", "ragged", "pairs", "long-window"],
)
def test_chunks_cover_the_window_once(fake: FakeProm, points: int, per: int, requests: int) -> None:
    src = source(fake.url, max_points_per_request=per)
    got = src.history(*window(points))
    assert len(fake.requests) == requests
    assert got.tolist() == [float(i) for i in range(points)]
    bounds = [(int(p["start"]), int(p["end"])) for _, p, _ in fake.requests]
    assert bounds[0][0] == T0 and bounds[-1][1] == T0 + 300 * (points - 1)
    for (_, prev_end), (next_start, _) in itertools.pairwise(bounds):
        assert next_start == prev_end + 300, "no overlap and no hole between chunks"
    assert all((end - start) // 300 + 1 <= per for start, end in bounds)


def test_missing_steps_stay_nan_and_are_reported(fake: FakeProm) -> None:
    fake.default = lambda p, h: matrix(
        [({}, [(T0, "1"), (T0 + 300, "NaN"), (T0 + 600, "+Inf"), (T0 + 1500, "5")])]
    )
    src = source(fake.url)
    got = src.history(*window(6))
    assert got.iloc[0] == 1 and got.iloc[5] == 5
    assert got.iloc[1:5].isna().all(), "gaps and NaN/Inf are NaN, never zeros"
    assert src.last_report is not None
    assert (src.last_report.missing, src.last_report.non_finite) == (4, 2)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(body=matrix([])), "no samples between"),
        (
            Reply(body=matrix([({"pod": "a"}, [(T0, "1")]), ({"pod": "b"}, [(T0, "2")])])),
            r'returned 2 series \({pod="a"}, {pod="b"}\).*sum\(',
        ),
        (Reply(body={"status": "success", "data": {"resultType": "vector", "result": []}}), "matrix"),
        (
            Reply(
                status=400,
                body={"status": "error", "errorType": "bad_data", "error": "parse error at char 5"},
            ),
            "HTTP 400: bad_data: parse error at char 5",
        ),
        (
            Reply(
                status=422, body={"status": "error", "errorType": "execution", "error": "too many samples"}
            ),
            "execution: too many samples",
        ),
        (
            Reply(body={"status": "error", "errorType": "internal", "error": "boom"}),
            "query failed: internal: boom",
        ),
        (Reply(body="<html>Grafana</html>"), "not JSON"),
        (Reply(status=404, body="404 page not found"), "HTTP 404: 404 page not found"),
    ],
    ids=["empty", "two-series", "not-matrix", "http-400", "http-422", "status-error", "html", "404"],
)
def test_bad_answers_are_clear_errors(fake: FakeProm, reply: Reply, match: str) -> None:
    fake.replies = [reply]
    src = source(fake.url)
    with pytest.raises(SourceError, match=match):
        src.history(*window(3))
    assert len(fake.requests) == 1, "4xx and bad bodies are not retried"


def test_series_labels_differing_between_chunks_are_rejected(fake: FakeProm) -> None:
    fake.replies = [
        Reply(body=matrix([({"pod": "a"}, [(T0, "1"), (T0 + 300, "1")])])),
        Reply(body=matrix([({"pod": "b"}, [(T0 + 600, "1")])])),
    ]
    with pytest.raises(SourceError, match="returned 2 series"):
        source(fake.url, max_points_per_request=2).history(*window(3))


def test_warnings_are_logged(fake: FakeProm, caplog: pytest.LogCaptureFixture) -> None:
    fake.replies = [Reply(body=matrix([({}, [(T0, "1")])], warnings=["partial response: store unreachable"]))]
    src = source(fake.url)
    with caplog.at_level(logging.WARNING):
        src.history(*window(1))
    assert "partial response: store unreachable" in caplog.text
    assert src.last_report is not None and src.last_report.warnings == (
        "partial response: store unreachable",
    )


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429], ids=["500", "502", "503", "429"])
def test_retryable_status_then_success(fake: FakeProm, status: int) -> None:
    fake.replies = [Reply(status=status, body={"status": "error", "errorType": "unavailable", "error": "x"})]
    sleeps: list[float] = []
    got = source(fake.url, sleeps, backoff=1).history(*window(3))
    assert got.tolist() == [0.0, 1.0, 2.0]
    assert len(fake.requests) == 2 and sleeps == [0.75]


def test_retries_are_bounded_with_exponential_backoff(fake: FakeProm) -> None:
    fake.replies = [Reply(status=503, body="overloaded")] * 4
    sleeps: list[float] = []
    with pytest.raises(SourceError, match=r"HTTP 503: overloaded \(gave up after 4 attempts\)"):
        source(fake.url, sleeps, retries=3, backoff=2, max_backoff=5).history(*window(3))
    assert len(fake.requests) == 4
    assert sleeps == [1.5, 3.0, 3.75], "2s, 4s, then capped at 5s; each with jitter (fixed at 0.5 here)"


def test_closed_port_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(SourceError, match=r"connection failed.*gave up after 3 attempts"):
        source(f"http://127.0.0.1:{port}", sleeps).history(*window(3))
    assert len(sleeps) == 2


def test_slow_response_times_out_and_is_retried(fake: FakeProm) -> None:
    fake.replies = [Reply(delay=1.0, body=matrix([]))]
    sleeps: list[float] = []
    t0 = time.monotonic()
    got = source(fake.url, sleeps, timeout=0.2, retries=1).history(*window(2))
    assert got.tolist() == [0.0, 1.0]
    assert len(sleeps) == 1 and time.monotonic() - t0 < 1.0


def test_slow_response_without_retries_fails_with_timeout(fake: FakeProm) -> None:
    fake.replies = [Reply(delay=1.0, body=matrix([]))]
    with pytest.raises(SourceError, match=r"timed out.*gave up after 1 attempts"):
        source(fake.url, timeout=0.2, retries=0).history(*window(2))


# -- auth and secrets ------------------------------------------------------------------------------


def echo_headers(params: dict[str, str], headers: dict[str, str]) -> dict:
    return {"status": "error", "errorType": "unauthorized", "error": f"denied {headers.get('Authorization')}"}


def test_bearer_token_is_reread_when_it_rotates(fake: FakeProm, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    src = source(fake.url, bearer_token_file=str(token))
    src.history(*window(1))
    token.write_text("second-token-rotated\n")
    os.utime(token, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    src.history(*window(1))
    auths = [h.get("Authorization") for _, _, h in fake.requests]
    assert auths == ["Bearer first-token", "Bearer second-token-rotated"]


def test_basic_auth_password_comes_from_a_file(fake: FakeProm, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("hunter2\n")
    src = source(fake.url, basic_auth=BasicAuthConfig(username="reader", password_file=str(pw)))
    src.history(*window(1))
    assert fake.requests[0][2]["Authorization"] == "Basic " + base64.b64encode(b"reader:hunter2").decode()


@pytest.mark.parametrize("status", [401, 500], ids=["rejected", "retried"])
def test_secrets_never_reach_errors_or_logs(
    fake: FakeProm, tmp_path: Path, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    token = tmp_path / "token"
    token.write_text(SECRET)
    fake.replies = [Reply(status=status, body=echo_headers)] * 3
    src = source(fake.url, bearer_token_file=str(token), headers={"X-Scope-OrgID": "tenant-secret-42"})
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        src.history(*window(1))
    assert f"HTTP {status}" in str(err.value) and "<redacted>" in str(err.value)
    for text in (str(err.value), caplog.text, src.describe()):
        assert SECRET not in text and "tenant-secret-42" not in text


def test_password_in_url_is_not_shown() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = source(f"http://admin:pa55word@127.0.0.1:{port}", retries=0)
    with pytest.raises(SourceError) as err:
        src.history(*window(1))
    assert "pa55word" not in str(err.value) and "pa55word" not in src.describe()


@pytest.mark.parametrize(
    ("content", "match"), [(None, "cannot read"), ("\n", "is empty")], ids=["missing", "empty"]
)
def test_unreadable_token_file_names_the_field(
    fake: FakeProm, tmp_path: Path, content: str | None, match: str
) -> None:
    token = tmp_path / "token"
    if content is not None:
        token.write_text(content)
    with pytest.raises(ConfigError, match=f"bearerTokenFile: .*{match}"):
        source(fake.url, bearer_token_file=str(token)).history(*window(1))


# -- instant queries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"resultType": "vector", "result": [{"metric": {}, "value": [T0, "123.5"]}]}, 123.5),
        ({"resultType": "scalar", "result": [T0, "7"]}, 7.0),
        ({"resultType": "vector", "result": []}, "no series"),
        (
            {
                "resultType": "vector",
                "result": [
                    {"metric": {"a": "1"}, "value": [T0, "1"]},
                    {"metric": {"a": "2"}, "value": [T0, "1"]},
                ],
            },
            "sum",
        ),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [T0, "NaN"]}]}, "not a finite number"),
    ],
    ids=["vector", "scalar", "empty", "two-series", "nan"],
)
def test_instant(fake: FakeProm, body: dict, expected: float | str) -> None:
    fake.replies = [Reply(body={"status": "success", "data": body})]
    src = source(fake.url)
    at = pd.Timestamp(T0, unit="s", tz="UTC")
    if isinstance(expected, float):
        assert src.instant("sum(rate(x[1m]))", at) == expected
        assert fake.requests[0][0] == "/api/v1/query" and float(fake.requests[0][1]["time"]) == T0
    else:
        with pytest.raises(SourceError, match=expected):
            src.instant("sum(rate(x[1m]))", at)


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            data = json.dumps(ramp(params, {})).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


def test_tls_verification_is_on_by_default(tls_server: tuple[str, str]) -> None:
    url, _ = tls_server
    with pytest.raises(SourceError, match=r"TLS error.*caFile"):
        source(url, retries=0).history(*window(2))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("mode", ["ca-file", "skip-verify"])
def test_tls_with_ca_file_or_skip_verify(tls_server: tuple[str, str], mode: str) -> None:
    url, cert = tls_server
    kw: dict[str, Any] = {"ca_file": cert} if mode == "ca-file" else {"insecure_skip_verify": True}
    assert source(url, retries=0, **kw).history(*window(2)).tolist() == [0.0, 1.0]


def test_history_index_is_utc_on_the_step_grid(fake: FakeProm) -> None:
    start = pd.Timestamp(T0 + 1, unit="s", tz="UTC").tz_convert("Asia/Jakarta")
    got = source(fake.url).history(start, start + pd.Timedelta(minutes=20), pd.Timedelta(minutes=5))
    assert str(got.index.tz) == "UTC" and got.index.name == "ds"
    assert [int(t.timestamp()) for t in got.index] == [T0 + 300, T0 + 600, T0 + 900, T0 + 1200]
    assert not math.isnan(got.sum())


@pytest.mark.parametrize(
    "body",
    [{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[T0]]}]}},
     {"status": "success", "data": {"resultType": "matrix", "result": ["oops"]}}],
    ids=["short-sample", "not-an-object"],
)
def test_malformed_result_is_a_source_error(fake: FakeProm, body: dict) -> None:
    fake.replies = [Reply(body=body)]
    with pytest.raises(SourceError, match="malformed range query result"):
        source(fake.url).history(*window(2))


# -- total deadline per request (issue 10, item 3) -------------------------------------------------


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_dripping_server_cannot_outlast_the_timeout(where: str) -> None:
    """One byte every 0.25 s never trips a 1 s read timeout; the request still ends after 1 s."""
    from tests.support.faultserver import drip, fault_server

    with fault_server(drip(0.25, where=where)) as srv:
        src = source(srv.url, timeout=1, retries=1)
        t0 = time.monotonic()
        with pytest.raises(SourceError, match=r"timed out after 1s.*gave up after 2 attempts"):
            src.instant("up", pd.Timestamp.now(tz="UTC"))
        assert time.monotonic() - t0 < 2 * 1 + 1.0  # two attempts of 1 s each, back-off is faked
        assert len(srv.requests) == 2


def test_echoed_basic_auth_header_never_reaches_the_error(fake: FakeProm, tmp_path: Path) -> None:
    """Issue 10, item 6: an upstream that echoes the request headers put 'Authorization: Basic ...' in the
    error line (the password was masked, its base64 form with the user name was not)."""
    pw = tmp_path / "pw"
    pw.write_text("hunter2")
    echo = lambda p, h: f"forbidden; you sent Authorization: {h['Authorization']}"  # noqa: E731
    fake.replies = [Reply(status=403, body=echo)]
    src = source(fake.url, retries=0, basic_auth=BasicAuthConfig("reader", str(pw)))
    with pytest.raises(SourceError) as err:
        src.history(*window(1))
    creds = base64.b64encode(b"reader:hunter2").decode()
    assert "HTTP 403" in str(err.value) and creds not in str(err.value) and "hunter2" not in str(err.value)


def test_credentials_in_the_url_never_reach_errors_or_logs(
    fake: FakeProm, caplog: pytest.LogCaptureFixture
) -> None:
    """The URL's user:pass@ becomes a Basic header the upstream may echo; neither form may be shown."""
    host = fake.url.removeprefix("http://")
    fake.replies = [Reply(status=502, body=lambda p, h: f"bad gateway for {h.get('Authorization')}")] * 2
    src = source(f"http://admin:pa55word@{host}", retries=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        src.history(*window(1))
    creds = base64.b64encode(b"admin:pa55word").decode()
    for text in (str(err.value), caplog.text, src.describe()):
        assert "pa55word" not in text and creds not in text, text


def test_redirect_to_another_host_is_not_followed(tmp_path: Path) -> None:
    """Issue 10, item 8's sibling: the tenant header and token must not follow a redirect to another host;
    a redirect on the same host (a path prefix) still works."""
    from tests.support.faultserver import fault_server, reply

    token = tmp_path / "token"
    token.write_text(SECRET)
    result = [{"metric": {}, "value": [1, "5"]}]
    ok = {"status": "success", "data": {"resultType": "vector", "result": result}}
    with fault_server(lambda req, sock: reply(sock, 200, ok)) as other:
        elsewhere = other.url.replace("127.0.0.1", "localhost")

        def behaviour(req: Any, sock: socket.socket) -> None:
            if req.path.startswith("/prefix/"):
                reply(sock, 200, ok)
            elif "same" in req.path or "same" in req.headers.get("X-Case", ""):
                reply(sock, 307, "", {"Location": "/prefix" + req.path})
            else:
                reply(sock, 307, "", {"Location": elsewhere + req.path})

        with fault_server(behaviour) as srv:
            src = source(srv.url, retries=0, bearer_token_file=str(token), headers={"X-Scope-OrgID": "t-42"})
            with pytest.raises(SourceError, match=r"redirect.*not followed"):
                src.instant("up", pd.Timestamp.now(tz="UTC"))
            assert other.requests == []
            same = source(srv.url, retries=0, headers={"X-Case": "same"})
            assert same.instant("up", pd.Timestamp.now(tz="UTC")) == 5.0
