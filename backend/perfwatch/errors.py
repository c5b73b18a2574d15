"""Domain errors: raised by services and repositories, translated to HTTP or CLI output at the
edge."""

from __future__ import annotations


class PerfWatchError(Exception):
    """Base class for errors whose message is safe and useful to show a user."""


class NotFoundError(PerfWatchError):
    pass


class ConflictError(PerfWatchError):
    """A uniqueness or integrity rule would be broken (e.g. a duplicate username)."""


class InvalidQueryError(PerfWatchError):
    """A list/filter/sort request names a field or operator that is not allowed."""


class ValidationFailedError(PerfWatchError):
    """Input that is well-formed but breaks a domain rule."""
