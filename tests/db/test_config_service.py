"""``ConfigService.set_entry``: the one way a setting is stored (API, CLI), on PostgreSQL and
SQLite. Its ``updated_at`` stamp is what the sampler's config watcher compares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.config_store.repository import ConfigRepository
from perfwatch.config_store.service import ConfigService
from perfwatch.contract.runtime_config import BY_KEY
from perfwatch.errors import ValidationFailedError
from perfwatch.models import ConfigEntry


async def fresh_entry(session: AsyncSession, key: str) -> ConfigEntry:
    session.expunge_all()
    entry = await ConfigRepository(session).get(key)
    assert entry is not None
    return entry


async def test_set_entry_creates_a_known_entry_with_its_description(
    session: AsyncSession,
) -> None:
    view = await ConfigService(session).set_entry("sampler.interval.cpu", 2, updated_by="alice")

    assert (view.key, view.value, view.known) == ("sampler.interval.cpu", 2, True)
    entry = await fresh_entry(session, "sampler.interval.cpu")
    assert (entry.value, entry.updated_by, entry.description) == (
        2,
        "alice",
        BY_KEY["sampler.interval.cpu"].description,
    )
    assert entry.updated_at.utcoffset() == timedelta(0)


async def test_set_entry_updates_an_existing_entry(session: AsyncSession) -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    await ConfigRepository(session).create(
        key="api.max_points", value=1500, description="Most points", updated_at=long_ago
    )

    view = await ConfigService(session).set_entry("api.max_points", 3000, updated_by="bob")

    assert view.value == 3000
    entry = await fresh_entry(session, "api.max_points")
    assert (entry.value, entry.updated_by, entry.description) == (3000, "bob", "Most points")
    assert entry.updated_at > long_ago + timedelta(days=365)
    assert await ConfigRepository(session).count() == 1


async def test_set_entry_stamps_past_the_newest_entry_even_when_the_clock_is_behind(
    session: AsyncSession,
) -> None:
    # Another writer's clock ran ahead: the watcher's marker (max updated_at) must still move.
    ahead = datetime.now(UTC) + timedelta(hours=1)
    await ConfigRepository(session).create(key="custom.other", value=1, updated_at=ahead)
    service = ConfigService(session)

    await service.set_entry("sampler.interval.memory", 5, updated_by="cli")
    first = (await fresh_entry(session, "sampler.interval.memory")).updated_at
    await service.set_entry("sampler.interval.memory", 5, updated_by="cli")  # same value
    second = (await fresh_entry(session, "sampler.interval.memory")).updated_at

    assert ahead < first < second
    assert await ConfigRepository(session).newest_update() == second


@pytest.mark.parametrize(
    "value",
    [0, -3, 2.5, "text", "", True, False, [1, 2, 3], [], {"a": {"b": [1, "x"]}}, {}, "ünïcödé ✓"],
)
async def test_a_free_form_entry_stores_any_json_value(session: AsyncSession, value: Any) -> None:
    service = ConfigService(session)
    await service.set_entry("custom.any", value, updated_by="cli", allow_unknown=True)

    entry = await fresh_entry(session, "custom.any")
    assert entry.value == value
    assert type(entry.value) is type(value)


async def test_none_is_stored_as_json_null(session: AsyncSession) -> None:
    service = ConfigService(session)
    await service.set_entry("custom.optional", 5, updated_by="cli", allow_unknown=True)

    await service.set_entry("custom.optional", None, updated_by="cli", allow_unknown=True)

    session.expunge_all()
    repo = ConfigRepository(session)
    assert await repo.as_dict() == {"custom.optional": None}
    raw = await session.execute(text("SELECT value IS NULL FROM config_entries"))
    assert not raw.scalar_one(), "JSON null, not SQL NULL (the column is NOT NULL)"


async def test_a_free_form_entry_can_change_the_type_of_its_value(session: AsyncSession) -> None:
    service = ConfigService(session)
    await service.set_entry("custom.hosts", "web-1", updated_by="cli", allow_unknown=True)

    hosts = ["web-1", "web-2"]
    await service.set_entry("custom.hosts", hosts, updated_by="cli", allow_unknown=True)

    assert (await fresh_entry(session, "custom.hosts")).value == ["web-1", "web-2"]


async def test_unknown_keys_and_invalid_values_are_refused_and_nothing_is_stored(
    session: AsyncSession,
) -> None:
    service = ConfigService(session)

    with pytest.raises(ValidationFailedError) as unknown:
        await service.set_entry("custom.note", "hello", updated_by="api")
    assert unknown.value.code == "unknown_config_key"
    with pytest.raises(ValidationFailedError, match=r"api\.max_points must be between 10 and"):
        await service.set_entry("api.max_points", 4, updated_by="api")

    assert await ConfigRepository(session).count() == 0
