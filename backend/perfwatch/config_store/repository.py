"""Stored configuration entries (``config_entries``): reads and the change marker."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import func, select

from perfwatch.kit.repository import Repository
from perfwatch.models import ConfigEntry


class ConfigRepository(Repository[ConfigEntry]):
    model = ConfigEntry
    sortable_fields: ClassVar[frozenset[str]] = frozenset({"key", "updated_at"})
    filterable_fields: ClassVar[frozenset[str]] = frozenset({"key", "updated_by"})
    default_sort = ("key",)

    def _primary_key(self) -> Any:
        return ConfigEntry.key

    async def all(self) -> builtins.list[ConfigEntry]:
        """Every entry by key: a page (at most MAX_PAGE_SIZE rows) would silently drop the rest."""
        entries = await self.session.execute(select(ConfigEntry).order_by(ConfigEntry.key))
        return list(entries.scalars())

    async def as_dict(self) -> dict[str, Any]:
        return {entry.key: entry.value for entry in await self.all()}

    async def newest_update(self) -> datetime | None:
        """The latest ``updated_at`` of any entry (what the sampler's change marker reads)."""
        return (await self.session.execute(select(func.max(ConfigEntry.updated_at)))).scalar()
