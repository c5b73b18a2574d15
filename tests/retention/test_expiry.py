"""Expiry by the archive policies on both dialects, with a controllable clock: raw days per
type with the ``*`` fallback, tier months, the tier job's watermark, archiving first, dry runs,
and runs that fail or are killed half-way."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from perfwatch.db.session import Database, unit_of_work
from perfwatch.models import (
    ArchiveAction,
    ArchivePolicy,
    MaintenanceState,
    MetricTierHour,
    MetricTierMinute,
    MetricTierPending,
)
from perfwatch.retention.expiry import Expirer
from perfwatch.retention.job import preview_retention, run_retention
from tests.support.retention import (
    NOW,
    RecordingArchiver,
    add_policy,
    day,
    make_partitions,
    opened,
    pg_tables,
    raw_left,
    set_rolled_up,
    store_raw,
    store_tier,
    tier_left,
)

TYPES = ("cpu", "memory", "processes", "gpu")  # gpu: no partition of its own, `*` policy
DAYS = range(-5, 1)  # June 10 … June 15 (today)
MONTHS = (
    datetime(2026, 3, 10, tzinfo=UTC),
    datetime(2026, 4, 10, tzinfo=UTC),
    datetime(2026, 5, 20, tzinfo=UTC),
    datetime(2026, 6, 10, 5, tzinfo=UTC),  # a minute of a raw day that expires
)


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    async with opened(fresh_db) as opened_database:
        yield opened_database


async def scenario(database: Database, *, rolled_up: datetime | None = NOW) -> None:
    """`*` raw 3 d; cpu raw 1 d; processes raw 2 d, archived; memory's own policy disabled
    (so `*` applies); 1-minute tier 30 d and 1-hour tier 60 d for all."""
    await add_policy(database, "*", 3, 30, 60)
    await add_policy(database, "cpu", 1, 30, 60)
    await add_policy(database, "processes", 2, 30, 60, ArchiveAction.ARCHIVE)
    await add_policy(database, "memory", 1, 1, 1, enabled=False)
    await make_partitions(database, day(DAYS[0]), day(DAYS[-1]), MONTHS[0].date())
    for offset in DAYS:
        for metric_type in TYPES:
            await store_raw(database, metric_type, day(offset), partition=False)
    for bucket in MONTHS:
        for metric_type in ("cpu", "gpu"):
            await store_tier(database, MetricTierMinute, metric_type, bucket)
            await store_tier(database, MetricTierHour, metric_type, bucket)
    if rolled_up is not None:
        await set_rolled_up(database, rolled_up)


def days_of(left: dict[tuple[str, date], int], metric_type: str) -> list[int]:
    return sorted((d - day(0)).days for (kind, d) in left if kind == metric_type)


async def test_raw_days_expire_per_type_with_the_fallback_and_tiers_remain(
    database: Database,
) -> None:
    await scenario(database)

    report = await run_retention(database, NOW, archiver=None)

    left = await raw_left(database)
    assert days_of(left, "cpu") == [-1, 0]  # 1 day: June 13 ended 1.5 days before NOW
    assert days_of(left, "memory") == [-3, -2, -1, 0]  # its own policy is disabled: `*`
    assert days_of(left, "gpu") == [-3, -2, -1, 0]
    # Archived before it goes, and no archive writer here: kept, and said why.
    assert days_of(left, "processes") == list(DAYS)
    kept = [o for o in report.outcomes if o.kept]
    assert {o.expiry.stored.label() for o in kept} == {
        f"raw processes {day(offset)}" for offset in (-5, -4, -3)
    }
    assert all("no archive writer" in (o.kept or "") for o in kept)
    assert all(count == 4 for count in left.values())  # nothing half-expired
    # Tier months expire whole once they end 30 (1 m) or 60 (1 h) days before NOW.
    assert await tier_left(database, MetricTierMinute) == {
        (kind, month) for kind in ("cpu", "gpu") for month in ("2026-05", "2026-06")
    }
    assert await tier_left(database, MetricTierHour) == {
        (kind, month) for kind in ("cpu", "gpu") for month in ("2026-04", "2026-05", "2026-06")
    }
    # The tiers still answer for the raw day that is gone.
    async with database.sessionmaker() as session:
        minute = await session.scalar(
            select(MetricTierMinute.snapshots).where(
                MetricTierMinute.metric_type == "cpu", MetricTierMinute.bucket == MONTHS[-1]
            )
        )
    assert minute == 60
    details = report.details()
    assert details["expired"] == {"raw": 4 + 2 + 2, "1m": 4, "1h": 2}
    assert details["kept"] == 3
    async with database.sessionmaker() as session:
        applied = (
            await session.execute(select(ArchivePolicy.metric_type, ArchivePolicy.last_run_at))
        ).all()
    assert {kind: at for kind, at in applied} == {
        "*": NOW,
        "cpu": NOW,
        "processes": NOW,
        "memory": None,
    }


async def test_a_second_run_finds_nothing_more(database: Database) -> None:
    await scenario(database)
    await run_retention(database, NOW, archiver=None)
    again = await run_retention(database, NOW, archiver=None)
    assert [o for o in again.outcomes if not o.kept] == []


async def test_archive_policies_archive_each_day_once_before_it_goes(database: Database) -> None:
    await scenario(database)
    archiver = RecordingArchiver()

    await run_retention(database, NOW, archiver)

    assert archiver.calls == [("processes", day(offset)) for offset in (-5, -4, -3)]
    assert days_of(await raw_left(database), "processes") == [-2, -1, 0]


async def test_a_failed_archive_keeps_the_day(database: Database) -> None:
    await scenario(database)
    archiver = RecordingArchiver(failing={"processes"})

    report = await run_retention(database, NOW, archiver)

    assert days_of(await raw_left(database), "processes") == list(DAYS)
    assert len(archiver.calls) == 3
    assert all("No space left" in (o.kept or "") for o in report.outcomes if o.kept)
    assert days_of(await raw_left(database), "cpu") == [-1, 0]  # the others went on


async def test_raw_and_the_minute_tier_wait_for_the_tier_job(database: Database) -> None:
    await scenario(database, rolled_up=None)

    report = await run_retention(database, NOW, RecordingArchiver())

    assert days_of(await raw_left(database), "cpu") == list(DAYS)
    assert len(await tier_left(database, MetricTierMinute)) == 2 * len(MONTHS)
    # The 1-hour tier feeds nothing: it expires regardless.
    assert ("cpu", "2026-03") not in await tier_left(database, MetricTierHour)
    assert report.details()["rolled_up_until"] is None

    # Rolled up to the start of June 12: cpu's June 10 and 11 may go, not June 12 and 13.
    await set_rolled_up(database, datetime(2026, 6, 12, tzinfo=UTC))
    await run_retention(database, NOW, RecordingArchiver())
    assert days_of(await raw_left(database), "cpu") == [-3, -2, -1, 0]


async def test_a_day_with_minutes_pending_a_recompute_waits(database: Database) -> None:
    await scenario(database)
    async with unit_of_work(database.sessionmaker) as session:
        session.add(
            MetricTierPending(
                host="web-1", metric_type="cpu", minute=datetime(2026, 6, 11, 8, tzinfo=UTC)
            )
        )

    await run_retention(database, NOW, None)

    assert days_of(await raw_left(database), "cpu") == [-4, -1, 0]


async def test_a_dry_run_lists_what_would_go_and_changes_nothing(database: Database) -> None:
    await scenario(database)
    before = await state_of(database)

    preview = await preview_retention(database, NOW)

    assert await state_of(database) == before
    planned = [expiry for expiry in preview.planned if not expiry.stored.empty]
    labels = [expiry.stored.label() for expiry in planned]
    assert "raw cpu 2026-06-13" in labels and "raw cpu 2026-06-14" not in labels
    assert "raw gpu 2026-06-11" in labels and "raw gpu 2026-06-12" not in labels
    assert "1m gpu 2026-04" in labels and "1h cpu 2026-03" in labels
    assert [e.archive for e in planned if e.stored.metric_type == "processes"] == [True] * 3
    assert {e.stored.rows for e in planned if e.stored.resolution.name == "raw"} == {4}
    assert {e.stored.rows for e in planned if e.stored.resolution.name != "raw"} == {1}
    lines = preview.preview_lines()
    assert any(line.startswith("raw processes 2026-06-10") and "archive+" in line for line in lines)
    assert lines[-1] == "disk cap: off (storage.max_bytes = 0)"


async def state_of(database: Database) -> tuple[object, ...]:
    """Everything retention could change."""
    async with database.sessionmaker() as session:
        policies = (
            await session.execute(
                select(
                    ArchivePolicy.metric_type, ArchivePolicy.last_run_at, ArchivePolicy.updated_at
                )
            )
        ).all()
        states = (
            await session.execute(
                select(
                    MaintenanceState.name,
                    MaintenanceState.last_started_at,
                    MaintenanceState.watermark,
                )
            )
        ).all()
    tables: set[str] = set()
    if database.engine.dialect.name == "postgresql":
        tables = await pg_tables(database, "metric_")
    return (
        await raw_left(database),
        await tier_left(database, MetricTierMinute),
        await tier_left(database, MetricTierHour),
        sorted(policies),
        sorted(states),
        tables,
    )


# ----- PostgreSQL: drops, not deletes ---------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgres"])
async def test_postgres_drops_leaves_and_leaves_no_dead_tuples(database: Database) -> None:
    await scenario(database)
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(database.engine.sync_engine, "before_cursor_execute", listen)
    try:
        await run_retention(database, NOW, RecordingArchiver())
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", listen)

    tables = await pg_tables(database, "metric_snapshots_p202606")
    assert "metric_snapshots_p20260612_cpu" not in tables
    assert "metric_snapshots_p20260614_cpu" in tables
    # June 10 and 11 expired for every type: their day tables went too.
    assert not {
        name
        for name in tables
        if name.startswith(("metric_snapshots_p20260610", "metric_snapshots_p20260611"))
    }
    assert "metric_tier_1m_p202603" not in await pg_tables(database, "metric_tier_1m_p2026")
    # A leaf is dropped, never deleted from: only `_other` children (gpu) saw a DELETE.
    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert deletes and all("_other" in s for s in deletes)
    async with database.engine.connect() as connection:
        dead = (
            await connection.execute(
                text(
                    "SELECT relname, n_dead_tup FROM pg_stat_user_tables "
                    "WHERE relname LIKE 'metric_snapshots_p%' AND n_dead_tup > 0"
                )
            )
        ).all()
    assert dead == []


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgres"])
async def test_postgres_rows_in_the_default_partition_expire_by_delete(database: Database) -> None:
    await add_policy(database, "*", 3, 30, 60)
    await set_rolled_up(database, NOW)
    await store_raw(database, "cpu", day(-9), partition=False)  # no day table: DEFAULT
    await store_raw(database, "cpu", day(0))
    async with database.engine.connect() as connection:
        stranded = await connection.scalar(text("SELECT count(*) FROM metric_snapshots_default"))
    assert stranded == 4

    report = await run_retention(database, NOW, None)

    assert set(await raw_left(database)) == {("cpu", day(0))}
    assert report.details()["rows_deleted"] == 4


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgres"])
async def test_postgres_a_drop_that_cannot_get_its_lock_is_kept_whole(
    database: Database, fresh_db: str
) -> None:
    await scenario(database)
    async with opened(fresh_db) as reader, reader.engine.connect() as connection:
        # An open transaction still reading June 10's cpu leaf holds its lock.
        await connection.execute(text("SELECT count(*) FROM metric_snapshots_p20260610_cpu"))
        report = await run_retention(
            database,
            NOW,
            RecordingArchiver(),
            expirer=Expirer(database, RecordingArchiver(), lock_timeout_ms=50),
        )
        await connection.rollback()
    kept = [o for o in report.outcomes if o.kept]
    assert [o.expiry.stored.label() for o in kept] == ["raw cpu 2026-06-10"]
    assert "not unlocked within 50 ms" in (kept[0].kept or "")
    left = await raw_left(database)
    assert left[("cpu", day(-5))] == 4 and left[("cpu", day(-4))] == 0

    await run_retention(database, NOW, RecordingArchiver())  # the next run drops it
    assert days_of(await raw_left(database), "cpu") == [-1, 0]


# ----- a run killed half-way -------------------------------------------------------------------


async def test_a_killed_run_leaves_nothing_half_expired(
    database: Database, fresh_db: str, dialect: str
) -> None:
    """Killed while June 10's cpu rows wait for a lock someone else holds: that (type, day) is
    untouched (a PostgreSQL drop is atomic; a SQLite batch rolls back), and the next run expires
    it. What a SQLite run deleted in earlier batches stays deleted; the rest waits."""
    await scenario(database)
    expirer = Expirer(database, RecordingArchiver(), lock_timeout_ms=30_000, batch_rows=2)
    blocker = await hold_lock(fresh_db, dialect)
    try:
        run = asyncio.create_task(run_retention(database, NOW, None, expirer=expirer))
        await waiting_for_lock(fresh_db, dialect)
        run.cancel()
    finally:
        await blocker()
    with pytest.raises(asyncio.CancelledError):
        await run
    left = await raw_left(database)
    assert left[("cpu", day(-5))] == 4, left  # whole

    await run_retention(database, NOW, RecordingArchiver())
    left = await raw_left(database)
    assert days_of(left, "cpu") == [-1, 0]
    assert all(count == 4 for count in left.values())


async def hold_lock(url: str, dialect: str) -> object:
    """Take a lock that stops the first expiry (June 10's cpu rows); return its release."""
    if dialect == "postgres":
        import asyncpg

        from tests.support.helpers import asyncpg_dsn

        connection = await asyncpg.connect(asyncpg_dsn(url))
        await connection.execute("BEGIN")
        await connection.execute("SELECT count(*) FROM metric_snapshots_p20260610_cpu")

        async def release_pg() -> None:
            await connection.execute("ROLLBACK")
            await connection.close()

        return release_pg
    path = make_url(url).database
    assert path
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # the write lock: deletes wait for it

    async def release_sqlite() -> None:
        writer.execute("ROLLBACK")
        writer.close()

    return release_sqlite


async def waiting_for_lock(url: str, dialect: str) -> None:
    if dialect != "postgres":
        await asyncio.sleep(0.5)  # SQLite cannot be asked who waits; the delete is first
        return
    from tests.support.helpers import pg_fetch

    for _ in range(200):
        waiting = await pg_fetch(url, "SELECT count(*) FROM pg_locks WHERE NOT granted")
        if waiting[0][0]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the drop never waited for the lock")
