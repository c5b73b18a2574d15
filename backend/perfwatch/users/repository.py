from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import func, select

from perfwatch.kit.repository import Repository
from perfwatch.models import User, UserRole


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

    async def active_admin_ids(self, *, lock: bool = False) -> list[uuid.UUID]:
        """Ids of the active, non-deleted administrators. ``lock``: ``FOR UPDATE`` on
        PostgreSQL, so two requests demoting two admins at once cannot leave none (SQLite
        serialises writers anyway and ignores the clause)."""
        query = select(User.id).where(
            User.role == UserRole.ADMIN, User.is_active.is_(True), User.deleted_at.is_(None)
        )
        if lock:
            query = query.with_for_update()
        return list((await self.session.execute(query)).scalars())
