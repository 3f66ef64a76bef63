"""Chart tests reach the real API server through the suite-wide fixtures (tests/support/kube_testbed.py)."""
