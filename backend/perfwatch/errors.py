"""Domain errors: raised by services and repositories, translated to HTTP or CLI output at the
edge (``perfwatch.api.errors`` maps each class to a status and the one JSON error shape)."""

from __future__ import annotations

from collections.abc import Iterable


class PerfWatchError(Exception):
    """Base class for errors whose message is safe and useful to show a user.

    ``code`` is the machine-readable code an API client sees; subclasses set a default and a
    raiser may pass a more precise one (``AuthenticationError("...", code="token_expired")``).
    """

    code: str = "error"
    # Entries of the error shape's ``details`` ({location, field, message}), e.g. the values a
    # refused parameter accepts when they are too many for the message.
    details: tuple[dict[str, str], ...] = ()

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        details: Iterable[dict[str, str]] = (),
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = tuple(details)

    @property
    def message(self) -> str:
        return str(self)


class NotFoundError(PerfWatchError):
    code = "not_found"


class ConflictError(PerfWatchError):
    """A uniqueness or integrity rule would be broken (e.g. a duplicate username)."""

    code = "conflict"


class ValidationFailedError(PerfWatchError):
    """A well-formed request whose parameters or body values are refused: a broken domain rule,
    an unknown filter, sort or metric field, a bad time range (HTTP 422)."""

    code = "validation_failed"


class AuthenticationError(PerfWatchError):
    """Missing, invalid, expired or revoked credentials (HTTP 401)."""

    code = "not_authenticated"


class PermissionDeniedError(PerfWatchError):
    """Authenticated, but the role does not allow this (HTTP 403)."""

    code = "permission_denied"


class TooManyRequestsError(PerfWatchError):
    """Throttled; ``retry_after`` is the number of seconds until a retry can succeed."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailableError(PerfWatchError):
    """A dependency this operation cannot do without is away (HTTP 503); retrying later helps."""

    code = "service_unavailable"
