"""The Prometheus connection section: bounded durations, one credential, env overrides of secret paths."""

from __future__ import annotations

from typing import Any

import pytest

from forecaster.adapters.prometheus_config import (
    ENV_BEARER_TOKEN_FILE,
    ENV_PASSWORD_FILE,
    BasicAuthConfig,
    PrometheusConfig,
    with_env_overrides,
)
from forecaster.errors import ConfigError


def test_env_overrides_secret_paths() -> None:
    cfg = PrometheusConfig(url="http://p:9090", query="q", basic_auth=BasicAuthConfig("u", "/etc/pw"))
    out = with_env_overrides(cfg, {ENV_PASSWORD_FILE: "/run/pw"})
    assert out.basic_auth is not None and out.basic_auth.password_file == "/run/pw"
    out = with_env_overrides(PrometheusConfig(url="http://p:9090"), {ENV_BEARER_TOKEN_FILE: "/run/token"})
    assert out.bearer_token_file == "/run/token"
    with pytest.raises(ConfigError, match="basicAuth"):
        with_env_overrides(PrometheusConfig(url="http://p:9090"), {ENV_PASSWORD_FILE: "/run/pw"})
    # a token mounted by the chart next to credentials in the url would silently lose to Basic: refused
    with pytest.raises(ConfigError, match="set either url or bearerTokenFile, not both"):
        with_env_overrides(PrometheusConfig(url="http://u:pw@p:9090"), {ENV_BEARER_TOKEN_FILE: "/run/token"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "prometheus:9090"}, "source.prometheus.url"),
        ({"url": "http://p", "max_points_per_request": 20_000}, "maxPointsPerRequest"),
        ({"url": "http://p", "retries": -1}, "retries"),
        (
            {"url": "http://p", "bearer_token_file": "/t", "basic_auth": BasicAuthConfig("u", "/p")},
            "not both",
        ),
        (
            {"url": "http://user:secret@p:9090", "bearer_token_file": "/t"},
            "source.prometheus.bearerTokenFile: set either url or bearerTokenFile, not both",
        ),
        (
            {"url": "http://user:secret@p:9090", "basic_auth": BasicAuthConfig("u", "/p")},
            "source.prometheus.basicAuth: set either url or basicAuth, not both",
        ),
        (
            {"url": "http://p", "basic_auth": BasicAuthConfig("u", "/p"), "headers": {"authorization": "x"}},
            "source.prometheus.headers.Authorization: set either basicAuth or headers.Authorization",
        ),
        (
            {"url": "http://p", "timeout": 10**9},
            "source.prometheus.timeout: must be positive and at most 10m",
        ),
    ],
    ids=[
        "no-scheme",
        "too-many-points",
        "negative-retries",
        "two-auths",
        "url-credentials-and-token",
        "url-credentials-and-basic-auth",
        "basic-auth-and-authorization-header",
        "absurd-timeout",
    ],
)
def test_config_validation_names_the_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PrometheusConfig(**kwargs)
