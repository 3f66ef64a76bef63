"""A stand-in Kubernetes API server for tests (:mod:`tests.support.kubeapi.server`) and its pytest
fixtures."""
