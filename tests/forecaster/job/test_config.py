"""Job config: the sample loads, every mistake names its field, paths and env overrides resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from forecaster.errors import ConfigError
from forecaster.job.config import TOP_LEVEL_SECTIONS, load_job_config, parse_job_config
from tests.support.tools import REPO_ROOT

MINIMAL: dict[str, Any] = {
    "source": {
        "kind": "prometheus",
        "prometheus": {"url": "http://prometheus:9090", "query": "sum(rate(x[5m]))"},
    },
    "store": {"kind": "file", "file": {"path": "forecast.json"}},
}


def with_(path: str, value: Any) -> dict[str, Any]:
    """MINIMAL with one dotted path set (a copy)."""
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return data


def test_sample_config_loads() -> None:
    cfg = load_job_config(REPO_ROOT / "data" / "sample-config.yaml", environ={})
    assert cfg.source.kind == "file" and cfg.source.file is not None
    assert cfg.source.file.path == str(REPO_ROOT / "data" / "nyc_taxi.csv")
    assert cfg.store.file is not None and cfg.store.file.path == str(REPO_ROOT / "out" / "forecast.json")
    assert (cfg.forecast.horizon, cfg.forecast.interval) == (86400, 3600)


def test_defaults() -> None:
    cfg = parse_job_config(MINIMAL, base_dir="/etc/recharge", environ={})
    assert cfg.store.file is not None and cfg.store.file.path == "/etc/recharge/forecast.json"
    assert cfg.source.prometheus is not None and cfg.source.prometheus.step == 300
    assert cfg.source.prometheus.insecure_skip_verify is False
    assert cfg.schedule.cron == "*/30 * * * *" and cfg.metrics.port == 9109


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**MINIMAL, "sauce": {}}, "sauce: unknown top-level section"),
        (with_("source.kind", "influx"), "source.kind: 'influx' is not one of"),
        (with_("source.prometheus.stepp", "5m"), "source.prometheus.stepp: unknown field"),
        (with_("source.prometheus.step", "5 minutes"), "source.prometheus.step: cannot parse"),
        (with_("source.prometheus.retries", "3"), "source.prometheus.retries: expected an integer"),
        (with_("source.prometheus.query", ""), "source.prometheus.query: required"),
        (with_("source.prometheus.url", "prometheus:9090"), "source.prometheus.url: expected an http"),
        (
            with_("source.prometheus.basicAuth", {"username": "u"}),
            "source.prometheus.basicAuth.passwordFile: required",
        ),
        (with_("source.kind", "file"), "source.file: required when source.kind is file"),
        (with_("store.kind", "configmap"), "store.configmap: required"),
        (with_("store.configmap", {"namespace": "x"}), "store.configmap.name: required"),
        (with_("forecast.horizon", "30m"), "forecast.horizon: must be at least one forecast.interval"),
        (with_("forecast.bandLevel", 1.5), "forecast.bandLevel: must be in"),
        (with_("forecast.model", "arima9000"), "forecast.model: unknown model 'arima9000'"),
        (with_("forecast.timezone", "Mars/Olympus"), "forecast.timezone: unknown time zone"),
        (with_("forecast.calendar.paydays", [0]), r"forecast.calendar.paydays\[0\]"),
        (with_("forecast.calendar.subdivision", "CA"), "forecast.calendar.subdivision"),
        (with_("schedule.cron", "every hour"), "schedule.cron: invalid crontab"),
        (with_("metrics.port", 70000), "metrics.port: must be between"),
        (with_("logging.level", "LOUD"), "logging.level: 'LOUD' is not one of"),
        ({"store": MINIMAL["store"]}, "source: required field is missing"),
        (
            with_("source.prometheus.steps", "5m"),
            "source.prometheus.steps: unknown field; did you mean step?",
        ),
        (
            with_("forecast.history", "1000000d"),
            "forecast.history: must be positive and at most 3650d, got 1000000d",
        ),
        (
            with_("source.prometheus", {"url": "http://u:pw@p:9090", "query": "q", "bearerTokenFile": "/t"}),
            "source.prometheus.bearerTokenFile: set either url or bearerTokenFile, not both",
        ),
    ],
    ids=[
        "top-level",
        "source-kind",
        "typo",
        "bad-duration",
        "string-int",
        "empty-query",
        "url",
        "basic-auth",
        "file-missing",
        "configmap-missing",
        "configmap-name",
        "horizon",
        "band",
        "model",
        "timezone",
        "paydays",
        "subdivision",
        "cron",
        "port",
        "log-level",
        "no-source",
        "typo-suggestion",
        "absurd-duration",
        "conflicting-credentials",
    ],
)
def test_errors_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_job_config(data, environ={})


def test_controller_section_is_allowed_and_left_alone() -> None:
    assert "controller" in TOP_LEVEL_SECTIONS
    parse_job_config({**MINIMAL, "controller": {"anything": {"goes": 1}}}, environ={})


def test_env_overrides_secret_paths() -> None:
    data = with_("source.prometheus.bearerTokenFile", "/config/token")
    cfg = parse_job_config(
        data,
        environ={
            "RECHARGE_PROMETHEUS_BEARER_TOKEN_FILE": "/var/run/token",
            "RECHARGE_PROMETHEUS_CA_FILE": "/var/run/ca.pem",
        },
    )
    assert cfg.source.prometheus is not None
    assert (cfg.source.prometheus.bearer_token_file, cfg.source.prometheus.ca_file) == (
        "/var/run/token",
        "/var/run/ca.pem",
    )


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("source: {kind: file}\nstore: {kind: file, file: {path: f.json}}\n")
    with pytest.raises(ConfigError, match=f"{path}: source.file: required"):
        load_job_config(path, environ={})
    path.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        load_job_config(path, environ={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_job_config(tmp_path / "nope.yaml", environ={})


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    data = {
        "source": {"kind": "file", "file": {"path": "hist/x.csv"}},
        "store": {"kind": "file", "file": {"path": "../out/f.json"}},
        "forecast": {"calendar": {"promotionsFile": "promos.yaml"}},
    }
    cfg = parse_job_config(data, base_dir=tmp_path / "conf", environ={})
    assert cfg.source.file is not None and cfg.source.file.path == str(tmp_path / "conf" / "hist" / "x.csv")
    assert cfg.store.file is not None and cfg.store.file.path == str(tmp_path / "out" / "f.json")
    assert cfg.forecast.calendar.promotions_file == str(tmp_path / "conf" / "promos.yaml")


def test_configuration_reference_is_up_to_date() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen-config-docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_interval_must_be_a_multiple_of_the_prometheus_step() -> None:
    data = with_("source.prometheus.step", "7m")
    with pytest.raises(ConfigError, match=r"forecast\.interval: must be a multiple of source\.prometheus"):
        parse_job_config(data, environ={})


def _minimal(forecast: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": {"kind": "file", "file": {"path": "h.csv"}},
        "forecast": forecast,
        "store": {"kind": "file", "file": {"path": "f.json"}},
    }


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        (["seasonal_median", "nope"], r"forecast\.candidates\[1\]: unknown model 'nope'"),
        ([], r"forecast\.candidates: must name at least one model"),
    ],
    ids=["unknown", "empty"],
)
def test_candidates_are_checked(tmp_path: Path, candidates: list[str], message: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(_minimal({"candidates": candidates})))
    with pytest.raises(ConfigError, match=message):
        load_job_config(p)


def test_candidates_accepted(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(_minimal({"candidates": ["seasonal_median", "prophet"]})))
    assert load_job_config(p).forecast.candidates == ["seasonal_median", "prophet"]
