from __future__ import annotations

from typing import ClassVar

from sqlalchemy import func

from perfwatch.kit.repository import Repository
from perfwatch.models import User


class UserRepository(Repository[User]):
    model = User
    sortable_fields: ClassVar[frozenset[str]] = frozenset(
        {"username", "email", "full_name", "role", "created_at", "updated_at", "last_login_at"}
    )
    filterable_fields: ClassVar[frozenset[str]] = frozenset(
        {"username", "email", "full_name", "role", "is_active", "created_at", "last_login_at"}
    )
    default_sort = ("username",)
    conflict_messages: ClassVar[dict[str, str]] = {
        "username": "a user with this username already exists",
        "email": "a user with this email address already exists",
    }

    async def get_by_username(self, username: str, *, include_deleted: bool = False) -> User | None:
        query = self._base_query(include_deleted=include_deleted).where(
            func.lower(User.username) == username.lower()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_by_email(self, email: str) -> User | None:
        query = self._base_query().where(func.lower(User.email) == email.lower())
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_active_by_username(self, username: str) -> User | None:
        """The account that may log in: exists, not soft-deleted, active."""
        user = await self.get_by_username(username)
        return user if user is not None and user.is_active else None

    async def list_active(self, *, limit: int = 50, offset: int = 0) -> list[User]:
        page = await self.list(filters={"is_active": True}, limit=limit, offset=offset)
        return page.items
