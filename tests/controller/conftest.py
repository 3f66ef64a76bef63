"""Controller tests reach Kubernetes through the suite-wide fixtures of tests/support/kube_testbed.py
(the real kube-apiserver, a namespace per test, the fault proxy)."""
