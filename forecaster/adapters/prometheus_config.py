"""The Prometheus connection settings (``source.prometheus``), apart from the HTTP client that uses them.

The forecast job's history queries and the controller's live-load query share one connection section. It
is validated like every config section (:mod:`forecaster.configbase`): durations bounded, at most one
credential (a ``user:password@`` in the url, ``basicAuth``, ``bearerTokenFile`` or an ``Authorization``
header; ``requests`` would send only one of them and silently drop the other), and secret file paths
overridable by the environment variables the Helm chart sets. Kept out of
:mod:`forecaster.adapters.prometheus` so that reading a config does not import the HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from forecaster.configbase import Between, ConfigModel, Duration, FieldError, NonEmptyStr, check
from forecaster.errors import ConfigError

MAX_POINTS_PER_SERIES = 11_000
"""Prometheus rejects a range query whose (end - start) / step exceeds this."""

ENV_BEARER_TOKEN_FILE = "RECHARGE_PROMETHEUS_BEARER_TOKEN_FILE"
ENV_PASSWORD_FILE = "RECHARGE_PROMETHEUS_PASSWORD_FILE"
ENV_CA_FILE = "RECHARGE_PROMETHEUS_CA_FILE"


class BasicAuthConfig(ConfigModel):
    """HTTP basic authentication; the password is read from a file so it never sits in the config."""

    config_path = "source.prometheus.basicAuth"
    positional = ("username", "password_file")

    username: NonEmptyStr = Field(description="User name for HTTP basic authentication.")
    password_file: NonEmptyStr = Field(
        description="File holding the password (trailing newline ignored); re-read when it changes. "
        f"Overridable with ${ENV_PASSWORD_FILE}."
    )


class PrometheusConfig(ConfigModel):
    """Where and how to query Prometheus (or a compatible API: Thanos, Mimir, VictoriaMetrics)."""

    config_path = "source.prometheus"

    url: str = Field(
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus:9090 (no /api/v1).",
    )
    query: str = Field(
        "",
        description="PromQL expression returning exactly ONE series: the recharge request rate, e.g. "
        'sum(rate(http_requests_total{service="recharge"}[5m])). Aggregate with sum() if it returns several.',
    )
    step: Annotated[Duration, Between("0s", "1d", open_low=True)] = Field(
        Duration(300),
        description="Resolution of range queries: one sample per step. Also the history's interval.",
        json_schema_extra={"unit": "s"},
    )
    timeout: Annotated[Duration, Between("0s", "10m", open_low=True)] = Field(
        Duration(30),
        description="Total time one HTTP request may take (connect, send and the whole reply, however "
        "slowly it arrives), also sent to Prometheus as the query timeout.",
        json_schema_extra={"unit": "s"},
    )
    connect_timeout: Annotated[Duration, Between("0s", "5m", open_low=True)] = Field(
        Duration(5), description="TCP/TLS connect timeout.", json_schema_extra={"unit": "s"},
    )
    retries: int = Field(
        3, ge=0, le=10,
        description="Extra attempts after a 5xx, 429, timeout or connection error (never after other 4xx).",
        json_schema_extra={"unit": "count"},
    )
    backoff: Annotated[Duration, Between("0s", "10m")] = Field(
        Duration(1),
        description="First retry delay; doubles on each retry, with random jitter of up to half.",
        json_schema_extra={"unit": "s"},
    )
    max_backoff: Annotated[Duration, Between("0s", "1h")] = Field(
        Duration(30), description="Upper bound of one retry delay.", json_schema_extra={"unit": "s"},
    )
    max_points_per_request: int = Field(
        MAX_POINTS_PER_SERIES, ge=2, le=MAX_POINTS_PER_SERIES,
        description="Most samples per series in one range request; longer windows are split. At most 11000.",
        json_schema_extra={"unit": "samples"},
    )
    bearer_token_file: str | None = Field(
        None,
        description="File holding a bearer token (e.g. a projected service-account token); re-read when it "
        f"changes. Overridable with ${ENV_BEARER_TOKEN_FILE}.",
    )
    basic_auth: BasicAuthConfig | None = Field(
        None, description="HTTP basic authentication (username + passwordFile).",
    )
    ca_file: str | None = Field(
        None,
        description=f"PEM bundle of CAs that sign the server certificate. Overridable with ${ENV_CA_FILE}.",
    )
    insecure_skip_verify: bool = Field(
        False, description="Skip TLS certificate verification. Only for testing; logs a warning.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers, e.g. X-Scope-OrgID for multi-tenant Mimir/Cortex. Never logged.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http:// or https:// URL, got {safe_url(url)!r}")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check(self.max_backoff >= self.backoff, "maxBackoff", "must be at least backoff")
        given = self.credentials()
        if len(given) > 1:
            (first, first_what), (second, second_what) = given[:2]
            raise FieldError(
                second,
                f"set either {first} or {second}, not both: {first_what} and {second_what} would be sent "
                "as one Authorization header, so one would be silently dropped",
            )
        return self

    def credentials(self) -> list[tuple[str, str]]:
        """The credentials configured, as (field, what it sends); more than one is a conflict."""
        out = []
        parts = urlsplit(self.url)
        if parts.username is not None or parts.password is not None:
            out.append(("url", "the user:password@ in url (Basic)"))
        if self.basic_auth is not None:
            out.append(("basicAuth", "basicAuth (Basic)"))
        if self.bearer_token_file:
            out.append(("bearerTokenFile", "bearerTokenFile (Bearer)"))
        if any(k.lower() == "authorization" for k in self.headers):
            out.append(("headers.Authorization", "the Authorization header"))
        return out


def with_env_overrides(cfg: PrometheusConfig, environ: Mapping[str, str]) -> PrometheusConfig:
    """Apply the ``RECHARGE_PROMETHEUS_*_FILE`` environment variables (secret paths mounted by the chart)."""
    changes: dict[str, Any] = {}
    if environ.get(ENV_BEARER_TOKEN_FILE):
        changes["bearer_token_file"] = environ[ENV_BEARER_TOKEN_FILE]
    if environ.get(ENV_CA_FILE):
        changes["ca_file"] = environ[ENV_CA_FILE]
    if environ.get(ENV_PASSWORD_FILE):
        if cfg.basic_auth is None:
            raise ConfigError(
                f"source.prometheus.basicAuth: ${ENV_PASSWORD_FILE} is set but basicAuth.username "
                "is not configured"
            )
        changes["basic_auth"] = cfg.basic_auth.evolve(password_file=environ[ENV_PASSWORD_FILE])
    return cfg.evolve(**changes) if changes else cfg


def safe_url(url: str) -> str:
    """The URL without any user:password@ part (and redacted like every outward text)."""
    from forecaster.redact import redact

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return redact(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return redact(urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)))
