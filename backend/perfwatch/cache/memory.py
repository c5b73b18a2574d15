"""In-process cache and pub/sub for the embedded default (no Redis): one process, no persistence."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

from perfwatch.cache.base import LatestValue

SUBSCRIBER_QUEUE_SIZE = 1000


class MemorySubscription:
    def __init__(self, broker: MemoryCache, channel: str) -> None:
        self._broker = broker
        self._channel = channel
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_SIZE)

    async def get(self, timeout: float | None = None) -> str | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            yield await self.queue.get()

    async def close(self) -> None:
        self._broker._subscribers[self._channel].discard(self)

    async def __aenter__(self) -> MemorySubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class MemoryCache:
    name = "memory"

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float | None]] = {}
        self._subscribers: defaultdict[str, set[MemorySubscription]] = defaultdict(set)

    async def ping(self) -> None:
        return None

    def _alive(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= time.monotonic():
            del self._values[key]
            return None
        return value

    async def get(self, key: str) -> str | None:
        return self._alive(key)

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        expires_at = time.monotonic() + ttl_seconds if ttl_seconds else None
        self._values[key] = (value, expires_at)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        current = self._alive(key)
        count = int(current or 0) + 1
        _, expires_at = self._values.get(key, ("", None))
        if current is None:  # like INCR + EXPIRE on a new key: the window starts now
            expires_at = time.monotonic() + ttl_seconds if ttl_seconds else None
        self._values[key] = (str(count), expires_at)
        return count

    async def publish(self, channel: str, message: str) -> int:
        receivers = 0
        for subscription in list(self._subscribers.get(channel, ())):
            if (
                subscription.queue.full()
            ):  # a slow reader loses its oldest message, not the publisher
                subscription.queue.get_nowait()
            subscription.queue.put_nowait(message)
            receivers += 1
        return receivers

    async def set_and_publish(self, values: Sequence[LatestValue]) -> None:
        for item in values:
            await self.set(item.key, item.value, item.ttl_seconds)
            await self.publish(item.channel, item.value)

    async def subscribe(self, channel: str) -> MemorySubscription:
        subscription = MemorySubscription(self, channel)
        self._subscribers[channel].add(subscription)
        return subscription

    async def close(self) -> None:
        self._values.clear()
        self._subscribers.clear()
