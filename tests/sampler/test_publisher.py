"""The sampler's cache side: latest snapshot per host/type with a TTL, the live channel, and
surviving a Redis outage (real Redis and the in-process cache)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from perfwatch.cache import Cache
from perfwatch.cache.memory import MemoryCache
from perfwatch.cache.redis import RedisCache
from perfwatch.contract.metrics import SnapshotRow, encode_snapshot, latest_key, live_channel
from perfwatch.sampler.publisher import RETRY_SECONDS, SnapshotPublisher
from tests.support.services import RedisServer, unavailable


def row(metric_type: str = "cpu", percent: float = 12.5) -> SnapshotRow:
    return SnapshotRow(
        "host-a", datetime.now(UTC), metric_type, {"schema_version": 1, "percent": percent}
    )


@pytest.fixture(params=["redis", "memory"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "redis":
        instance: Cache = RedisCache(request.getfixturevalue("redis_url"))
    else:
        instance = MemoryCache()
    yield instance
    await instance.close()


async def test_publish_sets_the_latest_value_with_a_ttl(cache: Cache) -> None:
    publisher = SnapshotPublisher(cache)
    snapshot = row(percent=42.0)
    assert await publisher.publish_many([(encode_snapshot(snapshot), 0.5)])

    cached = await cache.get(latest_key("host-a", "cpu"))
    assert cached is not None
    latest = json.loads(cached)
    assert latest["data"]["percent"] == 42.0
    assert latest["captured_at"] == snapshot.captured_at.isoformat()
    assert publisher.stats.published == 1

    await asyncio.sleep(0.7)  # the TTL expired: a stopped sampler leaves no stale "latest"
    assert await cache.get(latest_key("host-a", "cpu")) is None


async def test_publish_reaches_live_subscribers(cache: Cache) -> None:
    publisher = SnapshotPublisher(cache)
    subscription = await cache.subscribe(live_channel("host-a"))
    try:
        await publisher.publish_many([(encode_snapshot(row("memory")), 5)])
        message = await subscription.get(timeout=2)
    finally:
        await subscription.close()
    assert message is not None
    assert json.loads(message)["metric_type"] == "memory"


async def test_redis_outage_is_survived_and_the_cache_refills(
    redis_server: RedisServer, redis_url: str
) -> None:
    if not redis_server.argv:
        unavailable("this test stops and restarts a Redis started by the run")
    cache = RedisCache(redis_url)
    publisher = SnapshotPublisher(cache)
    try:
        assert await publisher.publish_many([(encode_snapshot(row(percent=1.0)), 30)])
        redis_server.stop()
        try:
            assert await publisher.publish_many([(encode_snapshot(row(percent=2.0)), 30)]) is False
            assert publisher.stats.available is False
            assert publisher.stats.failures == 1
            # Until the retry time, snapshots are not even tried: no waiting on a dead server.
            assert await publisher.publish_many([(encode_snapshot(row(percent=2.5)), 30)]) is False
            assert publisher.stats.skipped == 1
            assert publisher.stats.failures == 1
        finally:
            redis_server.start()
        await asyncio.sleep(RETRY_SECONDS)
        assert await publisher.publish_many([(encode_snapshot(row(percent=3.0)), 30)])
        assert publisher.stats.available is True
        latest = await cache.get(latest_key("host-a", "cpu"))
        assert latest is not None and json.loads(latest)["data"]["percent"] == 3.0
    finally:
        await cache.close()
