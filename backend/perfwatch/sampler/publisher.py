"""Latest snapshot per host and type in the cache (Redis or in-process), and the live channel.

The cache is an accelerator, never a dependency: when Redis is away the sampler keeps sampling
and writing to the database, and the cache fills again with the next snapshots once it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perfwatch.cache import Cache, LatestValue
from perfwatch.contract.metrics import EncodedSnapshot, cache_message, latest_key, live_channel

logger = logging.getLogger("perfwatch.sampler.publisher")

PUBLISH_TIMEOUT_SECONDS = 0.5
RETRY_SECONDS = 1.0


@dataclass
class CacheStats:
    published: int = 0
    failures: int = 0
    skipped: int = 0  # snapshots not published while waiting to retry an unavailable cache
    available: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SnapshotPublisher:
    """``SET`` the latest snapshot (with a TTL) and ``PUBLISH`` it on the host's live channel."""

    cache: Cache
    stats: CacheStats = field(default_factory=CacheStats)
    _retry_at: float = 0.0

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
            snapshot, ttl = record
            values.append(
                LatestValue(
                    latest_key(snapshot.host, snapshot.metric_type),
                    cache_message(snapshot),
                    ttl,
                    live_channel(snapshot.host),
                )
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
