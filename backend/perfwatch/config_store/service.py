"""Configuration rules: reading entries with their defaults, changing them with validation.
Flushes through the repository; the caller's unit of work commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.config_store.repository import ConfigRepository
from perfwatch.config_store.validation import unknown_key_message, validate_value
from perfwatch.contract.runtime_config import BY_KEY, KNOWN_KEYS, is_known, known_keys_text, shown
from perfwatch.db.types import utcnow
from perfwatch.errors import NotFoundError, ValidationFailedError
from perfwatch.models import ConfigEntry


@dataclass(frozen=True, slots=True)
class ConfigView:
    """One entry as the API shows it. A known key without a row shows its default, with
    ``updated_at``/``updated_by`` null (the sampler uses the same default)."""

    key: str
    value: Any
    default: Any
    description: str | None
    updated_at: datetime | None
    updated_by: str | None
    known: bool

    @classmethod
    def of(cls, entry: ConfigEntry) -> ConfigView:
        known = BY_KEY.get(entry.key)
        return cls(
            key=entry.key,
            value=entry.value,
            default=known.default if known else None,
            description=entry.description or (known.description if known else None),
            updated_at=entry.updated_at,
            updated_by=entry.updated_by,
            known=is_known(entry.key),
        )

    @classmethod
    def default_of(cls, key: str) -> ConfigView:
        return cls(
            key=key,
            value=BY_KEY[key].default,
            default=BY_KEY[key].default,
            description=BY_KEY[key].description,
            updated_at=None,
            updated_by=None,
            known=True,
        )


class ConfigService:
    def __init__(self, session: AsyncSession) -> None:
        self.entries = ConfigRepository(session)

    async def list_entries(self) -> list[ConfigView]:
        """Every stored entry, plus the known keys not stored yet (with their defaults)."""
        stored = {entry.key: ConfigView.of(entry) for entry in await self.entries.all()}
        for key in KNOWN_KEYS:
            stored.setdefault(key, ConfigView.default_of(key))
        return [stored[key] for key in sorted(stored)]

    async def get_entry(self, key: str) -> ConfigView:
        entry = await self.entries.get(key)
        if entry is not None:
            return ConfigView.of(entry)
        if is_known(key):
            return ConfigView.default_of(key)
        raise NotFoundError(f"no configuration entry {shown(key)}; known keys: {known_keys_text()}")

    async def set_entry(
        self, key: str, value: Any, *, updated_by: str, allow_unknown: bool = False
    ) -> ConfigView:
        """Store ``value`` under ``key`` after checking it against the key's rule.

        Unknown keys are refused unless ``allow_unknown`` (the CLI's free-form entries).
        ``updated_at`` always moves forward — past the newest entry's, even when the value is
        unchanged — so the sampler's change marker (count, max(updated_at)) notices."""
        value = validate_value(key, value)
        if not allow_unknown and not is_known(key):
            raise ValidationFailedError(unknown_key_message(key), code="unknown_config_key")
        stamp = await self._next_stamp()
        entry = await self.entries.get(key)
        if entry is None:
            entry = await self.entries.create(
                key=key,
                value=value,
                description=BY_KEY[key].description if is_known(key) else None,
                updated_at=stamp,
                updated_by=updated_by,
            )
        else:
            entry = await self.entries.update(
                entry, value=value, updated_at=stamp, updated_by=updated_by
            )
        return ConfigView.of(entry)

    async def _next_stamp(self) -> datetime:
        now = utcnow()
        newest = await self.entries.newest_update()
        if newest is not None and newest >= now:  # a clock behind an earlier writer's
            return newest + timedelta(microseconds=1)
        return now
