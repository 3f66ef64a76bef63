"""Fixtures of the chart tests: the stand-in Kubernetes API server (tests/support/kubeapi) for apply tests."""

from tests.support.kubeapi.fixtures import kube_api, kubeconfig  # noqa: F401
