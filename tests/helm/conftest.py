"""Fixtures of the chart tests: the stand-in Kubernetes API server (tests/kubeapi) for apply tests."""

from tests.kubeapi.fixtures import kube_api, kubeconfig  # noqa: F401
