"""Test support that starts real services for the suite (etcd + kube-apiserver: kube_envtest)."""
