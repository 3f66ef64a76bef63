"""The rendered manifests are accepted by an API server: every Deployment and ConfigMap of each scenario is
created with the real kubectl against the stand-in API server (tests/support/kubeapi), which implements
those kinds,
and read back unchanged where it matters (pod template, config file). Schema validation is
test_chart.py's job (kubernetes-validate); the stand-in server serves no OpenAPI document, hence
``--validate=false``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helm.chartlib import CI_VALUES, NAMESPACE, render
from tests.support.kubeapi.server import KubeApiServer
from tests.support.tools import require_tool

pytestmark = pytest.mark.helm

CI_IDS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
KINDS = ("Deployment", "ConfigMap")


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_deployments_and_configmaps_are_accepted_by_the_api_server(
    values: Path, kube_api: KubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    objs = [m for m in render(values) if m["kind"] in KINDS]
    assert {m["kind"] for m in objs} == set(KINDS)
    kube_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(yaml.safe_dump_all(objs))
    proc = subprocess.run(
        [
            require_tool("kubectl"),
            "--kubeconfig",
            str(kubeconfig),
            "create",
            "--validate=false",
            "-f",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for m in objs:
        stored = kube_api.get(m["apiVersion"], m["kind"], NAMESPACE, m["metadata"]["name"])
        assert stored is not None, m["metadata"]["name"]
        if m["kind"] == "ConfigMap":
            assert stored["data"] == m["data"]
        else:
            sent = m["spec"]["template"]["spec"]["containers"]
            got = stored["spec"]["template"]["spec"]["containers"]
            assert [c["args"] for c in got] == [c["args"] for c in sent]
            assert stored["spec"]["replicas"] == m["spec"]["replicas"]
