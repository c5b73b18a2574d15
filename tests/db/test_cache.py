"""RedisCache (against a real redis-server) and MemoryCache must behave the same."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from perfwatch.cache import Cache, build_cache, check_cache
from perfwatch.cache.memory import MemoryCache
from perfwatch.cache.redis import RedisCache
from tests.support.helpers import closed_redis_url, make_settings


@pytest.fixture(params=["redis", "memory"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    instance: Cache
    if request.param == "redis":
        instance = RedisCache(request.getfixturevalue("redis_url"))
    else:
        instance = MemoryCache()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def key() -> str:
    """A key (or channel) no other test uses: the Redis server is shared by the run."""
    return f"test:{uuid.uuid4().hex}"


async def test_ping_and_check(cache: Cache) -> None:
    await cache.ping()
    assert await check_cache(cache, timeout=2) is None


async def test_get_set_overwrite(cache: Cache, key: str) -> None:
    assert await cache.get(key) is None
    await cache.set(key, "one")
    assert await cache.get(key) == "one"
    await cache.set(key, "two")
    assert await cache.get(key) == "two"
    await cache.set(key, "")
    assert await cache.get(key) == ""


async def test_ttl_expiry(cache: Cache, key: str) -> None:
    await cache.set(key, "short-lived", ttl_seconds=0.3)
    await cache.set(f"{key}:kept", "kept")
    assert await cache.get(key) == "short-lived"
    await asyncio.sleep(0.5)
    assert await cache.get(key) is None
    assert await cache.get(f"{key}:kept") == "kept"


async def test_set_without_ttl_clears_an_earlier_ttl(cache: Cache, key: str) -> None:
    await cache.set(key, "first", ttl_seconds=0.3)
    await cache.set(key, "second")
    await asyncio.sleep(0.5)
    assert await cache.get(key) == "second"


async def test_delete(cache: Cache, key: str) -> None:
    await cache.set(key, "value")
    await cache.delete(key)
    assert await cache.get(key) is None
    await cache.delete(key)  # deleting a missing key is not an error
    assert await cache.get(key) is None


async def test_incr_counts_from_zero(cache: Cache, key: str) -> None:
    assert [await cache.incr(key) for _ in range(3)] == [1, 2, 3]
    assert await cache.get(key) == "3"
    await cache.set(f"{key}:preset", "41")
    assert await cache.incr(f"{key}:preset") == 42


async def test_incr_window_starts_with_the_first_hit(cache: Cache, key: str) -> None:
    # A rate-limit window: later hits must not extend it.
    assert await cache.incr(key, ttl_seconds=0.6) == 1
    await asyncio.sleep(0.35)
    assert await cache.incr(key, ttl_seconds=0.6) == 2
    await asyncio.sleep(0.4)  # 0.75 s after the first hit: the window is over
    assert await cache.get(key) is None
    assert await cache.incr(key, ttl_seconds=0.6) == 1


async def test_publish_reaches_a_subscriber(cache: Cache, key: str) -> None:
    subscription = await cache.subscribe(key)
    try:
        assert await subscription.get(timeout=0.1) is None  # nothing published yet
        assert await cache.publish(key, "hello") == 1
        assert await subscription.get(timeout=2) == "hello"
        assert await cache.publish(f"{key}:other", "elsewhere") == 0
        assert await cache.publish(key, "again") == 1
        assert await subscription.get(timeout=2) == "again"
    finally:
        await subscription.close()


async def test_every_subscriber_receives_each_message(cache: Cache, key: str) -> None:
    first = await cache.subscribe(key)
    second = await cache.subscribe(key)
    try:
        assert await cache.publish(key, "fan-out") == 2
        assert await first.get(timeout=2) == "fan-out"
        assert await second.get(timeout=2) == "fan-out"
    finally:
        await first.close()
        await second.close()


async def test_subscription_iterates_messages_in_order(cache: Cache, key: str) -> None:
    subscription = await cache.subscribe(key)
    try:
        for number in range(3):
            await cache.publish(key, f"m{number}")
        received: list[str] = []

        async def collect() -> None:
            async for message in subscription:
                received.append(message)
                if len(received) == 3:
                    return

        await asyncio.wait_for(collect(), timeout=2)
        assert received == ["m0", "m1", "m2"]
    finally:
        await subscription.close()


async def receivers_after(cache: Cache, channel: str, settle_seconds: float = 1.0) -> int:
    """Receivers of a publish once the server had a moment to notice a closed connection."""
    deadline = asyncio.get_running_loop().time() + settle_seconds
    while True:
        receivers = await cache.publish(channel, "anyone?")
        if receivers == 0 or asyncio.get_running_loop().time() > deadline:
            return receivers
        await asyncio.sleep(0.02)


async def test_close_frees_the_subscription(cache: Cache, key: str) -> None:
    subscription = await cache.subscribe(key)
    assert await cache.publish(key, "before") == 1
    await subscription.close()
    assert await receivers_after(cache, key) == 0


async def test_async_with_closes_the_subscription(cache: Cache, key: str) -> None:
    async with await cache.subscribe(key) as subscription:
        assert await cache.publish(key, "inside") == 1
        assert await subscription.get(timeout=2) == "inside"
    assert await receivers_after(cache, key) == 0


async def test_closing_one_subscription_keeps_the_others(cache: Cache, key: str) -> None:
    leaving = await cache.subscribe(key)
    staying = await cache.subscribe(key)
    try:
        await leaving.close()
        assert await receivers_after(cache, key) == 1
        assert await staying.get(timeout=2) == "anyone?"
    finally:
        await staying.close()


# ----- building and checking ----------------------------------------------------------------------


async def test_build_cache_follows_redis_url(redis_url: str, sqlite_url: str, key: str) -> None:
    redis_cache = build_cache(make_settings(sqlite_url, redis_url=redis_url))
    memory_cache = build_cache(make_settings(sqlite_url))
    try:
        assert isinstance(redis_cache, RedisCache)
        assert isinstance(memory_cache, MemoryCache)
        await redis_cache.set(key, "shared")
        other = RedisCache(redis_url)  # another process would see the value
        try:
            assert await other.get(key) == "shared"
        finally:
            await other.close()
    finally:
        await redis_cache.close()
        await memory_cache.close()


async def test_check_names_an_unreachable_redis() -> None:
    cache = RedisCache(closed_redis_url())
    try:
        started = asyncio.get_running_loop().time()
        problem = await check_cache(cache, timeout=2)
        assert problem is not None
        assert problem.startswith("redis ")
        assert asyncio.get_running_loop().time() - started < 2.5
    finally:
        await cache.close()
