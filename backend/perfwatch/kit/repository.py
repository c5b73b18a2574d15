"""A typed generic async repository: query, flush, never commit.

Filters are given as ``{"field": value}`` (equality) or ``{"field__op": value}`` with ``op`` one of
``eq, ne, in, gt, gte, lt, lte, icontains, isnull``. Only whitelisted fields may be filtered or
sorted on; anything else raises ``ValidationFailedError`` with the allowed names.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from perfwatch.db.base import Base, SoftDeleteMixin
from perfwatch.errors import ConflictError, NotFoundError, ValidationFailedError

ModelT = TypeVar("ModelT", bound=Base)

MAX_PAGE_SIZE = 1000

_OPERATORS: dict[str, Callable[[InstrumentedAttribute[Any], Any], ColumnElement[bool]]] = {
    "eq": lambda column, value: column == value,
    "ne": lambda column, value: column != value,
    "in": lambda column, value: column.in_(list(value)),
    "gt": lambda column, value: column > value,
    "gte": lambda column, value: column >= value,
    "lt": lambda column, value: column < value,
    "lte": lambda column, value: column <= value,
    "icontains": lambda column, value: func.lower(column).contains(
        str(value).lower(), autoescape=True
    ),
    "isnull": lambda column, value: column.is_(None) if value else column.is_not(None),
}


# PostgreSQL and SQLite wording of a uniqueness violation, and of the other integrity rules.
_UNIQUE_VIOLATION = re.compile(r"duplicate key value violates unique|UNIQUE constraint failed")
_BROKEN_RULE = re.compile(
    r'null value in column "(?P<null>[^"]+)"|violates check constraint "(?P<check>[^"]+)"'
    r"|NOT NULL constraint failed: (?P<sqlite_null>[\w.]+)"
    r"|CHECK constraint failed: (?P<sqlite_check>\w+)"
)


@dataclass(frozen=True, slots=True)
class Page(Generic[ModelT]):
    items: list[ModelT]
    total: int
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total


class Repository(Generic[ModelT]):
    model: ClassVar[type[Base]]
    sortable_fields: ClassVar[frozenset[str]] = frozenset()
    filterable_fields: ClassVar[frozenset[str]] = frozenset()
    default_sort: ClassVar[Sequence[str]] = ()
    # Maps a column named in a uniqueness violation to the message users see.
    conflict_messages: ClassVar[Mapping[str, str]] = {}

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ----- reads -------------------------------------------------------------------------
    def _base_query(self, *, include_deleted: bool = False) -> Select[ModelT]:
        query: Select[ModelT] = select(self.model)
        if not include_deleted and issubclass(self.model, SoftDeleteMixin):
            query = query.where(self.model.deleted_at.is_(None))
        return query

    def _primary_key(self) -> InstrumentedAttribute[Any]:
        key: InstrumentedAttribute[Any] = getattr(self.model, "id")  # noqa: B009
        return key

    async def get(self, id_: Any, *, include_deleted: bool = False) -> ModelT | None:
        query = self._base_query(include_deleted=include_deleted).where(self._primary_key() == id_)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_or_raise(self, id_: Any, *, include_deleted: bool = False) -> ModelT:
        item = await self.get(id_, include_deleted=include_deleted)
        if item is None:
            raise NotFoundError(f"{self.model.__name__} {id_} not found")
        return item

    async def get_many(
        self, ids: Iterable[Any], *, include_deleted: bool = False
    ) -> builtins.list[ModelT]:
        wanted = list(ids)
        if not wanted:
            return []
        query = self._base_query(include_deleted=include_deleted).where(
            self._primary_key().in_(wanted)
        )
        return list((await self.session.execute(query)).scalars())

    async def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort: Sequence[str] | str | None = None,
        limit: int = 50,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> Page[ModelT]:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationFailedError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        if offset < 0:
            raise ValidationFailedError(f"offset must be 0 or more, got {offset}")
        conditions = self._conditions(filters or {})
        query = self._base_query(include_deleted=include_deleted).where(*conditions)
        total_query = select(func.count()).select_from(query.order_by(None).subquery())
        total = int((await self.session.execute(total_query)).scalar_one())
        ordered = query.order_by(*self._ordering(sort)).limit(limit).offset(offset)
        items = list((await self.session.execute(ordered)).scalars())
        return Page(items=items, total=total, limit=limit, offset=offset)

    async def count(
        self, *, filters: Mapping[str, Any] | None = None, include_deleted: bool = False
    ) -> int:
        query = self._base_query(include_deleted=include_deleted).where(
            *self._conditions(filters or {})
        )
        total_query = select(func.count()).select_from(query.subquery())
        return int((await self.session.execute(total_query)).scalar_one())

    async def exists(self, *, include_deleted: bool = False, **filters: Any) -> bool:
        query = self._base_query(include_deleted=include_deleted).where(*self._conditions(filters))
        return bool((await self.session.execute(select(query.exists()))).scalar())

    # ----- writes (flush only; the caller's unit of work commits) ------------------------
    async def create(self, item: ModelT | None = None, /, **values: Any) -> ModelT:
        instance = item if item is not None else self.model(**values)
        await self._flush_guarded(lambda: self.session.add(instance), added=[instance])
        return instance  # type: ignore[return-value]

    async def bulk_create(
        self, items: Iterable[ModelT | Mapping[str, Any]]
    ) -> builtins.list[ModelT]:
        instances = [item if isinstance(item, Base) else self.model(**item) for item in items]
        if instances:
            await self._flush_guarded(lambda: self.session.add_all(instances), added=instances)
        return instances  # type: ignore[return-value]

    async def update(self, item: ModelT, /, **values: Any) -> ModelT:
        unknown = set(values) - set(self.model.__mapper__.column_attrs.keys())
        if unknown:
            raise ValidationFailedError(
                f"{self.model.__name__} has no field(s) {', '.join(sorted(unknown))}"
            )

        def apply() -> None:
            for name, value in values.items():
                setattr(item, name, value)

        await self._flush_guarded(apply, changed=[item])
        return item

    async def delete(self, item: ModelT) -> None:
        await self.session.delete(item)
        await self.session.flush()

    async def soft_delete(self, item: ModelT) -> ModelT:
        self._require_soft_delete()
        item.soft_delete()  # type: ignore[attr-defined]
        await self.session.flush()
        return item

    async def restore(self, item: ModelT) -> ModelT:
        self._require_soft_delete()
        # Restoring can collide with a newer row that took the same unique value.
        await self._flush_guarded(item.restore, changed=[item])  # type: ignore[attr-defined]
        return item

    # ----- helpers ----------------------------------------------------------------------
    def _require_soft_delete(self) -> None:
        if not issubclass(self.model, SoftDeleteMixin):
            raise ValidationFailedError(f"{self.model.__name__} does not support soft delete")

    async def _flush_guarded(
        self, change: Callable[[], None], added: Sequence[Base] = (), changed: Sequence[Base] = ()
    ) -> None:
        """Apply ``change`` and flush it inside a savepoint, so that a uniqueness violation
        becomes a ``ConflictError`` and leaves the caller's transaction usable."""
        await self.session.flush()  # earlier pending work must not fail inside our savepoint
        try:
            async with self.session.begin_nested():
                change()
        except Exception as exc:
            for instance in added:
                if instance in self.session:
                    self.session.expunge(instance)
            for instance in changed:
                # Rolling the savepoint back expired the instance, and an async session cannot
                # lazy-load: reload the stored values so the caller can still use it.
                if inspect(instance).persistent:
                    await self.session.refresh(instance)
            if isinstance(exc, IntegrityError):
                raise self._conflict_error(exc) from exc
            raise

    def _conflict_error(self, exc: IntegrityError) -> ConflictError:
        message = str(exc.orig)
        if not _UNIQUE_VIOLATION.search(message):
            # A NOT NULL or CHECK rule: naming a duplicate here would send the user astray.
            rule = _BROKEN_RULE.search(message)
            broken = next((name for name in rule.groups() if name), "") if rule else ""
            return ConflictError(
                f"{self.model.__name__} breaks a database rule ({broken or 'integrity'})"
            )
        for column, text in self.conflict_messages.items():
            if re.search(rf"(\b|_|\.){re.escape(column)}(\b|_|\")", message):
                return ConflictError(text)
        return ConflictError(f"{self.model.__name__} conflicts with an existing row")

    def _conditions(self, filters: Mapping[str, Any]) -> builtins.list[ColumnElement[bool]]:
        conditions = []
        for key, value in filters.items():
            field, _, operator = key.partition("__")
            operator = operator or "eq"
            if field not in self.filterable_fields:
                allowed = ", ".join(sorted(self.filterable_fields))
                raise ValidationFailedError(f"cannot filter on {field!r}; allowed: {allowed}")
            build = _OPERATORS.get(operator)
            if build is None:
                raise ValidationFailedError(
                    f"unknown filter operator {operator!r}; allowed: {', '.join(_OPERATORS)}"
                )
            if operator == "in" and (isinstance(value, str) or not isinstance(value, Iterable)):
                raise ValidationFailedError(f"filter {key!r} needs a list of values")
            conditions.append(build(getattr(self.model, field), value))
        return conditions

    def _ordering(self, sort: Sequence[str] | str | None) -> builtins.list[Any]:
        fields = [sort] if isinstance(sort, str) else list(sort or self.default_sort)
        ordering: builtins.list[Any] = []
        for spec in fields:
            descending = spec.startswith("-")
            name = spec.lstrip("+-")
            if name not in self.sortable_fields:
                raise ValidationFailedError(
                    f"cannot sort by {name!r}; allowed: {', '.join(sorted(self.sortable_fields))}"
                )
            column = getattr(self.model, name)
            ordering.append(column.desc() if descending else column.asc())
        # A unique tie-breaker keeps offset pagination stable.
        ordering.append(self._primary_key().asc())
        return ordering
