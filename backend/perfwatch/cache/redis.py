"""Redis-backed cache and pub/sub (redis-py asyncio)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from perfwatch.cache.base import LatestValue

SOCKET_TIMEOUT_SECONDS = 2.0


class RedisSubscription:
    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def get(self, timeout: float | None = None) -> str | None:
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        return None if message is None else str(message["data"])

    async def __aiter__(self) -> AsyncIterator[str]:
        async for message in self._pubsub.listen():
            if message.get("type") == "message":
                yield str(message["data"])

    async def close(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> RedisSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class RedisCache:
    name = "redis"

    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=30,
        )

    @property
    def client(self) -> Redis:
        return self._redis

    async def ping(self) -> None:
        await self._redis.ping()

    async def get(self, key: str) -> str | None:
        value: Any = await self._redis.get(key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        if ttl_seconds:
            await self._redis.set(key, value, px=int(ttl_seconds * 1000))
        else:
            await self._redis.set(key, value)

    async def delete(self, key: str) -> None:
        await self._redis.delete(key)

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            if ttl_seconds:
                pipe.pexpire(key, int(ttl_seconds * 1000), nx=True)
            results = await pipe.execute()
        return int(results[0])

    async def publish(self, channel: str, message: str) -> int:
        return int(await self._redis.publish(channel, message))

    async def set_and_publish(self, values: Sequence[LatestValue]) -> None:
        # One round trip for a whole sampling cycle: each one wakes the process, which is
        # most of what publishing costs.
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in values:
                if item.ttl_seconds:
                    pipe.set(item.key, item.value, px=int(item.ttl_seconds * 1000))
                else:
                    pipe.set(item.key, item.value)
                pipe.publish(item.channel, item.value)
            await pipe.execute()

    async def subscribe(self, channel: str) -> RedisSubscription:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(channel)
        # Consume the subscribe confirmation so get() returns only real messages.
        await asyncio.wait_for(
            pubsub.get_message(timeout=SOCKET_TIMEOUT_SECONDS), SOCKET_TIMEOUT_SECONDS
        )
        return RedisSubscription(pubsub)

    async def close(self) -> None:
        await self._redis.aclose()
