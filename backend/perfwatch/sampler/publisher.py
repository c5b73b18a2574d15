"""Latest snapshot per host and type in the cache (Redis or in-process), and the live channel.

The cache is an accelerator, never a dependency: when Redis is away the sampler keeps sampling
and writing to the database, and the cache fills again with the next snapshots once it returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perfwatch.cache import Cache, LatestValue
from perfwatch.metrics.repository import EncodedSnapshot, SnapshotRow, encode_snapshot

logger = logging.getLogger("perfwatch.sampler.publisher")

PUBLISH_TIMEOUT_SECONDS = 0.5
RETRY_SECONDS = 1.0


def latest_key(host: str, metric_type: str) -> str:
    return f"perfwatch:latest:{host}:{metric_type}"


def live_channel(host: str) -> str:
    return f"perfwatch:live:{host}"


def message_for(record: EncodedSnapshot) -> str:
    """The cached/published form: the stored document wrapped with its host, type and time."""
    host, captured_at, metric_type, document = record
    return (
        f'{{"host":{json.dumps(host)},"metric_type":{json.dumps(metric_type)},'
        f'"captured_at":"{captured_at.isoformat()}","data":{document}}}'
    )


def encode(row: SnapshotRow) -> str:
    return message_for(encode_snapshot(row))


@dataclass
class CacheStats:
    published: int = 0
    failures: int = 0
    skipped: int = 0  # snapshots not published while waiting to retry an unavailable cache
    hits: int = 0
    misses: int = 0
    available: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SnapshotPublisher:
    """``SET`` the latest snapshot (with a TTL) and ``PUBLISH`` it on the host's live channel."""

    cache: Cache
    stats: CacheStats = field(default_factory=CacheStats)
    _retry_at: float = 0.0

    async def publish(self, row: SnapshotRow, ttl_seconds: float) -> bool:
        return await self.publish_many([(encode_snapshot(row), ttl_seconds)])

    async def publish_many(self, records: Sequence[tuple[EncodedSnapshot, float]]) -> bool:
        """Set and publish a cycle's snapshots together, each with its TTL (one round trip)."""
        if not records:
            return True
        # While Redis is away, try again only now and then: a client that retries and waits
        # for timeouts on every snapshot would slow the sampling loop down.
        now = time.monotonic()
        if not self.stats.available and now < self._retry_at:
            self.stats.skipped += len(records)
            return False
        values = []
        for record in records:
            message = message_for(record[0])
            host, _, metric_type, _ = record[0]
            values.append(
                LatestValue(latest_key(host, metric_type), message, record[1], live_channel(host))
            )
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await self.cache.set_and_publish(values)
        except Exception as exc:  # Redis away: sampling and database writes go on
            self.stats.failures += 1
            if self.stats.available:
                logger.warning("cache unavailable, latest values not refreshed: %s", exc)
            self.stats.available = False
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return False
        if not self.stats.available:
            logger.info("cache available again; latest values refreshed")
        self.stats.available = True
        self.stats.published += len(records)
        return True

    async def latest(self, host: str, metric_type: str) -> dict[str, Any] | None:
        """The cached latest snapshot, counting hits and misses (cache errors count as misses)."""
        try:
            raw = await self.cache.get(latest_key(host, metric_type))
        except Exception:
            raw = None
        if raw is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        document: dict[str, Any] = json.loads(raw)
        return document
