from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, ClassVar, TypeVar, overload

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select

from perfwatch.errors import ValidationFailedError
from perfwatch.kit.repository import Repository
from perfwatch.models import ConfigEntry

T = TypeVar("T")

_MISSING: Any = object()


class ConfigRepository(Repository[ConfigEntry]):
    model = ConfigEntry
    sortable_fields: ClassVar[frozenset[str]] = frozenset({"key", "updated_at"})
    filterable_fields: ClassVar[frozenset[str]] = frozenset({"key", "updated_by"})
    default_sort = ("key",)

    def _primary_key(self) -> Any:
        return ConfigEntry.key

    @overload
    async def get_value(self, key: str, as_type: type[T]) -> T: ...
    @overload
    async def get_value(self, key: str, as_type: type[T], default: T) -> T: ...

    async def get_value(self, key: str, as_type: type[T], default: T = _MISSING) -> T:
        """The value of ``key`` converted to ``as_type``; ``default`` when the key is absent."""
        entry = await self.get(key)
        if entry is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        try:
            return TypeAdapter(as_type).validate_python(entry.value)
        except ValidationError as exc:
            raise ValidationFailedError(
                f"config {key!r} holds {entry.value!r}, "
                f"not a valid {getattr(as_type, '__name__', as_type)}"
            ) from exc

    async def all(self) -> builtins.list[ConfigEntry]:
        """Every entry by key: a page (at most MAX_PAGE_SIZE rows) would silently drop the rest."""
        entries = await self.session.execute(select(ConfigEntry).order_by(ConfigEntry.key))
        return list(entries.scalars())

    async def as_dict(self) -> dict[str, Any]:
        return {entry.key: entry.value for entry in await self.all()}

    async def newest_update(self) -> datetime | None:
        """The latest ``updated_at`` of any entry (what the sampler's change marker reads)."""
        return (await self.session.execute(select(func.max(ConfigEntry.updated_at)))).scalar()
