"""A stand-in Kubernetes API server for tests (:mod:`tests.kubeapi.server`) and its pytest fixtures."""
