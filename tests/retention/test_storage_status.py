"""The storage status (retention/status.py) on both dialects: rows, time spans, bytes and the
policy in force per type and tier, the jobs, the disk cap, the archive manifests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.config_store.service import ConfigService
from perfwatch.contract.metrics import METRIC_TYPES, SnapshotRow
from perfwatch.db.partitions import SNAPSHOTS, ensure_partitions_between
from perfwatch.db.session import open_database, unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.models import ArchiveAction, ArchivePolicy
from perfwatch.retention.status import (
    DatabaseUsage,
    PolicyInForce,
    SeriesStatus,
    StorageStatus,
    capped_usage,
    database_usage,
    gather_storage_status,
    resolve_policy,
    scan_archive,
)
from perfwatch.retention.status_gauges import StorageGauges, storage_gauges
from tests.retention.storage_data import (
    DAY1,
    DAY2,
    FINISHED,
    HOUR_MONTH,
    add_archive,
    add_history,
    at,
    write_manifest,
)
from tests.support.helpers import make_settings, scratch_postgres


def entry(status: StorageStatus, metric_type: str, tier: str) -> SeriesStatus:
    (found,) = [s for s in status.series if s.metric_type == metric_type and s.tier == tier]
    return found


async def _status(url: str, archive_dir: Path) -> StorageStatus:
    async with open_database(make_settings(url)) as database:
        async with unit_of_work(database.sessionmaker) as session:
            await add_history(session)
        async with unit_of_work(database.sessionmaker) as session:
            return await gather_storage_status(session, archive_dir)


async def test_status_per_type_and_tier(fresh_db: str, dialect: str, tmp_path: Path) -> None:
    add_archive(tmp_path / "archive")
    status = await _status(fresh_db, tmp_path / "archive")
    postgres = dialect == "postgres"

    # Every sampler type in every tier, then "other" (gpu) where it has rows.
    assert [(s.tier, s.metric_type) for s in status.series] == [
        *(("raw", kind) for kind in METRIC_TYPES),
        ("raw", "other"),
        *(("1m", kind) for kind in METRIC_TYPES),
        *(("1h", kind) for kind in METRIC_TYPES),
    ]
    cpu = entry(status, "cpu", "raw")
    assert (cpu.oldest, cpu.newest, cpu.rows) == (DAY1, at(DAY2, 64), 25)
    assert cpu.bytes > 0
    assert cpu.rows_estimated is postgres  # never analysed leaves are counted, still labelled
    assert cpu.bytes_estimated is not postgres
    # cpu's own policy is disabled: the "*" policy governs it.
    assert cpu.policy == PolicyInForce("*", 3, ArchiveAction.DELETE)
    processes = entry(status, "processes", "raw")
    assert (processes.oldest, processes.newest, processes.rows) == (DAY2, at(DAY2, 2), 3)
    assert processes.policy == PolicyInForce("processes", 2, ArchiveAction.ARCHIVE)
    assert entry(status, "processes", "1h").policy == PolicyInForce(
        "processes", 365, ArchiveAction.DELETE
    )
    other = entry(status, "other", "raw")
    assert (other.oldest, other.newest, other.rows) == (at(DAY2, 30), at(DAY2, 31), 2)
    assert other.policy == PolicyInForce("*", 3, ArchiveAction.DELETE)
    memory = entry(status, "memory", "raw")
    assert (memory.oldest, memory.newest, memory.rows) == (None, None, 0)
    minute = entry(status, "cpu", "1m")
    assert (minute.oldest, minute.newest, minute.rows) == (DAY1, at(DAY1, 180), 4)
    assert minute.policy == PolicyInForce("*", 30, ArchiveAction.DELETE)
    hour = entry(status, "memory", "1h")
    assert (hour.oldest, hour.newest, hour.rows) == (
        HOUR_MONTH,
        HOUR_MONTH + timedelta(hours=2),
        6,
    )
    assert entry(status, "memory", "1h").policy == PolicyInForce("*", 730, ArchiveAction.DELETE)

    raw, tier_1m, tier_1h = status.tiers
    assert (raw.tier, raw.table, raw.rows) == ("raw", "metric_snapshots", 30)
    assert (tier_1m.table, tier_1m.rows, tier_1h.rows) == ("metric_tier_1m", 4, 6)
    assert raw.bytes >= sum(s.bytes for s in status.series if s.tier == "raw")

    tiers, retention = status.jobs
    assert (tiers.name, tiers.last_finished_at, tiers.last_success_at) == (
        "tiers",
        FINISHED,
        FINISHED,
    )
    assert tiers.details == {"minutes": 4} and tiers.watermark == DAY2 and not tiers.running
    assert retention.name == "retention" and retention.last_success_at is None
    assert retention.last_error == "OSError: archive directory is read-only"

    assert status.database.dialect == ("postgresql" if postgres else "sqlite")
    assert status.database.bytes > 0 and status.database.max_bytes == 0
    assert status.database.percent_used is None and status.database.warning is None
    archive = status.archive
    assert (archive.exists, archive.files, archive.rows, archive.bytes, archive.unreadable) == (
        True,
        2,
        8,
        350,
        1,
    )


async def test_status_of_an_empty_database(session: AsyncSession, tmp_path: Path) -> None:
    status = await gather_storage_status(session, tmp_path / "no-archive")
    assert len(status.series) == 3 * len(METRIC_TYPES)
    assert all(s.oldest is None and s.rows == 0 and s.policy is None for s in status.series)
    assert [(job.name, job.last_started_at, job.running) for job in status.jobs] == [
        ("tiers", None, False),
        ("retention", None, False),
    ]
    assert status.archive.exists is False and status.archive.files == 0


async def test_postgres_rows_are_catalogue_estimates_scaled_to_the_size(
    postgres_template: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """After ANALYZE, reltuples is scaled by the pages the leaf has now (as the planner does):
    doubling the rows doubles the estimate without a count(*)."""
    day = datetime(2026, 8, 3, tzinfo=UTC)
    document = {"percent": 1.5, "per_core": [1.0, 2.0, 3.0, 4.0]}
    with scratch_postgres(request.getfixturevalue("postgres_server"), postgres_template) as url:
        async with open_database(make_settings(url)) as database:
            for start in (0, 4000):
                async with unit_of_work(database.sessionmaker) as session:
                    await ensure_partitions_between(session, SNAPSHOTS, day.date(), day.date())
                    rows = [
                        SnapshotRow("alpha", day + timedelta(seconds=i), "cpu", document)
                        for i in range(start, start + 4000)
                    ]
                    await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows)
                if start == 0:
                    async with database.engine.connect() as connection:
                        await connection.execute(text("ANALYZE metric_snapshots_p20260803_cpu"))
                        await connection.commit()
            statements: list[str] = []

            def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
                statements.append(statement)

            event.listen(database.engine.sync_engine, "before_cursor_execute", record)
            async with unit_of_work(database.sessionmaker) as session:
                status = await gather_storage_status(session, tmp_path)
    cpu = entry(status, "cpu", "raw")
    assert cpu.rows_estimated
    assert 7200 <= cpu.rows <= 8800, cpu.rows
    assert (cpu.oldest, cpu.newest) == (day, day + timedelta(seconds=7999))
    assert not [s for s in statements if "count(*)" in s.lower()]


async def test_postgres_time_span_skips_emptied_leaves_and_reads_the_default_partition(
    pg_session: AsyncSession, tmp_path: Path
) -> None:
    day = datetime(2026, 7, 1, tzinfo=UTC)
    await ensure_partitions_between(pg_session, SNAPSHOTS, day.date(), (day + timedelta(1)).date())
    stranded = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)  # no partition: the DEFAULT one
    rows = [SnapshotRow("alpha", day + timedelta(days=d), "disk", {"x": 1}) for d in (0, 1)]
    rows.append(SnapshotRow("alpha", stranded, "sensors", {"x": 1}))
    await SnapshotIngest(pg_session).bulk_insert_ignore_conflicts(rows)
    # The first day's leaf keeps its pages but no live row: the next leaf holds the oldest.
    await pg_session.execute(text("DELETE FROM metric_snapshots_p20260701_disk"))
    status = await gather_storage_status(pg_session, tmp_path)
    disk = entry(status, "disk", "raw")
    assert (disk.oldest, disk.newest) == (day + timedelta(days=1), day + timedelta(days=1))
    sensors = entry(status, "sensors", "raw")
    # Its time is known; its row sits in no type's partition, only in the table's total.
    assert (sensors.oldest, sensors.newest, sensors.rows) == (stranded, stranded, 0)
    assert status.tiers[0].rows >= 2


def _policy(metric_type: str, enabled: bool = True) -> ArchivePolicy:
    return ArchivePolicy(
        metric_type=metric_type,
        raw_days=1,
        minute_days=2,
        retention_days=3,
        action=ArchiveAction.DELETE,
        enabled=enabled,
    )


def test_the_policy_in_force() -> None:
    star, cpu = _policy("*"), _policy("cpu")
    assert resolve_policy({"*": star, "cpu": cpu}, "cpu") is cpu
    assert resolve_policy({"*": star, "cpu": _policy("cpu", enabled=False)}, "cpu") is star
    assert resolve_policy({"*": star}, "other") is star
    assert resolve_policy({"*": _policy("*", enabled=False)}, "disk") is None
    assert resolve_policy({}, "disk") is None


def test_the_cap_warns_above_90_percent() -> None:
    assert DatabaseUsage("sqlite", 900, 0).percent_used is None
    assert DatabaseUsage("sqlite", 900, 1000).warning is None
    usage = DatabaseUsage("postgresql", 9_500_000, 10_000_000)
    assert usage.percent_used == 95.0
    assert usage.warning is not None
    assert "9.5 MB (9500000 bytes), 95 %" in usage.warning
    assert "storage.max_bytes 10.0 MB (10000000 bytes)" in usage.warning


async def test_database_usage_reads_the_cap(session: AsyncSession) -> None:
    assert await capped_usage(session) is None  # no cap: the size is not even read
    usage = await database_usage(session)
    assert usage.bytes > 0 and usage.max_bytes == 0
    await ConfigService(session).set_entry("storage.max_bytes", 1000, updated_by="test")
    capped = await capped_usage(session)
    assert capped is not None and capped.max_bytes == 1000
    assert capped.percent_used is not None and capped.percent_used > 100
    assert capped.warning is not None


def test_archive_scan(tmp_path: Path) -> None:
    missing = scan_archive(tmp_path / "absent")
    assert (missing.exists, missing.files, missing.bytes) == (False, 0, 0)
    archive = tmp_path / "archive"
    day = DAY1.date()
    write_manifest(archive, "h", "cpu", day, rows=10, bytes=1234, sha256="ab")
    write_manifest(archive, "h", "disk", day, rows=True, bytes=1)  # a bool is not a count
    write_manifest(archive, "h", "memory", day, rows=-1, bytes=1)
    write_manifest(archive, "h", "system", day, bytes=1)
    (archive / "h" / "cpu" / "notes.json").write_text("{}")  # not a manifest
    (archive / "h" / "network").mkdir()
    (archive / "h" / "network" / "2026-09-14.manifest.json").write_bytes(b"\xff\xfe")
    found = scan_archive(archive)
    assert (found.exists, found.files, found.rows, found.bytes, found.unreadable) == (
        True,
        1,
        10,
        1234,
        4,
    )
    assert found.directory == str(archive)


async def test_gauges(fresh_db: str, dialect: str, tmp_path: Path) -> None:
    add_archive(tmp_path)
    status = await _status(fresh_db, tmp_path)
    gauges = {(g.name, tuple(sorted(g.labels.items()))): g.value for g in storage_gauges(status)}
    cpu_raw = (("metric_type", "cpu"), ("tier", "raw"))
    assert gauges["perfwatch_storage_rows", cpu_raw] == 25
    assert gauges["perfwatch_storage_bytes", cpu_raw] > 0
    assert gauges["perfwatch_storage_oldest_timestamp_seconds", cpu_raw] == DAY1.timestamp()
    assert gauges["perfwatch_storage_keep_days", cpu_raw] == 3
    # No rows: no time series for the time, but the rows and bytes are there (0).
    memory_raw = (("metric_type", "memory"), ("tier", "raw"))
    assert ("perfwatch_storage_oldest_timestamp_seconds", memory_raw) not in gauges
    assert gauges["perfwatch_storage_rows", memory_raw] == 0
    assert gauges["perfwatch_database_bytes", ()] == status.database.bytes
    assert gauges["perfwatch_storage_max_bytes", ()] == 0
    tiers, retention = (("job", "tiers"),), (("job", "retention"),)
    assert gauges["perfwatch_maintenance_last_success_timestamp_seconds", tiers] == (
        FINISHED.timestamp()
    )
    assert ("perfwatch_maintenance_last_success_timestamp_seconds", retention) not in gauges
    assert gauges["perfwatch_maintenance_last_error", tiers] == 0
    assert gauges["perfwatch_maintenance_last_error", retention] == 1
    assert gauges["perfwatch_archive_files", ()] == 2
    assert gauges["perfwatch_archive_bytes", ()] == 350
    assert gauges["perfwatch_archive_rows", ()] == 8


async def test_the_scrape_source_gathers_at_most_every_max_age(
    session: AsyncSession, tmp_path: Path
) -> None:
    now = [100.0]
    source = StorageGauges(tmp_path, max_age_seconds=30, clock=lambda: now[0])
    first = await source(session)
    assert any(g.name == "perfwatch_database_bytes" for g in first)
    write_manifest(tmp_path, "h", "cpu", DAY1.date(), rows=1, bytes=7)
    now[0] += 29
    assert await source(session) == first  # not gathered again yet
    now[0] += 1
    again = {g.name: g.value for g in await source(session)}
    assert again["perfwatch_archive_files"] == 1
    assert again["perfwatch_storage_status_failures_total"] == 0
