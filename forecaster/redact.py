"""One redaction for every text that can leave the process: log lines, error messages, probe bodies.

Credentials reach text in three ways (issue 10, item 6): in URLs (``https://user:pass@host``, ``?token=``),
in HTTP headers an upstream echoes back (``Authorization: Basic ...``, ``Bearer ...``), and as the raw
values of secrets the product itself read (a bearer token file, a password file, a tenant header).
:func:`redact` removes all three; :func:`remember` adds a secret value the product has read, so that the
logging filter installed by :func:`forecaster.logs.setup_logging` and the CLI's error line redact it too
wherever it turns up. Pure text processing: no I/O.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable

MASK = "<redacted>"
_MIN_SECRET = 4  # shorter values would mask ordinary words

# scheme://user[:password]@  ->  scheme://<redacted>@
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<info>[^/@\s\"'<>]+)@")
# Authorization: Basic xxx / Proxy-Authorization=Bearer xxx / "authorization": "..."
_AUTH_HEADER = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization|x-api-key|api-key|x-auth-token|cookie|set-cookie)"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(?P<kind>basic|bearer|digest|token|negotiate)\s+)?"
    r"(?P<value>[^\s\"',;}\]]+)",
    re.IGNORECASE,
)
# a bare "Bearer abc..." / "Basic dXNlcjpw..." without a header name
_SCHEME_TOKEN = re.compile(r"\b(?P<kind>Bearer|Basic)\s+(?P<value>[A-Za-z0-9._~+/=\-]{8,})")
# ?token=... &password=... access_token=... (query strings and key=value text)
_QUERY_SECRET = re.compile(
    r"(?P<key>\b(?:access_token|id_token|refresh_token|token|password|passwd|pwd|secret|api_key|apikey"
    r"|client_secret|auth)=)(?P<value>[^&\s\"'#]+)",
    re.IGNORECASE,
)

_known: set[str] = set()
_lock = threading.Lock()


def remember(*secrets: str | None) -> None:
    """Redact these values (and their base64 forms) everywhere from now on. Short values are ignored."""
    with _lock:
        for s in secrets:
            if s and len(s) >= _MIN_SECRET:
                _known.add(s)


def _forms(secret: str) -> list[str]:
    return [secret, base64.b64encode(secret.encode()).decode()]


def _header(m: re.Match[str]) -> str:
    kind = f"{m['kind']} " if m["kind"] else ""
    return f"{m['name']}{m['sep']}{kind}{MASK}"


def _tokenish(value: str) -> bool:
    """A credential rather than a word: it has a digit or a symbol, or mixes upper and lower case."""
    return (
        any(c.isdigit() or c in "._~+/=-" for c in value)
        or (any(c.isupper() for c in value) and any(c.islower() for c in value))
    )


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without URL credentials, authorization header values, secret query parameters, the given
    ``secrets`` and every value passed to :func:`remember` (each also in base64)."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    out = _AUTH_HEADER.sub(_header, out)
    out = _SCHEME_TOKEN.sub(lambda m: f"{m['kind']} {MASK}" if _tokenish(m["value"]) else m[0], out)
    out = _QUERY_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", out)
    with _lock:
        values = set(_known)
    values.update(s for s in secrets if s and len(s) >= _MIN_SECRET)
    for value in sorted(values, key=len, reverse=True):  # longest first: no partial leftovers
        for form in _forms(value):
            out = out.replace(form, MASK)
    return out


def redact_url(url: str) -> str:
    """A URL without its ``user:password@`` part and secret query parameters (for ``describe()`` and logs)."""
    return redact(url)
