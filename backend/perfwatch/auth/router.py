"""Auth API: log in, refresh, who am I, change my password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from perfwatch.api.dependencies import CacheDep, SessionDep, SettingsDep
from perfwatch.api.errors import error_responses
from perfwatch.api.security import ViewerUser
from perfwatch.auth.schemas import PasswordChange, RefreshRequest, TokenResponse
from perfwatch.auth.service import AuthService, TokenPair
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


@router.post(
    "/login",
    summary="Log in with username and password",
    description="OAuth2 password flow (form fields `username`, `password`). Failed attempts are "
    "throttled per client address (20 in 15 minutes) and per username and address (5): then "
    "429 with `Retry-After`. Failures for a username from many addresses slow its logins down "
    "(up to 10 s) but never refuse them; `perfwatch user unlock NAME` lifts all of it.",
    response_model=TokenResponse,
    responses=error_responses(401, 422, 429),
)
async def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
) -> TokenResponse:
    service = AuthService(session, cache, settings)
    return _tokens(await service.login(form.username, form.password, client_address(request)))


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
