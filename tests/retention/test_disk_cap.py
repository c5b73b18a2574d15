"""The disk cap (``storage.max_bytes``) on both dialects: the oldest raw day (every type) goes
first, then the oldest tier months, measuring after each; today's raw day is never expired.
And SQLite gives the space back: the file shrinks (converting a pre-0003 file once)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import make_url

from perfwatch.config_store.service import ConfigService
from perfwatch.db.session import Database, unit_of_work
from perfwatch.models import MetricTierHour, MetricTierMinute
from perfwatch.retention.expiry import store_for
from perfwatch.retention.job import run_retention
from tests.support.retention import (
    NOW,
    add_policy,
    day,
    make_partitions,
    opened,
    raw_left,
    set_rolled_up,
    store_raw,
    store_tier,
    tier_left,
)

MONTHS = [datetime(2026, month, 5, tzinfo=UTC) for month in (3, 4, 5, 6)]
# Documents of a few kilobytes, so a day of them fills pages of its own on SQLite.
PADDING = 3000


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    async with opened(fresh_db) as opened_database:
        yield opened_database


async def set_cap(database: Database, max_bytes: int) -> None:
    async with unit_of_work(database.sessionmaker) as session:
        await ConfigService(session).set_entry("storage.max_bytes", max_bytes, updated_by="test")


async def history(database: Database) -> None:
    """No policies at all: only the cap expires anything."""
    await make_partitions(database, day(-4), day(0), MONTHS[0].date())
    for offset in range(-4, 1):
        for metric_type in ("cpu", "memory"):
            await store_raw(database, metric_type, day(offset), 6, partition=False, padding=PADDING)
    for bucket in MONTHS:
        await store_tier(database, MetricTierMinute, "cpu", bucket)
        await store_tier(database, MetricTierHour, "cpu", bucket)


async def test_the_cap_expires_the_oldest_raw_day_first_and_only_what_it_must(
    database: Database,
) -> None:
    await history(database)
    await run_retention(database, NOW, None)  # partitions ahead made now, not during the next
    await set_cap(database, 0)
    size = await store_for(database.engine).database_size(database.engine)
    await set_cap(database, size - 1)

    report = await run_retention(database, NOW, None)

    assert report.cap is not None and not report.cap.over
    assert report.cap.bytes_after <= size - 1 < report.cap.bytes_before
    assert {(o.expiry.stored.label()) for o in report.cap.expired if not o.expiry.stored.empty} == {
        f"raw cpu {day(-4)}",
        f"raw memory {day(-4)}",
    }
    assert sorted({d for (_, d) in await raw_left(database)}) == [day(n) for n in range(-3, 1)]
    assert report.details()["disk_cap"]["expired"] == 2


async def test_a_tiny_cap_leaves_today_and_this_month_only_oldest_first(database: Database) -> None:
    await history(database)
    await add_policy(database, "*", 30, 120, 365)  # nothing is past its window
    await set_rolled_up(database, NOW)
    await set_cap(database, 1)

    report = await run_retention(database, NOW, None)

    assert report.cap is not None and report.cap.over
    assert set(await raw_left(database)) == {("cpu", day(0)), ("memory", day(0))}
    assert await tier_left(database, MetricTierMinute) == {("cpu", "2026-06")}
    assert await tier_left(database, MetricTierHour) == {("cpu", "2026-06")}
    order = [o.expiry.stored.label() for o in report.cap.expired if not o.expiry.stored.empty]
    assert order == [
        *(f"raw {kind} {day(n)}" for n in range(-4, 0) for kind in ("cpu", "memory")),
        "1m cpu 2026-03",
        "1m cpu 2026-04",
        "1m cpu 2026-05",
        "1h cpu 2026-03",
        "1h cpu 2026-04",
        "1h cpu 2026-05",
    ]


async def test_the_cap_off_or_not_reached_expires_nothing(database: Database) -> None:
    await history(database)
    report = await run_retention(database, NOW, None)
    assert report.cap is None
    await set_cap(database, 10**12)
    report = await run_retention(database, NOW, None)
    assert report.cap is not None and report.cap.expired == []
    assert len(await raw_left(database)) == 10


# ----- SQLite gives the space back ---------------------------------------------------------------


def file_size(url: str) -> int:
    path = make_url(url).database
    assert path
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


@pytest.mark.parametrize("dialect", ["sqlite"])
@pytest.mark.parametrize("old_file", [False, True], ids=["incremental", "before-0003"])
async def test_sqlite_file_shrinks_after_expiry(fresh_db: str, old_file: bool) -> None:
    async with opened(fresh_db) as database:
        await add_policy(database, "*", 1, 30, 60)
        await set_rolled_up(database, NOW)
        for offset in (-4, -3, -2, 0):
            await store_raw(database, "cpu", day(offset), 400, padding=PADDING)
    path = make_url(fresh_db).database
    assert path
    if old_file:  # as made before migration 0003: no auto-vacuum
        with sqlite3.connect(path, isolation_level=None) as connection:
            connection.execute("PRAGMA auto_vacuum=NONE")
            connection.execute("VACUUM")
    before = file_size(fresh_db)

    async with opened(fresh_db) as database:
        report = await run_retention(database, NOW, None)
        assert set(await raw_left(database)) == {("cpu", day(0))}

    after = file_size(fresh_db)
    assert after < before * 0.4, (before, after)  # three of four days' pages given back
    assert report.converted_to_incremental is old_file
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        assert connection.execute("PRAGMA freelist_count").fetchone() == (0,)
