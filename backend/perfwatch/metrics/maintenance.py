"""The hourly storage maintenance of the metrics: partitions ahead, rollups no older than the
snapshots they summarise."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from perfwatch.db.partitions import ensure_snapshot_partitions

logger = logging.getLogger("perfwatch.metrics.maintenance")

MAINTENANCE_INTERVAL_SECONDS = 3600.0


async def run_maintenance(
    engine: AsyncEngine, interval_seconds: float = MAINTENANCE_INTERVAL_SECONDS
) -> None:
    """Forever, every ``interval_seconds``: keep a week of partitions ahead (PostgreSQL), then
    drop the per-minute rollups older than the snapshots kept (both dialects: whatever deleted
    those snapshots, rollups must not outlive them). A failed round is logged and retried."""
    while True:
        try:
            async with engine.begin() as connection:
                created = await ensure_snapshot_partitions(connection)
            if created:
                logger.info("created %d partition(s)", created)
        except Exception:  # the database may be away; the next round tries again
            logger.warning(
                "partition maintenance failed; retrying in %.0f s", interval_seconds, exc_info=True
            )
        await asyncio.sleep(interval_seconds)
