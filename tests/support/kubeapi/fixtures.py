"""pytest fixtures around the test API server; a conftest imports them (``from ... import *``).

- ``kube_api``: a started :class:`~tests.support.kubeapi.server.KubeApiServer` (empty), stopped after the
test.
- ``kube_seeded``: the same server with namespace ``payments``, Deployment ``recharge`` (3 replicas) and HPA
  ``recharge`` (min 2, max 20) seeded.
- ``kube_client``: a ``kubernetes.client.ApiClient`` pointed at ``kube_api`` (no kubeconfig, no retries).
- ``kubeconfig``: a kubeconfig file in ``tmp_path`` for ``kube_api`` (namespace ``payments``) for kubectl.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kubeapi.server import KubeApiServer

NAMESPACE = "payments"
TARGET = "recharge"


def make_api_client(server: KubeApiServer) -> Any:
    """A kubernetes ``ApiClient`` for ``server`` that does not retry on its own (tests count requests)."""
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = server.url
    cfg.retries = False
    return client.ApiClient(cfg)


@pytest.fixture
def kube_api() -> Iterator[KubeApiServer]:
    server = KubeApiServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube_seeded(kube_api: KubeApiServer) -> KubeApiServer:
    kube_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    kube_api.seed_deployment(NAMESPACE, TARGET, replicas=3)
    kube_api.seed_hpa(NAMESPACE, TARGET, min_replicas=2, max_replicas=20, current=3)
    return kube_api


@pytest.fixture
def kube_client(kube_api: KubeApiServer) -> Iterator[Any]:
    api_client = make_api_client(kube_api)
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def kubeconfig(kube_api: KubeApiServer, tmp_path: Path) -> Path:
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)


__all__ = ["NAMESPACE", "TARGET", "kube_api", "kube_client", "kube_seeded", "kubeconfig", "make_api_client"]
