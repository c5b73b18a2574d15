"""User rules: creating accounts and changing passwords. Flushes through the repository; the
caller's unit of work commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.errors import NotFoundError, ValidationFailedError
from perfwatch.kit.repository import Page
from perfwatch.models import User, UserRole
from perfwatch.users.passwords import check_password_strength, hash_password_async
from perfwatch.users.repository import UserRepository

USERNAME_ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def check_username(username: str) -> str:
    name = username.strip()
    if not 3 <= len(name) <= 64:
        raise ValidationFailedError("username must be 3 to 64 characters long")
    if not set(name.lower()) <= USERNAME_ALLOWED:
        raise ValidationFailedError("username may contain only letters, digits, '_', '.' and '-'")
    return name


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)

    async def create_user(
        self,
        *,
        username: str,
        password: str,
        role: UserRole = UserRole.VIEWER,
        email: str | None = None,
        full_name: str | None = None,
        check_strength: bool = True,
    ) -> User:
        username = check_username(username)
        if check_strength:
            check_password_strength(password)
        password_hash = await hash_password_async(password)
        return await self.users.create(
            username=username,
            email=email,
            full_name=full_name,
            role=role,
            password_hash=password_hash,
        )

    async def set_password(
        self, username: str, password: str, *, check_strength: bool = True
    ) -> User:
        user = await self.users.get_by_username(username)
        if user is None:
            raise NotFoundError(f"no user named {username!r}")
        if check_strength:
            check_password_strength(password)
        return await self.users.update(user, password_hash=await hash_password_async(password))

    async def list_users(
        self, *, limit: int = 50, offset: int = 0, sort: str = "username"
    ) -> Page[User]:
        return await self.users.list(limit=limit, offset=offset, sort=sort)
