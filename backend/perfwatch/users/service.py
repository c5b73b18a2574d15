"""User rules: creating accounts and changing passwords. Flushes through the repository; the
caller's unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.api.security import Principal
from perfwatch.errors import ConflictError, NotFoundError, ValidationFailedError
from perfwatch.kit.repository import Page
from perfwatch.models import User, UserRole
from perfwatch.users.passwords import check_password_strength, hash_password_async
from perfwatch.users.principals import forget_when_committed
from perfwatch.users.repository import UserRepository

USERNAME_ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")
# What the users API may sort by ("-name" for descending).
API_SORT_FIELDS = ("username", "created_at", "last_login_at")
UPDATABLE_FIELDS = frozenset({"role", "is_active", "email", "full_name"})


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
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        sort: str = "username",
        role: UserRole | None = None,
        is_active: bool | None = None,
        username_contains: str | None = None,
        include_deleted: bool = False,
    ) -> Page[User]:
        """A page of users; ``sort`` is a comma-separated list of ``API_SORT_FIELDS``, each
        optionally prefixed with ``-`` for descending."""
        fields = [part.strip() for part in sort.split(",") if part.strip()] or ["username"]
        for field in fields:
            if field.lstrip("+-") not in API_SORT_FIELDS:
                raise ValidationFailedError(
                    f"cannot sort by {field.lstrip('+-')!r}; allowed: "
                    + ", ".join(API_SORT_FIELDS)
                    + " (prefix '-' for descending)"
                )
        filters: dict[str, Any] = {}
        if role is not None:
            filters["role"] = role
        if is_active is not None:
            filters["is_active"] = is_active
        if username_contains:
            filters["username__icontains"] = username_contains
        return await self.users.list(
            filters=filters,
            limit=limit,
            offset=offset,
            sort=fields,
            include_deleted=include_deleted,
        )

    async def get_user(self, user_id: uuid.UUID, *, include_deleted: bool = False) -> User:
        user = await self.users.get(user_id, include_deleted=include_deleted)
        if user is None:
            raise NotFoundError(f"no user with id {user_id}")
        return user

    async def _keep_an_admin(self, user: User, *, losing_admin: bool) -> None:
        """Refuse a change that would leave no active administrator."""
        if not losing_admin or user.role is not UserRole.ADMIN or not user.is_active:
            return
        admins = await self.users.active_admin_ids(lock=True)
        if not [admin for admin in admins if admin != user.id]:
            raise ConflictError(
                "this is the last active administrator; make another user an active admin first"
            )

    async def update_user(self, user_id: uuid.UUID, changes: Mapping[str, Any]) -> User:
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise ValidationFailedError(f"cannot change {', '.join(sorted(unknown))}")
        user = await self.get_user(user_id)
        demoted = "role" in changes and changes["role"] is not UserRole.ADMIN
        losing_admin = demoted or changes.get("is_active") is False
        await self._keep_an_admin(user, losing_admin=losing_admin)
        if not changes:
            return user
        forget_when_committed(self.users.session, user.id)
        return await self.users.update(user, **dict(changes))

    async def delete_user(self, user_id: uuid.UUID, *, actor: Principal) -> None:
        """Soft-delete: the row stays (restorable), the account can no longer log in."""
        if user_id == actor.id:
            raise ConflictError("you cannot delete your own account; ask another administrator")
        user = await self.get_user(user_id)
        await self._keep_an_admin(user, losing_admin=True)
        forget_when_committed(self.users.session, user.id)
        await self.users.soft_delete(user)

    async def restore_user(self, user_id: uuid.UUID) -> User:
        user = await self.get_user(user_id, include_deleted=True)
        if user.deleted_at is None:
            return user  # nothing to do: restoring is idempotent
        return await self.users.restore(user)
