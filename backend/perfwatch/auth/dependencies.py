"""Authentication and authorisation dependencies for routers.

``current_user`` reads the ``Authorization: Bearer <access token>`` header, verifies the token
(signature, expiry, type, revocation) and loads the user, who must exist, be active and not be
deleted; routers get a :class:`~perfwatch.auth.principals.Principal` (id, username, role).
Authorisation uses the role stored in the database, not the one in the token, so a role change
applies at the next request (within AUTH_CACHE_SECONDS when made by another process).

Roles are ordered viewer < member < admin: a viewer reads metrics, a member also reads the
configuration, an admin may do everything. ``require_role(*roles)`` allows exactly the roles
named; ``viewer_or_above``, ``member_or_above`` and ``admin_only`` are the usual ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from perfwatch.api.dependencies import CacheDep, SettingsDep
from perfwatch.auth.principals import Principal
from perfwatch.auth.service import AuthService
from perfwatch.db.session import unit_of_work
from perfwatch.errors import AuthenticationError, PermissionDeniedError
from perfwatch.models import UserRole

# auto_error=False: a missing header becomes our AuthenticationError (the one error shape).
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

ROLE_RANK = {UserRole.VIEWER: 0, UserRole.MEMBER: 1, UserRole.ADMIN: 2}


async def current_user(
    token: Annotated[str | None, Depends(oauth2_scheme)],
    cache: CacheDep,
    settings: SettingsDep,
) -> Principal:
    if not token:
        raise AuthenticationError(
            "authentication required: send 'Authorization: Bearer <access token>' "
            "(POST /api/v1/auth/login gives one)",
            code="not_authenticated",
        )
    # A remembered account needs no session; otherwise one of its own, read-only, so that
    # routes answered from the cache open none (see perfwatch.auth.principals).
    remembered = AuthService.remembered(settings, token)
    if remembered is not None:
        return remembered
    async with unit_of_work() as session:
        return await AuthService(session, cache, settings).authenticate(token)


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
