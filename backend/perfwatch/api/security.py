"""Who a request acts for, and which roles may do what.

``current_user`` reads ``Authorization: Bearer <access token>`` and hands it to the app's
authenticator (``app.state.authenticator``, installed by the app factory: the auth domain's
token check), so every router depends on this module and none on the auth domain. Routers get a
:class:`Principal`. Authorisation uses the role stored in the database, not the one in the
token, so a role change applies at the next request (within AUTH_CACHE_SECONDS when made by
another process).

Roles are ordered viewer < member < admin: a viewer reads metrics, a member also reads the
configuration, an admin may do everything. ``require_role(*roles)`` allows exactly the roles
named; ``viewer_or_above``, ``member_or_above`` and ``admin_only`` are the usual ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol, cast

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.api.dependencies import CacheDep, SessionDep, SettingsDep
from perfwatch.cache import Cache
from perfwatch.config import Settings
from perfwatch.errors import AuthenticationError, PermissionDeniedError
from perfwatch.models import User, UserRole

# auto_error=False: a missing header becomes our AuthenticationError (the one error shape).
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

ROLE_RANK = {UserRole.VIEWER: 0, UserRole.MEMBER: 1, UserRole.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified account behind a request: what routers need, detached from any session."""

    id: uuid.UUID
    username: str
    role: UserRole

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(id=user.id, username=user.username, role=user.role)


class Authenticator(Protocol):
    """Turns an access token into the account it stands for, or raises
    ``AuthenticationError``. Uses ``session`` only when it must read the database."""

    async def __call__(
        self, token: str, session: AsyncSession, cache: Cache, settings: Settings
    ) -> Principal: ...


async def get_authenticator(request: Request) -> Authenticator:
    return cast(Authenticator, request.app.state.authenticator)


AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


async def principal_for(
    token: str | None,
    session: AsyncSession,
    cache: Cache,
    settings: Settings,
    authenticate: Authenticator,
) -> Principal:
    """The principal of ``token`` (from the header or, for the live stream, the query)."""
    if not token:
        raise AuthenticationError(
            "authentication required: send 'Authorization: Bearer <access token>' "
            "(POST /api/v1/auth/login gives one)",
            code="not_authenticated",
        )
    return await authenticate(token, session, cache, settings)


async def current_user(
    token: Annotated[str | None, Depends(oauth2_scheme)],
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
    authenticate: AuthenticatorDep,
) -> Principal:
    return await principal_for(token, session, cache, settings, authenticate)


CurrentUser = Annotated[Principal, Depends(current_user)]


def require_role(*roles: UserRole) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only users whose role is one of ``roles``."""
    allowed = frozenset(roles)
    names = ", ".join(role.value for role in sorted(allowed, key=ROLE_RANK.__getitem__))

    async def check_role(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            raise PermissionDeniedError(
                f"this needs one of the roles: {names} (yours: {user.role.value})",
                code="permission_denied",
            )
        return user

    return check_role


def at_least(role: UserRole) -> Callable[[Principal], Awaitable[Principal]]:
    return require_role(*(r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[role]))


viewer_or_above = at_least(UserRole.VIEWER)
member_or_above = at_least(UserRole.MEMBER)
admin_only = at_least(UserRole.ADMIN)

ViewerUser = Annotated[Principal, Depends(viewer_or_above)]
MemberUser = Annotated[Principal, Depends(member_or_above)]
AdminUser = Annotated[Principal, Depends(admin_only)]
