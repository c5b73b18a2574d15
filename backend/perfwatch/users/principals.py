"""A short-lived in-process memory of verified accounts (the principals requests act for).

Checking an access token means a revocation read in the cache (Redis) and a user read in the
database. For a dashboard polling ``/metrics/latest`` every second those two reads cost more
than the answer itself, so a verified user is remembered for ``AUTH_CACHE_SECONDS`` (default 5):

* changes made through this process (deactivate, delete, role change, password change, a
  refresh token reused) forget the account (:func:`forget_when_committed`, or after the
  revocation record is written) and apply at the next request;
* changes made elsewhere (the CLI, another worker) apply within ``AUTH_CACHE_SECONDS``;
* only successful checks are remembered: a refused token is checked again every time;
* refresh tokens never use it: they are checked against the cache and the database each time.

``AUTH_CACHE_SECONDS=0`` turns the memory off.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from perfwatch.api.security import Principal

# Enough for a busy installation; beyond it the oldest entries are dropped.
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    # Tokens issued at or before this UNIX time are revoked (None: no revocation on record).
    revoked_before: float | None
    expires_at: float  # time.monotonic()


class PrincipalCache:
    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[uuid.UUID, _Entry] = {}
        # Counts forget() calls: a check that began before one must not store what it read.
        self._forgotten = 0

    def configure(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries.clear()

    def get(self, user_id: uuid.UUID, issued_at: float) -> Principal | None:
        """The remembered principal if still fresh and the token is not revoked, else None
        (the caller then checks the cache and the database)."""
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        if entry.expires_at <= time.monotonic():
            self._entries.pop(user_id, None)
            return None
        if entry.revoked_before is not None and issued_at <= entry.revoked_before:
            return None
        return entry.principal

    def mark(self) -> int:
        """Take before reading the account; pass to :meth:`remember`."""
        return self._forgotten

    def remember(self, principal: Principal, revoked_before: float | None, mark: int) -> None:
        """Keep what a check read, unless an account was forgotten since ``mark`` (the read
        may predate that change: rare, so any account's change skips it)."""
        if self.ttl_seconds <= 0 or mark != self._forgotten:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self._entries[principal.id] = _Entry(
            principal, revoked_before, time.monotonic() + self.ttl_seconds
        )

    def forget(self, user_id: uuid.UUID) -> None:
        self._forgotten += 1
        self._entries.pop(user_id, None)

    def clear(self) -> None:
        self._entries.clear()


# One per process: the services that change users reach it without the web layer.
principal_cache = PrincipalCache()


def forget(user_id: uuid.UUID) -> None:
    """Drop what this process remembers of ``user_id``."""
    principal_cache.forget(user_id)


def forget_when_committed(session: AsyncSession, user_id: uuid.UUID) -> None:
    """For a change to the account in ``session``: forget now, and again once it commits, so
    that a request reading the old row before the commit cannot keep it for AUTH_CACHE_SECONDS."""
    forget(user_id)

    def when_committed(committed: Session) -> None:
        # after_commit also fires when a savepoint is released: only the real commit counts.
        if not committed.in_nested_transaction():
            forget(user_id)

    event.listen(session.sync_session, "after_commit", when_committed)
