from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from sqlalchemy import func, or_, select

from perfwatch.errors import ConflictError
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

    # The lookups below ignore case, so two names that differ only in case must not both exist
    # (get_by_username would find two rows). The unique constraints compare exactly; these
    # checks refuse case variants, soft-deleted rows included, as the constraints do.
    async def create(self, item: User | None = None, /, **values: Any) -> User:
        await self._refuse_case_variants([item if item is not None else values])
        return await super().create(item, **values)

    async def bulk_create(self, items: Iterable[User | Mapping[str, Any]]) -> list[User]:
        items = list(items)
        await self._refuse_case_variants(items)
        return await super().bulk_create(items)

    async def update(self, item: User, /, **values: Any) -> User:
        await self._refuse_case_variants([values], exclude=item.id)
        return await super().update(item, **values)

    async def _refuse_case_variants(
        self, candidates: list[User | Mapping[str, Any]], *, exclude: uuid.UUID | None = None
    ) -> None:
        for field in ("username", "email"):
            found = (
                item.get(field) if isinstance(item, Mapping) else getattr(item, field)
                for item in candidates
            )
            values = [value for value in found if isinstance(value, str)]
            if not values:
                continue
            if len({value.lower() for value in values}) < len(values):
                raise ConflictError(self.conflict_messages[field])
            column = getattr(User, field)
            same = [func.lower(column) == func.lower(value) for value in values]
            query = select(column).where(or_(*same))
            if exclude is not None:
                query = query.where(User.id != exclude)
            if (await self.session.execute(query.limit(1))).first() is not None:
                raise ConflictError(self.conflict_messages[field])

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
