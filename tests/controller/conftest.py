"""Shared fixtures of controller tests: the stand-in Kubernetes API server (tests/kubeapi/fixtures.py)."""

from tests.kubeapi.fixtures import kube_api, kube_client, kube_seeded, kubeconfig  # noqa: F401
