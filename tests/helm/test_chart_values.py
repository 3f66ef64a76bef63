"""Bad values fail at `helm template`/`helm lint` with a message that names the value, before anything
reaches a cluster: values.schema.json for types, ranges, enums and typos; template `fail`/`required` for
rules across values. The product sections of the schema are generated from the product's config models.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from tests.helm.chartlib import CHART, HelmFailed, helm, render

pytestmark = pytest.mark.helm

HPA = str(CHART / "ci" / "hpa-values.yaml")

BAD_VALUES = [
    ("negative-replicas", ["deployment.replicas=-1"], "at '/deployment/replicas': minimum: got -1, want 0"),
    ("negative-min-replicas", ["controller.minReplicas=-1"], "at '/controller/minReplicas': minimum"),
    ("zero-capacity", ["controller.capacityPerReplica=0"], "at '/controller/capacityPerReplica'"),
    (
        "unknown-target-mode",
        ["controller.target.mode=turbo"],
        "at '/controller/target/mode': value must be one of 'hpa', 'scale'",
    ),
    (
        "unknown-job-mode",
        ["forecastJob.mode=sometimes"],
        "at '/forecastJob/mode': value must be one of 'cronjob', 'inProcess'",
    ),
    (
        "missing-prometheus-url",
        ["source.prometheus.url="],
        "at '/source/prometheus/url': minLength: got 0, want 1",
    ),
    (
        "prometheus-url-without-scheme",
        ["source.prometheus.url=prometheus:9090"],
        "at '/source/prometheus/url'",
    ),
    ("missing-history-query", ["source.prometheus.query="], "at '/source/prometheus/query'"),
    ("missing-load-query", ["controller.load.query="], "at '/controller/load/query'"),
    ("typo-in-controller-key", ["controller.maxReplica=5"], "additional properties 'maxReplica' not allowed"),
    ("typo-at-top-level", ["replicas=2"], "additional properties 'replicas' not allowed"),
    ("file-store-in-cluster", ["store.kind=file"], "at '/store/kind': value must be 'configmap'"),
    ("latest-image-tag", ["image.tag=latest"], "image.tag: 'latest' is not a pinned tag"),
    ("malformed-duration", ["controller.interval=30 seconds"], "at '/controller/interval'"),
    ("warmup-without-url", ["controller.warmup.enabled=true"], "at '/controller/warmup"),
    (
        "bearer-token-and-basic-auth",
        [
            "prometheusAuth.bearerToken.secretName=t",
            "prometheusAuth.basicAuth.secretName=b",
            "prometheusAuth.basicAuth.username=u",
        ],
        "prometheusAuth: set either bearerToken.secretName or basicAuth.secretName, not both",
    ),
    (
        "basic-auth-without-username",
        ["prometheusAuth.basicAuth.secretName=b"],
        "at '/prometheusAuth/basicAuth/username': minLength",
    ),
    ("bad-log-level", ["logging.level=LOUD"], "at '/logging/level'"),
    (
        "in-process-with-two-replicas",
        ["forecastJob.mode=inProcess", "deployment.replicas=2"],
        "forecastJob.mode=inProcess runs the forecast job in every controller replica",
    ),
]


@pytest.mark.parametrize(
    ("sets", "message"), [(s, m) for _, s, m in BAD_VALUES], ids=[i for i, _, _ in BAD_VALUES]
)
def test_bad_values_fail_at_template_time_with_a_useful_message(sets: list[str], message: str) -> None:
    args = ["template", "rel", str(CHART), "-f", HPA]
    for s in sets:
        args += ["--set", s]
    with pytest.raises(HelmFailed) as err:
        helm(*args)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("sets", "message"), [(s, m) for _, s, m in BAD_VALUES[:6]], ids=[i for i, _, _ in BAD_VALUES[:6]]
)
def test_bad_values_fail_helm_lint(sets: list[str], message: str) -> None:
    args = ["lint", "--strict", str(CHART), "-f", HPA]
    for s in sets:
        args += ["--set", s]
    with pytest.raises(HelmFailed) as err:
        helm(*args)
    assert message in str(err.value)


def test_defaults_alone_name_the_values_an_install_needs() -> None:
    with pytest.raises(HelmFailed) as err:
        helm("template", "rel", str(CHART))
    out = str(err.value)
    for needed in (
        "/controller/target/name",
        "/controller/capacityPerReplica",
        "/source/prometheus/url",
        "/source/prometheus/query",
        "/controller/load/query",
    ):
        assert needed in out, needed


def test_good_overrides_render() -> None:
    manifests = render(
        HPA, sets=("controller.interval=45s", "controller.minReplicas=0", "deployment.replicas=0")
    )
    assert any(m["kind"] == "Deployment" and m["spec"]["replicas"] == 0 for m in manifests)


# --- the schema mirrors the product's config models ---------------------------------------------------------


def _schema() -> dict[str, Any]:
    return dict(json.loads((CHART / "values.schema.json").read_text()))


def _keys(cls: type[BaseModel]) -> dict[str, Any]:
    return {f.alias or name: f.annotation for name, f in cls.model_fields.items()}


def _model_of(tp: Any) -> type[BaseModel] | None:
    from forecaster.configbase import models_in

    return next(models_in(tp), None)


def _mismatches(cls: type[BaseModel], node: dict[str, Any], path: str, skip: frozenset[str]) -> list[str]:
    props = node.get("properties", {})
    fields = _keys(cls)
    out = [
        f"{path}.{k}: in the product, not in values.schema.json"
        for k in fields
        if k not in props and f"{path}.{k}" not in skip
    ]
    out += [f"{path}.{k}: in values.schema.json, not in the product" for k in props if k not in fields]
    for key, tp in fields.items():
        sub = _model_of(tp)
        if sub is not None and key in props and props[key].get("properties"):
            out += _mismatches(sub, props[key], f"{path}.{key}", skip)
    return out


# Product fields the chart deliberately does not expose (out-of-cluster only).
NOT_IN_CLUSTER = frozenset({"store.file", "store.configmap.kubeconfig", "store.configmap.context"})


def test_schema_product_sections_mirror_the_config_models() -> None:
    from controller.config import ControllerConfig
    from forecaster.job.config import JobConfig

    schema = _schema()["properties"]
    problems = _mismatches(ControllerConfig, schema["controller"], "controller", NOT_IN_CLUSTER)
    for key, tp in _keys(JobConfig).items():
        cls = _model_of(tp)
        assert cls is not None
        problems += _mismatches(cls, schema[key], key, NOT_IN_CLUSTER)
    assert problems == []


def test_schema_closes_every_object_it_describes() -> None:
    def walk(node: Any, path: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        bad = []
        if node.get("properties") and "additionalProperties" not in node:
            bad.append(path)
        for key, sub in node.get("properties", {}).items():
            bad += walk(sub, f"{path}.{key}")
        return bad

    assert walk(_schema(), "") == []


def test_schema_file_is_generated_from_the_script() -> None:
    import subprocess
    import sys

    from tests.support.tools import REPO_ROOT

    script = REPO_ROOT / "scripts" / "helm-schema.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
