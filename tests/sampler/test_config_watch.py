"""The sampler's config watcher: a full read only when config_entries changed (both dialects)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.db.engine import build_engine
from perfwatch.db.session import make_sessionmaker
from perfwatch.sampler.config_watch import ConfigWatcher
from tests.support.helpers import closed_postgres_url, make_settings
from tests.support.sampling import set_config


@pytest.fixture
async def sessionmaker(fresh_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(make_settings(fresh_db))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_entries_are_read_in_full_only_when_they_changed(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await set_config(sessionmaker, {"sampler.interval.cpu": 1})
    watcher = ConfigWatcher(sessionmaker)
    try:
        first = await watcher.changed_values()
        assert first is not None and first["sampler.interval.cpu"] == 1
        assert await watcher.changed_values() is None  # unchanged: the marker query only
        assert await watcher.changed_values() is None
        assert watcher.full_reads == 1

        await set_config(sessionmaker, {"sampler.interval.cpu": 7})  # an update
        changed = await watcher.changed_values()
        assert changed is not None and changed["sampler.interval.cpu"] == 7
        await set_config(sessionmaker, {"sampler.interval.memory": 3})  # a new entry
        added = await watcher.changed_values()
        assert added is not None and added["sampler.interval.memory"] == 3
        assert await watcher.changed_values() is None
        assert watcher.full_reads == 3
    finally:
        await watcher.close()


async def test_an_unreachable_database_raises_and_the_next_call_reconnects(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    engine = build_engine(make_settings(closed_postgres_url(), db_connect_timeout=2))
    away = ConfigWatcher(make_sessionmaker(engine))
    with pytest.raises(OSError):
        await away.changed_values()
    await away.close()
    await engine.dispose()

    watcher = ConfigWatcher(sessionmaker)
    try:
        assert await watcher.changed_values() is not None
        await watcher.close(broken=True)  # as after a failed query: the next call reconnects
        assert await watcher.changed_values() is None  # same marker on a new connection
    finally:
        await watcher.close()
