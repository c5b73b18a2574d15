"""JSON Web Tokens (PyJWT, HS256): short-lived access tokens and rotating refresh tokens.

Claims: ``sub`` (user id), ``role``, ``typ`` (``access`` | ``refresh``), ``iat``, ``exp``,
``jti``. Decoding accepts HS256 only (``alg: none`` and algorithm confusion are refused) and
requires every claim; a token of the wrong ``typ`` is refused. ``iat`` is a fractional NumericDate
(RFC 7519 allows it) so a revocation at time *t* separates tokens issued a moment before *t*
from those issued a moment after (see ``perfwatch.auth.revocation``).

The signing key is derived from ``SECRET_KEY`` (HMAC-SHA256 with a fixed label): always 32 bytes,
and distinct from any other use of the secret.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from perfwatch.config import Settings
from perfwatch.errors import AuthenticationError

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "typ", "iat", "exp", "jti")


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    role: str
    typ: TokenType
    issued_at: float
    expires_at: int
    jti: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


@functools.lru_cache(maxsize=8)
def _derive_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"perfwatch.auth.jwt.v1", hashlib.sha256).digest()


def signing_key(settings: Settings) -> bytes:
    return _derive_key(settings.secret_key)


def lifetime_seconds(settings: Settings, typ: TokenType) -> float:
    if typ is TokenType.ACCESS:
        return settings.access_token_minutes * 60
    return settings.refresh_token_days * 86400


def issue_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    role: str,
    typ: TokenType,
    now: float | None = None,
) -> IssuedToken:
    issued_at = time.time() if now is None else now
    claims = TokenClaims(
        user_id=user_id,
        role=role,
        typ=typ,
        issued_at=issued_at,
        expires_at=int(issued_at + lifetime_seconds(settings, typ)),
        jti=uuid.uuid4().hex,
    )
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "typ": typ.value,
        "iat": round(issued_at, 6),
        "exp": claims.expires_at,
        "jti": claims.jti,
    }
    token = jwt.encode(payload, signing_key(settings), algorithm=ALGORITHM)
    return IssuedToken(token=token, claims=claims)


# Verified access tokens by their exact text: a dashboard sends the same token every second,
# and checking its signature again costs as much as answering /metrics/latest. An entry only
# proves that this signing key signed this text; expiry is checked on every use.
_VERIFIED_MAX = 4096
_verified: dict[tuple[bytes, str], TokenClaims] = {}


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    """:func:`decode_token` for access tokens, remembering verified ones until they expire."""
    key = (signing_key(settings), token)
    claims = _verified.get(key)
    if claims is None:
        claims = decode_token(settings, token, expected=TokenType.ACCESS)
        if len(_verified) >= _VERIFIED_MAX:
            _verified.pop(next(iter(_verified)))
        _verified[key] = claims
    elif claims.expires_at <= time.time():
        # PyJWT's rule (no leeway): expired once now >= exp.
        _verified.pop(key, None)
        raise AuthenticationError("the access token has expired; refresh it", code="token_expired")
    return claims


def decode_token(settings: Settings, token: str, *, expected: TokenType) -> TokenClaims:
    """The verified claims of ``token``, or ``AuthenticationError`` saying what is wrong."""
    try:
        payload = jwt.decode(
            token,
            signing_key(settings),
            algorithms=[ALGORITHM],
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError(
            f"the {expected.value} token has expired; "
            + ("refresh it" if expected is TokenType.ACCESS else "log in again"),
            code="token_expired",
        ) from None
    except jwt.InvalidTokenError:
        raise AuthenticationError(
            f"the {expected.value} token is invalid", code="invalid_token"
        ) from None
    if payload.get("typ") != expected.value:
        raise AuthenticationError(
            f"expected an {expected.value} token"
            if expected is TokenType.ACCESS
            else f"expected a {expected.value} token",
            code="wrong_token_type",
        )
    try:
        user_id = uuid.UUID(str(payload["sub"]))
        issued_at = float(payload["iat"])
        expires_at = int(payload["exp"])
    except (TypeError, ValueError):
        raise AuthenticationError(
            f"the {expected.value} token is invalid", code="invalid_token"
        ) from None
    return TokenClaims(
        user_id=user_id,
        role=str(payload["role"]),
        typ=expected,
        issued_at=issued_at,
        expires_at=expires_at,
        jti=str(payload["jti"]),
    )
