"""Controller of recharge-autoscaler: turns forecasts and live load into replica and warm-up decisions.

The decision core (:mod:`controller.core.decision`) is pure and shared by the live loop, the simulator and the
planning report; adapters for Kubernetes, HTTP warm-up and metrics sit behind the Protocols in
:mod:`controller.ports`.
"""
