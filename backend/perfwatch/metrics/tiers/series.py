"""A series' buckets read as its plan says (``tiers/plan.py``): raw snapshots alone through the
downsampling SQL, else every piece as totals per bucket of the step, grouped by the database
from its source (tier rows, raw snapshots), then merged where a bucket spans two pieces.
Reads only: nothing a request computes is stored, so no request pays for the next one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.metrics.records import Bucket, Totals, buckets_from_totals
from perfwatch.metrics.repository import SnapshotRepository
from perfwatch.metrics.tiers.plan import SeriesPlan, plan_series
from perfwatch.metrics.tiers.repository import TierRepository


async def plan_for(
    session: AsyncSession,
    host: str,
    metric_type: str,
    start: datetime,
    end: datetime,
    step: timedelta | None,
    max_points: int,
) -> SeriesPlan:
    coverage = await TierRepository(session).coverage(host, metric_type)
    return plan_series(start, end, step, max_points, coverage)


async def read_buckets(
    session: AsyncSession, host: str, metric_type: str, paths: Sequence[str], plan: SeriesPlan
) -> list[Bucket]:
    snapshots = SnapshotRepository(session)
    if plan.raw_only:
        piece = plan.pieces[0]
        return await snapshots.downsample(
            host=host,
            metric_type=metric_type,
            start=piece.start,
            end=piece.end,
            fields=paths,
            step_seconds=plan.step_seconds,
        )
    tiers = TierRepository(session)
    step = plan.step_seconds
    totals: Totals = []  # oldest first: pieces follow each other, each ordered
    for piece in plan.pieces:
        if piece.source == "raw":
            part = await snapshots.bucket_totals(
                host, metric_type, paths, piece.start, piece.end, step
            )
        else:
            part = await tiers.bucket_totals(
                piece.source, host, metric_type, paths, piece.start, piece.end, step
            )
        totals.extend(part)
    return buckets_from_totals(totals, paths, step)
