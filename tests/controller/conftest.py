"""Shared fixtures of controller tests: the stand-in Kubernetes API server
(tests/support/kubeapi/fixtures.py)."""

from tests.support.kubeapi.fixtures import kube_api, kube_client, kube_seeded, kubeconfig  # noqa: F401
