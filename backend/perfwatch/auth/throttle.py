"""Login throttling: refuse a guessing address, slow down a guessed account, never lock it.

Failed logins are counted in the cache (``Cache.incr`` with a TTL: in Redis every worker and
replica sees the same counts; the in-process cache of the embedded default counts per process).
Each count lives ``WINDOW_SECONDS`` (15 min) from the first failure it counts. Checked before the
password, in this order:

1. **Address**: after ``ADDRESS_LIMIT`` (20) failures from one client address, whatever the
   usernames, that address gets 429 for every login until its window ends.
2. **Username and address**: after ``PAIR_LIMIT`` (5) failures for one username from one address,
   that address gets 429 for that username until the pair's window ends.
3. **Username**: failures from all addresses are counted too, but they never refuse a login (that
   would let anyone who knows a username lock its owner out). From the ``SLOWDOWN_AFTER``-th
   (10th) failure on, every attempt for that username first waits one second per failure past
   the 9th, at most ``MAX_DELAY_SECONDS`` (10 s). The right password from an address that has
   not been refused still succeeds.

A success clears its (username, address) pair; the address and username counts stay, so an
address guessing many accounts cannot reset its count with one account of its own, and an
account's owner logging in does not hand a distributed guesser fresh undelayed attempts.

An administrator lifts all of it at once with :func:`unlock` (``perfwatch user unlock NAME``,
``--address ADDR`` for an address): pair keys carry the username's *generation*, a random value
that ``unlock`` replaces, so the pairs from every address are forgotten without listing them.

Usernames and addresses are hashed into the keys (any length, any bytes); usernames compare
case-insensitively, as logins do. With the cache away, logins are not throttled (logged):
refusing every login during a Redis outage would lock administrators out, and bcrypt's cost
still slows guessing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass

from perfwatch.cache import Cache
from perfwatch.errors import TooManyRequestsError

logger = logging.getLogger("perfwatch.auth")

WINDOW_SECONDS = 15 * 60
ADDRESS_LIMIT = 20
PAIR_LIMIT = 5
SLOWDOWN_AFTER = 10
MAX_DELAY_SECONDS = 10.0

_PREFIX = "perfwatch:auth:throttle"
_USERNAME_KEY = _PREFIX + ":username:{user}"
# No TTL: a pair counted under an older generation must never become current again.
_GENERATION_KEY = _PREFIX + ":generation:{user}"
_PAIR_KEY = _PREFIX + ":pair:{user}:{generation}:{address}"
_ADDRESS_KEY = _PREFIX + ":address:{address}"
_SINCE = ":since"  # suffix: when the counter's window began, for Retry-After


def _subject(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _shown_name(username: str) -> str:
    """The username for the unlock hint, or NAME when it could not be a real one (never echo
    junk of any length back)."""
    name = username.strip()
    usable = 3 <= len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)
    return name if usable else "NAME"


def _unlock_hint(username: str, address: str | None = None) -> str:
    command = f"perfwatch user unlock {_shown_name(username)}"
    if address is not None:
        command += f" --address {address}"
    return f"an administrator can lift it at once with `{command}`"


@dataclass(frozen=True, slots=True)
class _Keys:
    username: str
    pair: str
    address: str

    @classmethod
    async def of(cls, cache: Cache, username: str, address: str) -> _Keys:
        user, client = _subject(username), _subject(address)
        generation = await cache.get(_GENERATION_KEY.format(user=user)) or "0"
        return cls(
            username=_USERNAME_KEY.format(user=user),
            pair=_PAIR_KEY.format(user=user, generation=generation, address=client),
            address=_ADDRESS_KEY.format(address=client),
        )


def slowdown_seconds(failures: int) -> float:
    """How long an attempt for a username with ``failures`` recent failures waits."""
    if failures < SLOWDOWN_AFTER:
        return 0.0
    return min(MAX_DELAY_SECONDS, float(failures - SLOWDOWN_AFTER + 1))


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    cache: Cache

    async def check(self, username: str, address: str) -> None:
        """Raise ``TooManyRequestsError`` if the address or the pair is refused; otherwise wait
        as long as the username's failures ask for."""
        try:
            refusal, delay = await self._verdict(username, address)
        except Exception as exc:
            logger.warning("cache unavailable: login not throttled (%s)", exc)
            return
        if refusal is not None:
            raise refusal
        if delay:
            await asyncio.sleep(delay)

    async def _verdict(
        self, username: str, address: str
    ) -> tuple[TooManyRequestsError | None, float]:
        keys = await _Keys.of(self.cache, username, address)
        if await self._count(keys.address) >= ADDRESS_LIMIT:
            left = await self._seconds_left(keys.address)
            return _refusal(
                f"too many failed logins from this address ({address}); try again in {left} s, "
                f"or {_unlock_hint(username, address)}",
                left,
            ), 0.0
        if await self._count(keys.pair) >= PAIR_LIMIT:
            left = await self._seconds_left(keys.pair)
            return _refusal(
                f"too many failed logins for this username from this address; try again in "
                f"{left} s (other addresses are not affected), or {_unlock_hint(username)}",
                left,
            ), 0.0
        return None, slowdown_seconds(await self._count(keys.username))

    async def record_failure(self, username: str, address: str) -> None:
        try:
            keys = await _Keys.of(self.cache, username, address)
            for key in (keys.address, keys.pair):
                if await self.cache.incr(key, ttl_seconds=WINDOW_SECONDS) == 1:
                    # The window starts now; remember when, for Retry-After.
                    await self.cache.set(key + _SINCE, repr(time.time()), WINDOW_SECONDS)
            await self.cache.incr(keys.username, ttl_seconds=WINDOW_SECONDS)
        except Exception as exc:
            logger.warning("cache unavailable: failed login not counted (%s)", exc)

    async def record_success(self, username: str, address: str) -> None:
        """Forget the failures of this pair (not those of the address or the username)."""
        try:
            keys = await _Keys.of(self.cache, username, address)
            await self.cache.delete(keys.pair)
            await self.cache.delete(keys.pair + _SINCE)
        except Exception as exc:
            logger.warning("cache unavailable: login failures not reset (%s)", exc)

    async def _count(self, key: str) -> int:
        return int(await self.cache.get(key) or 0)

    async def _seconds_left(self, key: str) -> int:
        since = await self.cache.get(key + _SINCE)
        if since is None:
            return WINDOW_SECONDS
        left = float(since) + WINDOW_SECONDS - time.time()
        return max(1, min(WINDOW_SECONDS, math.ceil(left)))


def _refusal(message: str, retry_after: int) -> TooManyRequestsError:
    return TooManyRequestsError(message, retry_after=retry_after, code="login_throttled")


async def unlock(cache: Cache, username: str, *, address: str | None = None) -> int:
    """Clear ``username``'s throttling: its failure count and its pairs from every address (and
    the count of ``address``, if given). Returns the failures counted for the username in the
    current window. Cache errors propagate: the caller must know it did not work."""
    user = _subject(username)
    failures = int(await cache.get(_USERNAME_KEY.format(user=user)) or 0)
    await cache.set(_GENERATION_KEY.format(user=user), secrets.token_hex(8))
    await cache.delete(_USERNAME_KEY.format(user=user))
    if address is not None:
        key = _ADDRESS_KEY.format(address=_subject(address))
        await cache.delete(key)
        await cache.delete(key + _SINCE)
    return failures
