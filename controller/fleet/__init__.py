"""The fleet: one controller that scales every workload declared by a ``PredictiveScaler`` custom resource.

:mod:`controller.fleet.spec` is the resource (its spec is built from the same typed config models the
single-workload controller validates with, so a scaler means what the config file means), and
:mod:`controller.fleet.status` turns a tick's outcome into the conditions ``kubectl`` shows.
:mod:`controller.fleet.reconciler` runs them: informer caches, one :class:`~controller.loop.ControlLoop`
per scaler, one Lease for the whole controller.
"""
