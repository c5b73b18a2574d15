"""Storage of the resolution tiers: ``metric_tier_1m`` / ``metric_tier_1h`` rows, the late-row
marks of ``metric_tier_pending``, the tier job's watermark (``maintenance_state`` row
``tiers``), and the raw documents the job rolls up. In the caller's transaction, never
committing; inputs are trusted (the job and ``MetricsService`` made them). SQL text in
``tiers/sql.py``.

Every read names a host and a type and a time range: the primary key (host, metric_type,
bucket) of a tier and the unique index (host, metric_type, captured_at) of the raw table serve
it as one range, pruned on PostgreSQL to the partitions of those months or days and that type.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.metrics import sql as snapshot_sql
from perfwatch.metrics.buckets import as_epoch_seconds
from perfwatch.metrics.records import MinuteTotals, Totals
from perfwatch.metrics.tiers import sql
from perfwatch.metrics.tiers.plan import Coverage, Tier
from perfwatch.models import MaintenanceState

# The maintenance_state row of the tier job.
JOB_NAME = "tiers"


class TierRow(NamedTuple):
    """One bucket to store: ``stats`` is ``BucketStats.encode()``'s JSON text."""

    host: str
    metric_type: str
    bucket: datetime
    snapshots: int
    stats: str


class StoredBucket(NamedTuple):
    bucket: datetime
    snapshots: int
    stats: str  # JSON text


class PendingMinute(NamedTuple):
    host: str
    metric_type: str
    minute: datetime


class TierRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    # ----- tier rows ----------------------------------------------------------------------
    async def upsert(self, tier: Tier, rows: Sequence[TierRow]) -> None:
        """Store ``rows``, replacing the buckets already stored (recomputing is idempotent)."""
        if not rows:
            return
        statement = sql.upsert(tier, self.postgres)
        if self.postgres:
            await self.session.execute(
                statement,
                {
                    "hosts": [row.host for row in rows],
                    "types": [row.metric_type for row in rows],
                    "buckets": [row.bucket for row in rows],
                    "snapshots": [row.snapshots for row in rows],
                    "stats": [row.stats for row in rows],
                },
            )
        else:
            await self.session.execute(statement, [row._asdict() for row in rows])

    async def delete(
        self, tier: Tier, host: str, metric_type: str, buckets: Sequence[datetime]
    ) -> None:
        """Forget these buckets of one host and type (their snapshots are gone)."""
        if buckets:
            await self.session.execute(
                sql.delete(tier),
                [{"host": host, "metric_type": metric_type, "bucket": b} for b in buckets],
            )

    async def stored(
        self, tier: Tier, host: str, metric_type: str, start: datetime, end: datetime
    ) -> list[StoredBucket]:
        """The buckets of ``[start, end)``, oldest first, their stats as JSON text."""
        params = {"host": host, "metric_type": metric_type, "start": start, "end": end}
        result = await self.session.execute(sql.stored(tier, self.postgres), params)
        return [StoredBucket(*row) for row in result]

    async def bucket_totals(
        self,
        tier: Tier,
        host: str,
        metric_type: str,
        paths: Sequence[str],
        start: datetime,
        end: datetime,
        step_seconds: int,
    ) -> Totals:
        """The tier's buckets of ``[start, end)`` merged into buckets of ``step_seconds`` (a
        multiple of the tier's width) by the database, as totals of ``paths``, oldest first."""
        statement, params = sql.bucket_totals(tier, self.postgres, paths)
        params.update(host=host, metric_type=metric_type, start=start, end=end)
        params.update(snapshot_sql.bucket_params(self.postgres, step_seconds))
        result = await self.session.execute(statement, params)
        return [(as_epoch_seconds(row[0]), MinuteTotals.from_row(row[1:])) for row in result]

    async def coverage(self, host: str, metric_type: str) -> Coverage:
        """The watermark and the oldest raw snapshot, 1-minute and 1-hour bucket stored for
        this host and type."""
        params = {"job": JOB_NAME, "host": host, "metric_type": metric_type}
        return Coverage(*(await self.session.execute(sql.COVERAGE, params)).one())

    # ----- raw documents ------------------------------------------------------------------
    async def oldest_snapshot(self, host: str, metric_type: str) -> datetime | None:
        params = {"host": host, "metric_type": metric_type}
        moment: datetime | None = await self.session.scalar(sql.OLDEST_SNAPSHOT, params)
        return moment

    async def documents(
        self, host: str, metric_type: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, str]]:
        """``(captured_at, document JSON text)`` of ``[start, end)``, oldest first."""
        params = {"host": host, "metric_type": metric_type, "start": start, "end": end}
        result = await self.session.execute(sql.documents(self.postgres), params)
        return [(row[0], row[1]) for row in result]

    # ----- pending marks ------------------------------------------------------------------
    async def take_pending(self, limit: int) -> list[PendingMinute]:
        """Delete up to ``limit`` marks and return them, by host, type and minute."""
        rows = await self.session.execute(sql.TAKE_PENDING, {"limit": limit})
        return sorted(PendingMinute(*row) for row in rows)

    # ----- watermark ----------------------------------------------------------------------
    async def watermark(self) -> datetime | None:
        """Every minute before it is rolled up; None before the job's first run."""
        state = await self.session.get(MaintenanceState, JOB_NAME)
        return None if state is None else state.watermark

    async def set_watermark(self, watermark: datetime) -> None:
        # Through the ORM: the maintenance runner keeps this row's other columns in the same
        # session, and its object must not hold a stale watermark.
        state = await self.session.get(MaintenanceState, JOB_NAME)
        if state is None:
            self.session.add(MaintenanceState(name=JOB_NAME, watermark=watermark))
        else:
            state.watermark = watermark
        await self.session.flush()
