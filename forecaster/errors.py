"""Error types that the CLI turns into one-line messages and non-zero exit codes.

A user mistake (bad file, bad flag, bad config) is a ``UserError``: the message must say what is wrong,
where (file, column, row, field) and how to fix it. A fault outside the user's control (Prometheus down,
API server errors) is an ``OperationalError``. Neither should ever reach the user as a traceback.
"""

from __future__ import annotations


class AutoscalerError(Exception):
    """Base class for errors the CLI reports without a traceback."""

    exit_code = 1


class UserError(AutoscalerError):
    """Bad input from the user: file, flag, config value. Exit code 2."""

    exit_code = 2


class InputError(UserError):
    """A history/trace file that cannot be used as given."""


class ConfigError(UserError):
    """A configuration value that fails validation; the message names the field."""


class OperationalError(AutoscalerError):
    """A dependency failed (metrics source, store, API server). Exit code 3."""

    exit_code = 3


class SourceError(OperationalError):
    """The metrics source could not deliver a usable series."""


class StoreError(OperationalError):
    """A forecast store could not be read or written."""
