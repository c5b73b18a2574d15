"""One JSON error shape for every 4xx and 5xx response, and the handlers that produce it.

    {"error": {"code": "<machine_code>", "message": "<what to fix>", "details": [...]}}

``details`` lists field errors (422) and is empty otherwise. Nothing a client sent is echoed
back beyond a field's name, and a 500 never carries a traceback (it is logged server-side).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from perfwatch.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PerfWatchError,
    PermissionDeniedError,
    ServiceUnavailableError,
    TooManyRequestsError,
    ValidationFailedError,
)

logger = logging.getLogger("perfwatch.api")

MAX_DETAILS = 50
MAX_MESSAGE_LENGTH = 300

STATUS_BY_ERROR: dict[type[PerfWatchError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    ValidationFailedError: 422,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    TooManyRequestsError: 429,
    ServiceUnavailableError: 503,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class ErrorDetail(BaseModel):
    """One problem with one input field."""

    location: str = Field(description="Where the field is: body, query, path, header, cookie")
    field: str = Field(description="Dotted path of the field inside its location ('' = whole)")
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="Machine-readable, stable: branch on this, not on message")
    message: str = Field(description="Human-readable: what went wrong and what to fix")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_failed",
                        "message": "the request has 1 invalid field",
                        "details": [
                            {
                                "location": "body",
                                "field": "password",
                                "message": "Field required",
                            }
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorInfo


def error_body(
    code: str, message: str, details: Iterable[ErrorDetail | Mapping[str, str]] = ()
) -> dict[str, Any]:
    items = [item.model_dump() if isinstance(item, ErrorDetail) else dict(item) for item in details]
    return {"error": {"code": code, "message": message[:MAX_MESSAGE_LENGTH], "details": items}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Iterable[ErrorDetail | Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details), status_code=status, headers=dict(headers or {})
    )


def code_for_status(status: int) -> str:
    return _CODE_BY_STATUS.get(status, f"http_{status}")


# ----- OpenAPI ------------------------------------------------------------------------------------

_EXAMPLES: dict[int, tuple[str, str, str]] = {
    401: ("not_authenticated", "Missing, invalid, expired or revoked token", "token has expired"),
    403: (
        "permission_denied",
        "The role does not allow this",
        "this needs one of the roles: admin",
    ),
    404: ("not_found", "No such resource", "User 0b5c… not found"),
    409: ("conflict", "Conflicts with the current state", "a user with this username exists"),
    413: ("payload_too_large", "Body too large", "the request body exceeds 1048576 bytes"),
    422: (
        "validation_failed",
        "Invalid input: a parameter or body value is refused; the message says what to send",
        "the request has 1 invalid field",
    ),
    429: (
        "too_many_requests",
        "Throttled; see Retry-After",
        "too many failed logins; retry in 840 s",
    ),
    503: (
        "cache_unavailable",
        "A dependency is unavailable; retry later",
        "sessions cannot be refreshed while the cache (Redis) is unavailable; try again shortly",
    ),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented with the error shape and an example."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, description, message = _EXAMPLES[status]
        entry: dict[str, Any] = {
            "model": ErrorResponse,
            "description": description,
            "content": {
                "application/json": {"example": error_body(code, message)},
            },
        }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
            }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds until a retry can succeed",
                    "schema": {"type": "integer"},
                }
            }
        documented[status] = entry
    return documented


# ----- handlers -----------------------------------------------------------------------------------


def _status_for(exc: PerfWatchError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 400


async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PerfWatchError)
    status = _status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, TooManyRequestsError):
        headers["Retry-After"] = str(exc.retry_after)
    code = exc.code if exc.code != PerfWatchError.code else code_for_status(status)
    return error_response(status, code, exc.message or code, exc.details, headers=headers)


def _location_and_field(loc: Sequence[Any]) -> tuple[str, str]:
    if not loc:
        return "body", ""
    location = str(loc[0])
    return location, ".".join(str(part) for part in loc[1:])[:200]


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = []
    for error in errors[:MAX_DETAILS]:
        location, field = _location_and_field(error.get("loc", ()))
        # Only the message: "input" and "ctx" may hold whatever (and however much) was sent.
        details.append(
            ErrorDetail(location=location, field=field, message=str(error.get("msg", ""))[:200])
        )
    count = len(errors)
    message = f"the request has {count} invalid field{'s' if count != 1 else ''}"
    if count > MAX_DETAILS:
        message += f" (the first {MAX_DETAILS} are listed)"
    return error_response(422, "validation_failed", message, details)


# FastAPI's answer to a body it cannot decode at all (bytes that are not UTF-8, a broken form).
_UNPARSABLE_BODY = "There was an error parsing the body"


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 400 and exc.detail == _UNPARSABLE_BODY:
        # The same answer as for malformed JSON (422 validation_failed), which every route with
        # a body documents, instead of a 400 that none does.
        detail = ErrorDetail(
            location="body", field="", message="the body could not be parsed (send UTF-8 JSON)"
        )
        return error_response(422, "validation_failed", "the request body is malformed", [detail])
    if status == 404 and exc.detail == "Not Found":
        message = "no such resource; the API lives under /api/v1 (see /docs)"
    elif status == 405:
        allowed = headers.get("Allow") or headers.get("allow") or ""
        message = f"method {request.method} is not allowed here" + (
            f"; allowed: {allowed}" if allowed else ""
        )
    else:
        message = str(exc.detail)
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return error_response(status, code_for_status(status), message, headers=headers)


HeadersFor = Callable[[str], Mapping[str, str]]


def unexpected_error_handler(
    extra_headers: HeadersFor | None = None,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The last resort: 500 with a generic message; the traceback goes to the log only.

    ``extra_headers(request)`` adds headers (the security headers: this response is produced
    outside the middleware stack, by Starlette's ServerErrorMiddleware)."""

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        headers = extra_headers(request.url.path) if extra_headers is not None else {}
        return error_response(
            500,
            "internal_error",
            "an unexpected error occurred; it has been logged (retrying may help)",
            headers=headers,
        )

    return unexpected_error


# SQLSTATE of text PostgreSQL cannot store: NUL characters (\u0000) in text or JSON.
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused (SQLSTATE class 22, "data exception": NUL in text, a
    number out of range) came from the client: 422 like any other invalid input. Any other
    database error goes on to the 500 handler, as before. The transaction is rolled back."""
    assert isinstance(exc, DBAPIError)
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if not sqlstate.startswith("22"):
        raise exc
    logger.warning(
        "database refused a value on %s %s (SQLSTATE %s)",
        request.method,
        request.url.path,
        sqlstate,
    )
    if sqlstate in _UNSTORABLE_TEXT:
        message = "text must not contain NUL (\\u0000) characters"
    else:
        message = "a value is out of range or cannot be stored"
    return error_response(422, "validation_failed", message)


def install_error_handlers(app: FastAPI, extra_headers: HeadersFor | None = None) -> None:
    app.add_exception_handler(PerfWatchError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(Exception, unexpected_error_handler(extra_headers))
