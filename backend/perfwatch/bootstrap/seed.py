"""Realistic demo history: snapshots of every metric type on a regular time grid.

The grid ends at the start of the current UTC hour, so running the seed again within the hour
produces the same rows (ignored as duplicates) and a later run only adds the newest ones.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.bootstrap.demo_documents import GENERATORS
from perfwatch.contract.metrics import METRIC_TYPES, SnapshotRow
from perfwatch.db.partitions import ensure_snapshot_partitions
from perfwatch.db.session import unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest

MAX_SEED_DAYS = 30
BATCH_SIZE = 5_000


@dataclass(frozen=True)
class SeedPlan:
    host: str
    start: datetime
    end: datetime
    interval_seconds: int
    metric_types: tuple[str, ...]

    @property
    def points_per_type(self) -> int:
        return int((self.end - self.start).total_seconds() // self.interval_seconds)

    @property
    def total_rows(self) -> int:
        return self.points_per_type * len(self.metric_types)


def plan_seed(
    *,
    days: float = 1.0,
    interval_seconds: int = 60,
    host: str | None = None,
    metric_types: Sequence[str] = METRIC_TYPES,
    now: datetime | None = None,
) -> SeedPlan:
    if not 0 < days <= MAX_SEED_DAYS:
        raise ValueError(f"days must be more than 0 and at most {MAX_SEED_DAYS}")
    if not 1 <= interval_seconds <= 86_400:
        raise ValueError("interval must be between 1 and 86400 seconds")
    unknown = set(metric_types) - set(METRIC_TYPES)
    if unknown:
        raise ValueError(
            f"unknown metric type(s) {sorted(unknown)}; known: {', '.join(METRIC_TYPES)}"
        )
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return SeedPlan(
        host=host or f"{socket.gethostname()}-demo",
        start=end - timedelta(days=days),
        end=end,
        interval_seconds=interval_seconds,
        metric_types=tuple(metric_types),
    )


def generate_rows(plan: SeedPlan, metric_type: str) -> Iterator[SnapshotRow]:
    generate = GENERATORS[metric_type]
    for index in range(plan.points_per_type):
        captured_at = plan.start + timedelta(seconds=index * plan.interval_seconds)
        timestamp = captured_at.timestamp()
        # Seeded per point, so the same plan always produces the same documents.
        noise = random.Random(f"{plan.host}:{metric_type}:{timestamp}")
        yield SnapshotRow(plan.host, captured_at, metric_type, generate(timestamp, noise))


def _batches(rows: Iterator[SnapshotRow], size: int) -> Iterator[list[SnapshotRow]]:
    batch: list[SnapshotRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def seed_history(
    plan: SeedPlan,
    sessionmaker: async_sessionmaker[AsyncSession],
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Store ``plan``'s rows in batches (one transaction each); return how many were new."""
    days_back = (plan.end.date() - plan.start.date()).days + 1
    async with unit_of_work(sessionmaker) as session:
        await ensure_snapshot_partitions(session, days_behind=days_back)
    inserted = 0
    for metric_type in plan.metric_types:
        for batch in _batches(generate_rows(plan, metric_type), batch_size):
            async with unit_of_work(sessionmaker) as session:
                # History lands in minutes the tier job has passed: ingest marks them.
                inserted += await SnapshotIngest(session).bulk_insert_ignore_conflicts(batch)
            if on_progress is not None:
                on_progress(len(batch))
    return inserted
