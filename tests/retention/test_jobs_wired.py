"""The maintenance jobs as the server runs them (``retention/jobs.py``): the real tier job and
the real archive writer, on both dialects, with a fixed clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from perfwatch.contract.metrics import SnapshotRow
from perfwatch.db.session import Database, unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.service import MetricsService
from perfwatch.models import ArchiveAction, MetricSnapshot, MetricTierMinute
from perfwatch.retention.archive import list_archives, read_rows, verify
from perfwatch.retention.jobs import FileArchiver, retention_step, tiers_step
from perfwatch.retention.restore import restore_file
from tests.support.retention import (
    HOST,
    NOW,
    add_policy,
    day,
    make_partitions,
    opened,
    pg_tables,
    store_raw,
)


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    async with opened(fresh_db) as opened_database:
        yield opened_database


async def catch_up(database: Database) -> int:
    """Tier runs until caught up; how many it took."""
    for run in range(1, 20):
        if (await tiers_step(database, NOW))["caught_up"]:
            return run
    raise AssertionError("the tier job never caught up")


async def rows_on(database: Database, metric_type: str, on: datetime) -> int:
    async with database.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(MetricSnapshot)
                .where(
                    MetricSnapshot.metric_type == metric_type,
                    MetricSnapshot.captured_at >= on,
                    MetricSnapshot.captured_at < on + timedelta(days=1),
                )
            )
            or 0
        )


async def test_tiers_then_retention_archive_a_day_drop_it_and_its_history_stays_readable(
    database: Database, tmp_path: Path
) -> None:
    await make_partitions(database, day(-5), day(0), first_month=day(-5).replace(day=1))
    old = day(-4)
    await store_raw(database, "cpu", old, rows=120)  # two minutes from 01:00
    await store_raw(database, "cpu", day(0), rows=3)
    await add_policy(database, "cpu", 1, 30, 730, ArchiveAction.ARCHIVE)
    start = datetime(old.year, old.month, old.day, tzinfo=UTC)

    # The tier job starts at the oldest raw minute and catches up a day per run, an hour per
    # transaction, to the settled minutes of "now".
    runs = await catch_up(database)
    assert runs == 5  # four and a half days
    async with database.sessionmaker() as session:
        minutes = await session.scalar(
            select(func.count()).select_from(MetricTierMinute).where(MetricTierMinute.host == HOST)
        )
    assert minutes == 3  # two minutes of the old day, one of today

    archive_dir = tmp_path / "archive"
    details = await retention_step(FileArchiver(archive_dir), archive_dir)(database, NOW)
    assert details, details
    assert await rows_on(database, "cpu", start) == 0
    if database.engine.dialect.name == "postgresql":
        assert f"metric_snapshots_p{old:%Y%m%d}_cpu" not in await pg_tables(
            database, "metric_snapshots_p"
        )
    (manifest,) = list_archives(archive_dir)
    assert (manifest.host, manifest.metric_type, manifest.day, manifest.rows) == (
        HOST,
        "cpu",
        old,
        120,
    )
    data = archive_dir / HOST / "cpu" / f"{old.isoformat()}.jsonl.zst"
    assert verify(data).rows == 120
    assert [row.captured_at for row in read_rows(data)][:2] == [
        start + timedelta(hours=1),
        start + timedelta(hours=1, seconds=1),
    ]

    # Raw is gone; the day still answers, from the 1-minute tier.
    async with unit_of_work(database.sessionmaker) as session:
        series = await MetricsService(session, None).series(
            HOST, "cpu", start, start + timedelta(days=1), fields=["percent"]
        )
    assert series.source == "1m"
    assert sum(bucket.count for bucket in series.buckets) == 120

    # Restored from its file, the day is back as it was: same times, same documents.
    restored = await restore_file(database.sessionmaker, data)
    assert (restored.rows_in_file, restored.inserted) == (120, 120)
    async with database.sessionmaker() as session:
        back = (
            await session.execute(
                select(MetricSnapshot.captured_at, MetricSnapshot.metric_data)
                .where(
                    MetricSnapshot.host == HOST,
                    MetricSnapshot.captured_at < start + timedelta(days=1),
                )
                .order_by(MetricSnapshot.captured_at)
            )
        ).all()
    assert [(at, document) for at, document in back] == [
        (row.captured_at, json.loads(row.document)) for row in read_rows(data)
    ]
    assert (await restore_file(database.sessionmaker, data)).inserted == 0


async def test_rows_stored_after_the_archive_keep_the_day_until_archived_again(
    database: Database, tmp_path: Path
) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite deletes in batches: there is no drop to guard")
    await make_partitions(database, day(-5), day(0), first_month=day(-5).replace(day=1))
    old = day(-4)
    await store_raw(database, "cpu", old, rows=10)
    await add_policy(database, "cpu", 1, 30, 730, ArchiveAction.ARCHIVE)
    await catch_up(database)

    class LateRowArchiver(FileArchiver):
        """Stores one more row of the day right after writing the archive, as a late
        back-fill would between the archive and the drop."""

        async def archive(self, database: Database, metric_type: str, on):  # type: ignore[no-untyped-def]
            result = await super().archive(database, metric_type, on)
            if on != old:
                return result
            late = datetime(on.year, on.month, on.day, 23, tzinfo=UTC)
            async with unit_of_work(database.sessionmaker) as session:
                await SnapshotIngest(session).bulk_insert_ignore_conflicts(
                    [SnapshotRow(HOST, late, metric_type, {"value": 99})]
                )
            return result

    archive_dir = tmp_path / "archive"
    await retention_step(LateRowArchiver(archive_dir), archive_dir)(database, NOW)
    start = datetime(old.year, old.month, old.day, tzinfo=UTC)
    assert await rows_on(database, "cpu", start) == 11  # kept: the archive lacks a row

    # The late row's minute is pending; once the tier job took it, the next run archives
    # again (merging) and drops the day, with all 11 rows in the file.
    await catch_up(database)
    await retention_step(FileArchiver(archive_dir), archive_dir)(database, NOW)
    assert await rows_on(database, "cpu", start) == 0
    (manifest,) = list_archives(archive_dir)
    assert manifest.rows == 11
