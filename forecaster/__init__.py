"""Forecasting core of recharge-autoscaler.

Turns a history of recharge request volume into a forecast with a calibrated band.
This package never imports the controller: the controller consumes what it produces.
"""

__version__ = "0.1.0"
