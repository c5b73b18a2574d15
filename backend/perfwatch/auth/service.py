"""Authentication rules: log in, refresh, authenticate a request, change a password.

The service flushes through the repository; the request's unit of work commits.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.api.security import Principal
from perfwatch.auth.revocation import (
    RevocationUnknownError,
    mark_refresh_used,
    revocation_cutoff,
    revoke_tokens_issued_before,
)
from perfwatch.auth.throttle import LoginThrottle
from perfwatch.auth.tokens import (
    TokenClaims,
    TokenType,
    decode_access_token,
    decode_token,
    issue_token,
    lifetime_seconds,
)
from perfwatch.cache import Cache
from perfwatch.config import Settings
from perfwatch.db.types import utcnow
from perfwatch.errors import AuthenticationError, ValidationFailedError
from perfwatch.models import User
from perfwatch.users.passwords import (
    MAX_PASSWORD_LENGTH,
    check_password_strength,
    hash_password_async,
    verify_password_async,
)
from perfwatch.users.principals import principal_cache
from perfwatch.users.repository import UserRepository

BAD_CREDENTIALS = "incorrect username or password"
REVOKED = "the token has been revoked (password changed or token reused); log in again"
MAX_USERNAME_LENGTH = 64

logger = logging.getLogger("perfwatch.auth")

_dummy_hash: str | None = None


async def dummy_password_hash() -> str:
    """A real hash of a random password: verifying against it costs what a real check costs,
    so an unknown username answers no faster than a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:  # two first callers may both compute one: harmless
        _dummy_hash = await hash_password_async(secrets.token_urlsafe(24))
    return _dummy_hash


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


def can_log_in(user: User | None) -> bool:
    return user is not None and user.is_active and user.deleted_at is None


class AuthService:
    def __init__(self, session: AsyncSession, cache: Cache, settings: Settings) -> None:
        self.users = UserRepository(session)
        self.cache = cache
        self.settings = settings
        self.throttle = LoginThrottle(cache)

    # ----- tokens -------------------------------------------------------------------------
    def _issue_pair(self, user: User) -> TokenPair:
        access = issue_token(
            self.settings, user_id=user.id, role=user.role.value, typ=TokenType.ACCESS
        )
        refresh = issue_token(
            self.settings, user_id=user.id, role=user.role.value, typ=TokenType.REFRESH
        )
        return TokenPair(
            access_token=access.token,
            refresh_token=refresh.token,
            expires_in=max(1, round(lifetime_seconds(self.settings, TokenType.ACCESS))),
            refresh_expires_in=max(1, round(lifetime_seconds(self.settings, TokenType.REFRESH))),
        )

    async def _verified(self, token: str, typ: TokenType) -> tuple[TokenClaims, User]:
        claims = decode_token(self.settings, token, expected=typ)
        cutoff = await revocation_cutoff(self.cache, claims)
        if cutoff is not None and claims.issued_at <= cutoff:
            raise AuthenticationError(REVOKED, code="token_revoked")
        return claims, await self._active_user(claims.user_id)

    async def _active_user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None or not can_log_in(user):
            raise AuthenticationError(
                "the account behind this token is unknown or disabled", code="invalid_token"
            )
        return user

    @staticmethod
    def remembered(settings: Settings, token: str) -> Principal | None:
        """The principal of a valid access token verified less than AUTH_CACHE_SECONDS ago,
        without the cache or the database; None when it must be checked in full."""
        claims = decode_access_token(settings, token)
        return principal_cache.get(claims.user_id, claims.issued_at)

    async def authenticate(self, token: str) -> Principal:
        """Who an access token belongs to, checked in full (revocation in the cache, account
        in the database); a success is remembered for AUTH_CACHE_SECONDS, which
        :meth:`remembered` consults first (see :mod:`perfwatch.users.principals`)."""
        claims = decode_access_token(self.settings, token)
        mark = principal_cache.mark()
        try:
            cutoff = await revocation_cutoff(self.cache, claims)
            checked = True
        except RevocationUnknownError:
            logger.warning("cache unavailable: access token accepted without revocation check")
            cutoff, checked = None, False
        if cutoff is not None and claims.issued_at <= cutoff:
            raise AuthenticationError(REVOKED, code="token_revoked")
        principal = Principal.of(await self._active_user(claims.user_id))
        if checked:
            principal_cache.remember(principal, cutoff, mark)
        return principal

    # ----- use cases ----------------------------------------------------------------------
    async def login(self, username: str, password: str, client_address: str) -> TokenPair:
        await self.throttle.check(username, client_address)
        user = None
        if len(username) <= MAX_USERNAME_LENGTH:
            user = await self.users.get_by_username(username)
        # Always one bcrypt verification, even for unknown names or absurd passwords.
        stored = user.password_hash if user is not None else await dummy_password_hash()
        candidate = password if len(password) <= MAX_PASSWORD_LENGTH else ""
        matches = await verify_password_async(candidate, stored)
        if not matches or not can_log_in(user) or candidate != password:
            await self.throttle.record_failure(username, client_address)
            raise AuthenticationError(BAD_CREDENTIALS, code="invalid_credentials")
        assert user is not None
        await self.throttle.record_success(username, client_address)
        await self.users.update(user, last_login_at=utcnow())
        return self._issue_pair(user)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; the old refresh token is then spent.

        Presenting a spent refresh token means it was copied: every token of that user is
        revoked, so whoever holds the copy (and the legitimate client) must log in again."""
        claims, user = await self._verified(refresh_token, TokenType.REFRESH)
        if not await mark_refresh_used(self.cache, claims):
            await revoke_tokens_issued_before(self.cache, self.settings, user.id)
            raise AuthenticationError(
                "this refresh token has already been used; all sessions of this account "
                "have been signed out, log in again",
                code="refresh_token_reused",
            )
        return self._issue_pair(user)

    async def change_password(
        self, principal: Principal, current_password: str, new_password: str
    ) -> None:
        """Check the current password, set the new one and revoke every earlier token."""
        user = await self._active_user(principal.id)
        await self.throttle.check(user.username, f"user:{user.id}")
        if not await verify_password_async(current_password, user.password_hash):
            await self.throttle.record_failure(user.username, f"user:{user.id}")
            raise ValidationFailedError(
                "current_password is incorrect", code="invalid_current_password"
            )
        if new_password == current_password:
            raise ValidationFailedError("new_password must differ from the current password")
        check_password_strength(new_password)
        new_hash = await hash_password_async(new_password)
        # Revoke first: if the cache is away this raises (503) before anything changes, so a
        # new password never leaves the old sessions valid. The request's unit of work commits.
        await revoke_tokens_issued_before(self.cache, self.settings, user.id)
        await self.users.update(user, password_hash=new_hash)
