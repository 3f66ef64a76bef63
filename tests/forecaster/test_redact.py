"""The one redaction every outward text goes through (issue 10, item 6): URLs, headers, known secrets."""

from __future__ import annotations

import base64

import pytest

from forecaster.redact import MASK, redact, remember

B64 = base64.b64encode(b"reader:hunter2").decode()


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("GET http://admin:pa55word@prom:9090/api failed", ["admin", "pa55word"],
         ["http://", "@prom:9090/api"]),
        ("https://user@host/x", ["user@"], ["@host/x"]),
        (f"denied Authorization: Basic {B64}", [B64], ["Authorization: Basic "]),
        ('{"authorization": "Bearer eyJhbGciOi.J9.sig"}', ["eyJhbGciOi"], ['"authorization": "Bearer ']),
        ("echo: Bearer s3cr3t-T0KEN-value!", ["s3cr3t-T0KEN-value"], ["Bearer "]),
        (f"headers {{'Authorization': 'Basic {B64}'}}", [B64], ["'Authorization': 'Basic "]),
        ("GET /api?query=up&token=abc123def&x=1", ["abc123def"], ["query=up", "&x=1"]),
        ("url http://h/?password=hunter2#frag", ["hunter2"], ["#frag"]),
        ("X-Api-Key: 0123456789abcdef", ["0123456789abcdef"], ["X-Api-Key: "]),
        ("Cookie: session=abcdef123", ["abcdef123"], []),
    ],
    ids=["url-userinfo", "url-user-only", "basic-header", "json-bearer", "bare-bearer", "python-dict",
         "query-token", "query-password", "api-key", "cookie"],
)
def test_redacts_credentials(text: str, gone: list[str], kept: list[str]) -> None:
    out = redact(text)
    assert MASK in out
    for g in gone:
        assert g not in out, out
    for k in kept:
        assert k in out, out


@pytest.mark.parametrize(
    "text",
    [
        "set either bearerTokenFile or basicAuth, not both",
        "HTTP Basic authentication failed; check the password file",
        "prometheus http://prom:9090: sum(rate(recharge_requests_total[5m])) returned no series",
        "the service account needs 'patch' on 'horizontalpodautoscalers' (Unauthorized)",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_given_and_remembered_secrets_and_their_base64() -> None:
    assert redact("tenant tenant-secret-42 here", ["tenant-secret-42"]) == f"tenant {MASK} here"
    remember("rotated-token-0001", None, "ab")  # None and short values are ignored
    token64 = base64.b64encode(b"rotated-token-0001").decode()
    out = redact(f"x rotated-token-0001 y {token64} ab")
    assert "rotated-token-0001" not in out and token64 not in out and out.endswith(" ab")
