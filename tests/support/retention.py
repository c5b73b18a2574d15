"""Retention tests: a controllable clock, policies, the tier job's watermark, back-dated raw
days and tier rows stored for real, and what is left afterwards, on either dialect."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from perfwatch.contract.metrics import SnapshotRow
from perfwatch.db.partitions import SNAPSHOTS, TIER_HOUR, TIER_MINUTE, ensure_partitions_between
from perfwatch.db.session import Database, open_database, unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.models import ArchiveAction, MetricSnapshot, MetricTierHour, MetricTierMinute
from perfwatch.retention.archiving import ArchiveResult
from perfwatch.retention.repository import ArchivePolicyRepository
from perfwatch.retention.state import TIERS_JOB, MaintenanceStateRepository
from tests.support.helpers import make_settings

# Far from the real date: the template's own partitions (around today) are never in the way.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
HOST = "web-1"
TierModel = type[MetricTierMinute] | type[MetricTierHour]


def day(offset: int) -> date:
    """``offset`` days from ``TODAY`` (negative: the past)."""
    return TODAY + timedelta(days=offset)


@asynccontextmanager
async def opened(url: str, **overrides: Any) -> AsyncIterator[Database]:
    async with open_database(make_settings(url, **overrides)) as database:
        yield database


async def add_policy(
    database: Database,
    metric_type: str,
    raw: int,
    minute: int,
    hour: int,
    action: ArchiveAction = ArchiveAction.DELETE,
    *,
    enabled: bool = True,
) -> None:
    async with unit_of_work(database.sessionmaker) as session:
        await ArchivePolicyRepository(session).create(
            metric_type=metric_type,
            raw_days=raw,
            minute_days=minute,
            retention_days=hour,
            action=action,
            enabled=enabled,
        )


async def set_rolled_up(database: Database, until: datetime) -> None:
    """The tier job's watermark: every minute before ``until`` is rolled up."""
    async with unit_of_work(database.sessionmaker) as session:
        await MaintenanceStateRepository(session).record(TIERS_JOB, watermark=until)


async def store_raw(
    database: Database,
    metric_type: str,
    on: date,
    rows: int = 4,
    host: str = HOST,
    *,
    partition: bool = True,
    padding: int = 0,
) -> None:
    """``rows`` snapshots a second apart from 01:00 UTC of ``on``; its partitions made first
    unless ``partition`` is false (made already by ``make_partitions``; or, if not, PostgreSQL
    stores the rows in the DEFAULT partition). ``padding`` characters of filler make documents
    as large as real ones."""
    start = datetime(on.year, on.month, on.day, 1, tzinfo=UTC)
    batch = [
        SnapshotRow(
            host, start + timedelta(seconds=i), metric_type, {"value": i, "pad": "x" * padding}
        )
        for i in range(rows)
    ]
    async with unit_of_work(database.sessionmaker) as session:
        if partition:
            await ensure_partitions_between(session, SNAPSHOTS, on, on)
        # The clock at the rows' own time: nothing is "late", so no tier minute is marked.
        await SnapshotIngest(session, clock=lambda: start).bulk_insert_ignore_conflicts(batch)


async def make_partitions(
    database: Database, first_day: date, last_day: date, first_month: date | None = None
) -> None:
    """Raw days ``first_day``…``last_day`` and tier months from ``first_month`` (default: the
    first day's) to the last day's (PostgreSQL; nothing on SQLite)."""
    async with unit_of_work(database.sessionmaker) as session:
        await ensure_partitions_between(session, SNAPSHOTS, first_day, last_day)
        for table in (TIER_MINUTE, TIER_HOUR):
            await ensure_partitions_between(session, table, first_month or first_day, last_day)


async def store_tier(
    database: Database, model: TierModel, metric_type: str, bucket: datetime, host: str = HOST
) -> None:
    """One tier row; its month's partitions must exist (``make_partitions``), else PostgreSQL
    stores it in the tier's DEFAULT partition."""
    async with unit_of_work(database.sessionmaker) as session:
        session.add(
            model(
                host=host,
                metric_type=metric_type,
                bucket=bucket,
                snapshots=60,
                stats={"value": [60, 1.0, 0.0, 1.0, 0.5]},
            )
        )


async def raw_left(database: Database) -> Counter[tuple[str, date]]:
    """Rows stored per (type, UTC day)."""
    async with database.sessionmaker() as session:
        result = await session.execute(
            select(MetricSnapshot.metric_type, MetricSnapshot.captured_at)
        )
        return Counter((metric_type, at.date()) for metric_type, at in result)


async def tier_left(database: Database, model: TierModel) -> set[tuple[str, str]]:
    """(type, "YYYY-MM") of the tier rows stored."""
    async with database.sessionmaker() as session:
        result = await session.execute(select(model.metric_type, model.bucket))
        return {(metric_type, f"{bucket:%Y-%m}") for metric_type, bucket in result}


async def pg_tables(database: Database, prefix: str) -> set[str]:
    async with database.engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT relname FROM pg_class WHERE relname LIKE :prefix AND relkind IN ('r', 'p')"
            ),
            {"prefix": prefix + "%"},
        )
        return {name for (name,) in result}


@dataclass
class RecordingArchiver:
    """An archive writer that writes nothing: it records what it was asked, and fails for the
    types in ``failing`` as a full disk would."""

    failing: set[str] = field(default_factory=set)
    calls: list[tuple[str, date]] = field(default_factory=list)

    async def archive(self, database: Database, metric_type: str, day: date) -> ArchiveResult:
        self.calls.append((metric_type, day))
        if metric_type in self.failing:
            raise OSError(28, "No space left on device")
        # As a real writer reports: every row of the day (the drop checks none is missing).
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        async with database.sessionmaker() as session:
            rows = await session.scalar(
                select(func.count())
                .select_from(MetricSnapshot)
                .where(
                    MetricSnapshot.metric_type == metric_type,
                    MetricSnapshot.captured_at >= start,
                    MetricSnapshot.captured_at < start + timedelta(days=1),
                )
            )
        return ArchiveResult(rows=int(rows or 0), files=1, bytes=0)
