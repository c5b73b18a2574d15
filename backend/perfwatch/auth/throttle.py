"""Login throttling per username and per client address, counted in the cache.

After ``MAX_FAILURES`` failed logins within ``WINDOW_SECONDS`` for a username, or from one
client address, further attempts are refused with 429 (without checking the password) until
the window, which starts at the first failure, has passed; ``Retry-After`` says when. A
successful login clears the username's counter (not the address's: one address guessing many
usernames stays throttled). Counters use ``Cache.incr`` with a TTL, so they are shared by every
replica with Redis and per process with the in-process cache.

Usernames are hashed into the key (any length, any bytes) and compared case-insensitively, as
logins are.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from perfwatch.cache import Cache
from perfwatch.errors import TooManyRequestsError

logger = logging.getLogger("perfwatch.auth")

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60

_COUNT_KEY = "perfwatch:auth:login_failures:{kind}:{subject}"
_SINCE_KEY = "perfwatch:auth:login_failures_since:{kind}:{subject}"


def _subject(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    cache: Cache
    max_failures: int = MAX_FAILURES
    window_seconds: int = WINDOW_SECONDS

    def _keys(self, username: str, address: str) -> list[tuple[str, str]]:
        return [
            ("username", _subject(username)),
            ("address", _subject(address)),
        ]

    async def check(self, username: str, address: str) -> None:
        """Raise ``TooManyRequestsError`` if either counter has reached the limit.

        With the cache away, logins are not throttled (logged): refusing every login during a
        Redis outage would lock administrators out; bcrypt's cost still slows guessing."""
        retry_after = 0
        try:
            for kind, subject in self._keys(username, address):
                count = await self.cache.get(_COUNT_KEY.format(kind=kind, subject=subject))
                if count is not None and int(count) >= self.max_failures:
                    retry_after = max(retry_after, await self._seconds_left(kind, subject))
        except Exception as exc:
            logger.warning("cache unavailable: login not throttled (%s)", exc)
            return
        if retry_after:
            raise TooManyRequestsError(
                f"too many failed logins; try again in {retry_after} s",
                retry_after=retry_after,
                code="login_throttled",
            )

    async def record_failure(self, username: str, address: str) -> None:
        try:
            await self._record_failure(username, address)
        except Exception as exc:
            logger.warning("cache unavailable: failed login not counted (%s)", exc)

    async def _record_failure(self, username: str, address: str) -> None:
        for kind, subject in self._keys(username, address):
            count = await self.cache.incr(
                _COUNT_KEY.format(kind=kind, subject=subject), ttl_seconds=self.window_seconds
            )
            if count == 1:  # the window starts now; remember when, for Retry-After
                await self.cache.set(
                    _SINCE_KEY.format(kind=kind, subject=subject),
                    repr(time.time()),
                    ttl_seconds=self.window_seconds,
                )

    async def reset_username(self, username: str) -> None:
        subject = _subject(username)
        try:
            await self.cache.delete(_COUNT_KEY.format(kind="username", subject=subject))
            await self.cache.delete(_SINCE_KEY.format(kind="username", subject=subject))
        except Exception as exc:
            logger.warning("cache unavailable: login failures not reset (%s)", exc)

    async def _seconds_left(self, kind: str, subject: str) -> int:
        since = await self.cache.get(_SINCE_KEY.format(kind=kind, subject=subject))
        if since is None:
            return self.window_seconds
        left = float(since) + self.window_seconds - time.time()
        return max(1, min(self.window_seconds, math.ceil(left)))
