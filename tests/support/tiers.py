"""Helpers of the resolution-tier tests: deterministic documents, storing them on time or late,
the tier rows as stored, and the same statistics computed straight from the documents."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import SnapshotRow
from perfwatch.db.types import UTCDateTime
from perfwatch.metrics.buckets import epoch_seconds
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.tiers.plan import Tier
from perfwatch.metrics.tiers.repository import TierRepository
from perfwatch.metrics.tiers.stats import BucketStats, Stats
from perfwatch.models import MetricTierPending

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # an hour's start, long before any real clock
FAR = T0 + timedelta(days=365)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def document(metric_type: str, moment: datetime, host: str) -> dict[str, Any]:
    """Numbers that differ per host, type and instant (floats, big ints, a missing field)."""
    rng = random.Random(f"{host}/{metric_type}/{moment.isoformat()}")
    if metric_type == "cpu":
        doc: dict[str, Any] = {
            "schema_version": 1,
            "percent": round(rng.uniform(0, 100), 2),
            "per_core": [round(rng.uniform(0, 100), 1), rng.randint(0, 100)],
            "load_average": {"1m": round(rng.uniform(0, 4), 3)},
        }
        if rng.random() < 0.1:  # sometimes absent: its count is lower than the snapshots
            del doc["load_average"]
        return doc
    return {
        "schema_version": 1,
        "virtual": {"percent": round(rng.uniform(0, 100), 3), "used_bytes": rng.randint(0, 2**40)},
    }


def rows(
    start: datetime,
    end: datetime,
    every: float,
    hosts: Sequence[str] = ("tier-a",),
    types: Sequence[str] = ("cpu", "memory"),
) -> list[SnapshotRow]:
    """A snapshot of every host and type each ``every`` seconds of ``[start, end)``."""
    count = int((end - start).total_seconds() / every)
    moments = [start + timedelta(seconds=every * i) for i in range(count)]
    return [
        SnapshotRow(host, moment, kind, document(kind, moment, host))
        for host in hosts
        for kind in types
        for moment in moments
    ]


async def store(session: AsyncSession, snapshots: list[SnapshotRow], *, now: datetime) -> int:
    """Store as an ingest whose clock says ``now`` (rows older than 90 s then are late)."""
    return await SnapshotIngest(session, clock=lambda: now).bulk_insert_ignore_conflicts(snapshots)


async def stored_stats(
    session: AsyncSession,
    tier: Tier,
    host: str,
    metric_type: str,
    start: datetime = T0,
    end: datetime = FAR,
) -> dict[datetime, tuple[int, Stats]]:
    """The tier's buckets of ``[start, end)``: snapshots and decoded stats."""
    buckets = await TierRepository(session).stored(tier, host, metric_type, start, end)
    return {bucket: (snapshots, json.loads(stats)) for bucket, snapshots, stats in buckets}


async def all_tier_rows(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of both tiers (stats decoded), to compare before and after a run."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    stats = "CAST(stats AS text)" if postgres else "stats"
    for table in ("metric_tier_1m", "metric_tier_1h"):
        statement = text(
            f"SELECT host, metric_type, bucket, snapshots, {stats} FROM {table} "
            "ORDER BY host, metric_type, bucket"
        ).columns(
            column("host"), column("metric_type"), column("bucket", UTCDateTime()), column("n")
        )
        result = await session.execute(statement)
        found[table] = [(*row[:4], json.loads(row[4])) for row in result]
    return found


async def pending(session: AsyncSession) -> list[tuple[str, str, int]]:
    """The marks, as (host, type, minute in epoch seconds)."""
    result = await session.execute(
        select(MetricTierPending.host, MetricTierPending.metric_type, MetricTierPending.minute)
    )
    return sorted((host, kind, epoch_seconds(minute)) for host, kind, minute in result)


def expected(metric_type: str, snapshots: Sequence[SnapshotRow]) -> tuple[int, Stats]:
    """The statistics of ``snapshots`` (oldest first), added one by one, as stored."""
    stats = BucketStats()
    for row in sorted(snapshots, key=lambda row: row.captured_at):
        stats.add(metric_type, row.metric_data)
    decoded: Stats = json.loads(stats.encode())
    return stats.snapshots, decoded


def same_buckets(
    actual: dict[datetime, tuple[int, Stats]], wanted: dict[datetime, tuple[int, Stats]]
) -> bool:
    """Equal, but for sums of floats, which add up in another order from minutes than from the
    documents (1e-16 relative)."""
    if actual.keys() != wanted.keys():
        return False
    for bucket, (snapshots, stats) in wanted.items():
        got_snapshots, got = actual[bucket]
        if got_snapshots != snapshots or got.keys() != stats.keys():
            return False
        for path, (count, total, low, high, last) in stats.items():
            if [got[path][0], *got[path][2:]] != [count, low, high, last]:
                return False
            if not math.isclose(got[path][1], total, rel_tol=1e-12):
                return False
    return True


def within(
    snapshots: Sequence[SnapshotRow], host: str, metric_type: str, start: datetime, end: datetime
) -> list[SnapshotRow]:
    return [
        row
        for row in snapshots
        if row.host == host and row.metric_type == metric_type and start <= row.captured_at < end
    ]
