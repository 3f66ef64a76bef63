"""Forecasting models, each behind :class:`forecaster.models.base.Model` and registered by alias."""
