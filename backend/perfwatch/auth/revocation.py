"""Token revocation kept in the cache (Redis, or the in-process cache).

Two records, each kept only as long as a token it concerns can still be valid:

* ``perfwatch:auth:revoked_before:<user id>`` — a UNIX time. Every token of that user issued at
  or before it is refused (access and refresh alike). Set when the password changes and when a
  refresh token is reused; TTL = the refresh-token lifetime, after which every older token has
  expired anyway.
* ``perfwatch:auth:refresh_used:<jti>`` — a refresh token already exchanged. ``INCR`` makes the
  check-and-mark atomic, so two concurrent refreshes with one token cannot both succeed.
  TTL = until that token expires.

With the cache away, access tokens are accepted without the revocation check (logged), while
refreshing and revoking answer 503: see ``revocation_cutoff``. A verified access token is
remembered in-process for AUTH_CACHE_SECONDS (``perfwatch.users.principals``).

Why the cache and not a database column: no migration, one key read per check, and a
revocation reaches every replica through Redis. The price: with Redis's ``allkeys-lru``
eviction under memory pressure (or a Redis restart) the records can be lost, and revoked tokens
would work again until they expire — at most ``ACCESS_TOKEN_MINUTES`` for access tokens and
``REFRESH_TOKEN_DAYS`` for refresh tokens. Deactivating or deleting a user does not depend on
the cache: the account is read from the database (at most AUTH_CACHE_SECONDS ago).
"""

from __future__ import annotations

import logging
import math
import time
import uuid

from perfwatch.auth.tokens import TokenClaims, TokenType, lifetime_seconds
from perfwatch.cache import Cache
from perfwatch.config import Settings
from perfwatch.errors import ServiceUnavailableError
from perfwatch.users.principals import forget

logger = logging.getLogger("perfwatch.auth")

REVOKED_BEFORE_KEY = "perfwatch:auth:revoked_before:{user_id}"
REFRESH_USED_KEY = "perfwatch:auth:refresh_used:{jti}"


async def revoke_tokens_issued_before(
    cache: Cache, settings: Settings, user_id: uuid.UUID, *, now: float | None = None
) -> float:
    """Refuse every token of ``user_id`` issued up to now; return the cut-off time."""
    cutoff = time.time() if now is None else now
    try:
        await cache.set(
            REVOKED_BEFORE_KEY.format(user_id=user_id),
            repr(cutoff),
            ttl_seconds=lifetime_seconds(settings, TokenType.REFRESH),
        )
    except Exception as exc:
        raise ServiceUnavailableError(
            "tokens cannot be revoked while the cache (Redis) is unavailable; "
            "nothing was changed, try again shortly",
            code="cache_unavailable",
        ) from exc
    # After the record is written: a request checking in between must not remember the old state.
    forget(user_id)
    return cutoff


async def revocation_cutoff(cache: Cache, claims: TokenClaims) -> float | None:
    """The UNIX time up to which ``claims``' user has revoked its tokens (None: no record;
    an unreadable record revokes everything, fail closed).

    With the cache away, an access token raises :class:`RevocationUnknownError`: the caller
    lets it through (it expires within ACCESS_TOKEN_MINUTES, and the account itself is checked
    in the database) so that reading metrics survives a Redis outage, but must not remember
    that answer. A refresh token gets 503: it could otherwise outlive a revocation by days."""
    try:
        cutoff = await cache.get(REVOKED_BEFORE_KEY.format(user_id=claims.user_id))
    except Exception as exc:
        if claims.typ is TokenType.ACCESS:
            raise RevocationUnknownError from exc
        raise ServiceUnavailableError(
            "sessions cannot be refreshed while the cache (Redis) is unavailable; "
            "try again shortly",
            code="cache_unavailable",
        ) from exc
    if cutoff is None:
        return None
    try:
        return float(cutoff)
    except ValueError:
        return math.inf


class RevocationUnknownError(Exception):
    """The cache cannot say whether an access token was revoked (Redis away)."""


async def mark_refresh_used(cache: Cache, claims: TokenClaims) -> bool:
    """Record that this refresh token has been exchanged; False if it already was."""
    remaining = max(1.0, claims.expires_at - time.time())
    try:
        uses = await cache.incr(REFRESH_USED_KEY.format(jti=claims.jti), ttl_seconds=remaining)
    except Exception as exc:  # one-time use cannot be enforced: refuse rather than allow reuse
        raise ServiceUnavailableError(
            "sessions cannot be refreshed while the cache (Redis) is unavailable; "
            "try again shortly",
            code="cache_unavailable",
        ) from exc
    return uses == 1
