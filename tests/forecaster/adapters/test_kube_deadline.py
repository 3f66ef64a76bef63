"""The Kubernetes transport ends every API call within its total deadline, however slowly the server
answers (sibling of issue 10, item 3: the per-read ``_request_timeout`` alone never trips on a drip)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from forecaster.adapters.kube import KubeUnavailable, call_api, load_api_client
from tests.support.faultserver import drip, fault_server


@pytest.mark.parametrize("preload", [True, False], ids=["preloaded", "raw-body"])
def test_a_dripping_api_server_cannot_hold_a_call_past_its_deadline(tmp_path: Path, preload: bool) -> None:
    import json

    from kubernetes import client

    with fault_server(drip(0.25)) as srv:
        kc = tmp_path / "kubeconfig"
        kc.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": srv.url}}],
            "users": [{"name": "t", "user": {"token": "t"}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        }))
        core = client.CoreV1Api(load_api_client(str(kc)))
        t0 = time.monotonic()
        with pytest.raises(KubeUnavailable, match=r"did not complete within 1s"):
            call_api(
                lambda: core.read_namespaced_config_map(
                    "x", "default", _request_timeout=1, _preload_content=preload
                ),
                verb="get", resource="configmaps", namespace="default", name="x", retries=1, backoff=0.1,
                deadline=1.0,
            )
        assert time.monotonic() - t0 < 2 * 1.0 + 1.0
