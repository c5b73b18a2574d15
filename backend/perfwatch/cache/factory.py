from __future__ import annotations

import asyncio

from perfwatch.cache.base import Cache
from perfwatch.cache.memory import MemoryCache
from perfwatch.cache.redis import RedisCache
from perfwatch.config import Settings


def build_cache(settings: Settings) -> Cache:
    return RedisCache(settings.redis_url) if settings.redis_url else MemoryCache()


async def check_cache(cache: Cache, timeout: float = 2.0) -> str | None:
    """``PING`` the cache; ``None`` when healthy, otherwise a short reason."""
    try:
        async with asyncio.timeout(timeout):
            await cache.ping()
    except TimeoutError:
        return f"{cache.name} did not answer within {timeout:g} s"
    except Exception as exc:  # any client error means "not ready"; the reason is reported
        return f"{cache.name} unreachable: {type(exc).__name__}: {exc}".strip()[:300]
    return None
