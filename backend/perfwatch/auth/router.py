"""Auth API: log in, refresh, who am I, change my password."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from perfwatch.api.dependencies import CacheDep, SessionDep, SettingsDep
from perfwatch.api.errors import error_responses
from perfwatch.api.security import ViewerUser
from perfwatch.auth.schemas import LoginRequest, PasswordChange, RefreshRequest, TokenResponse
from perfwatch.auth.service import AuthService, TokenPair
from perfwatch.errors import ValidationFailedError
from perfwatch.users.schemas import UserOut
from perfwatch.users.service import UserService

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        refresh_expires_in=pair.refresh_expires_in,
    )


def client_address(request: Request) -> str:
    """The peer address. Behind a reverse proxy run uvicorn with ``--proxy-headers`` and
    ``--forwarded-allow-ips`` so this is the real client, not the proxy."""
    return request.client.host if request.client is not None else "unknown"


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
_FORMS = (FORM, "multipart/form-data")
_SEND = (
    f"send username and password as form fields (Content-Type: {FORM}, the OAuth2 password "
    f"flow) or as a JSON object (Content-Type: {JSON})"
)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body_fields(request: Request) -> dict[str, Any]:
    media_type = _media_type(request)
    if media_type == JSON or media_type.endswith("+json"):
        try:
            fields = json.loads(await request.body())
        except ValueError:
            raise ValidationFailedError(f"the body is not valid JSON; {_SEND}") from None
        if not isinstance(fields, dict):
            raise ValidationFailedError(f"the JSON body is not an object; {_SEND}")
        return fields
    if media_type not in _FORMS:
        raise ValidationFailedError(_SEND)
    try:
        async with request.form() as form:
            fields = {name: form.get(name) for name in form}
    except (StarletteHTTPException, ValueError):
        raise ValidationFailedError(f"the form could not be parsed; {_SEND}") from None
    if len(fields) == 1 and next(iter(fields)).lstrip().startswith("{"):
        # curl -d '{"username": …}' sends JSON labelled as a form.
        raise ValidationFailedError(
            f"the body looks like JSON sent as a form: add Content-Type: {JSON}, or {_SEND}"
        )
    return fields


async def login_request(request: Request) -> LoginRequest:
    """The login body, from either encoding (FastAPI binds a body to one media type only)."""
    fields = await _body_fields(request)
    try:
        return LoginRequest.model_validate(fields)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


_LOGIN_SCHEMA = LoginRequest.model_json_schema()


@router.post(
    "/login",
    summary="Log in with username and password",
    description=f"OAuth2 password flow: form fields `username`, `password` ({FORM}; what "
    f"Swagger's Authorize sends), or the same as a JSON object ({JSON}). Failed attempts are "
    "throttled per client address (20 in 15 minutes) and per username and address (5): then "
    "429 with `Retry-After`. Failures for a username from many addresses slow its logins down "
    "(up to 10 s) but never refuse them; `perfwatch user unlock NAME` lifts all of it.",
    response_model=TokenResponse,
    responses=error_responses(401, 422, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": _LOGIN_SCHEMA}, JSON: {"schema": _LOGIN_SCHEMA}},
        }
    },
)
async def login(
    request: Request,
    body: Annotated[LoginRequest, Depends(login_request)],
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
) -> TokenResponse:
    service = AuthService(session, cache, settings)
    return _tokens(await service.login(body.username, body.password, client_address(request)))


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new token pair",
    description="Refresh tokens are single use. Presenting one a second time signs out every "
    "session of the account (401 `refresh_token_reused`).",
    response_model=TokenResponse,
    responses=error_responses(401, 422, 503),
)
async def refresh(
    body: RefreshRequest, session: SessionDep, cache: CacheDep, settings: SettingsDep
) -> TokenResponse:
    return _tokens(await AuthService(session, cache, settings).refresh(body.refresh_token))


@router.get(
    "/me",
    summary="The logged-in user",
    response_model=UserOut,
    responses=error_responses(401),
)
async def me(principal: ViewerUser, session: SessionDep) -> UserOut:
    return UserOut.model_validate(await UserService(session).get_user(principal.id))


@router.post(
    "/password",
    summary="Change my password",
    description="Every token issued before the change stops working, this one included: "
    "log in again with the new password.",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 422, 429, 503),
)
async def change_password(
    body: PasswordChange,
    user: ViewerUser,
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
) -> Response:
    await AuthService(session, cache, settings).change_password(
        user, body.current_password, body.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
