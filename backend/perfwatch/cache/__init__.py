"""Cache and pub/sub: Redis when ``REDIS_URL`` is set, an in-process stand-in otherwise."""

from perfwatch.cache.base import Cache, LatestValue, Subscription
from perfwatch.cache.factory import build_cache, check_cache

__all__ = ["Cache", "LatestValue", "Subscription", "build_cache", "check_cache"]
