"""Password hashing with bcrypt through passlib (the maintained ``libpass`` fork).

``bcrypt_sha256`` pre-hashes with SHA-256 so passwords longer than bcrypt's 72-byte limit are
neither truncated nor rejected; plain ``bcrypt`` hashes still verify. Hashing is slow on
purpose: async callers use ``hash_password_async`` / ``verify_password_async`` (worker thread).
"""

from __future__ import annotations

import asyncio
import secrets

from passlib.context import CryptContext

from perfwatch.errors import ValidationFailedError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

# bcrypt's cost: 2**12 rounds, about a quarter of a second per hash here.
BCRYPT_ROUNDS = 12


def make_context(rounds: int = BCRYPT_ROUNDS) -> CryptContext:
    return CryptContext(
        schemes=["bcrypt_sha256", "bcrypt"], deprecated="auto", bcrypt_sha256__rounds=rounds
    )


_context = make_context()


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailedError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailedError(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters long"
        )
    if len(set(password)) < 5:
        raise ValidationFailedError(
            "password is too repetitive; use a passphrase or a generated password"
        )


def hash_password(password: str) -> str:
    return str(_context.hash(password))


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bool(_context.verify(password, password_hash))
    except (ValueError, TypeError):  # malformed or unknown hash: never a match
        return False


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, password_hash: str) -> bool:
    return await asyncio.to_thread(verify_password, password, password_hash)


def generate_password() -> str:
    return secrets.token_urlsafe(18)
