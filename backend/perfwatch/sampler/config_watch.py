"""Noticing config_entries changes within a second, cheaply.

The sampler must pick up a changed interval within a cycle, so it looks every second. Reading
every entry through the ORM each time costs about 1 ms of CPU, more than the CPU, memory and disk
collectors together; so each look is one tiny query — how many entries, and when the newest
changed — sent straight through the driver on a connection held for the purpose (no pool
checkout, no pre-ping: ~0.1 ms). Only when that marker moves are the entries read in full; they
are also read every ``FULL_READ_SECONDS`` in case a row was edited by hand without touching
``updated_at``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from perfwatch.config_store.repository import ConfigRepository

logger = logging.getLogger("perfwatch.sampler.config")

FULL_READ_SECONDS = 60.0
_MARKER_SQL = "SELECT count(*), max(updated_at) FROM config_entries"


class ConfigWatcher:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        bind = sessionmaker.kw.get("bind")
        self._engine: AsyncEngine | None = bind if isinstance(bind, AsyncEngine) else None
        self._connection: AsyncConnection | None = None
        self._marker: tuple[Any, ...] | None = None
        self._read_at = float("-inf")
        self.full_reads = 0

    async def changed_values(self) -> dict[str, Any] | None:
        """Every entry when something changed since the last call (or on the first call),
        else None. Raises when the database cannot be reached."""
        marker = await self._read_marker()
        now = time.monotonic()
        fresh = now - self._read_at < FULL_READ_SECONDS
        if marker is not None and marker == self._marker and fresh:
            return None
        async with self.sessionmaker() as session:
            values = await ConfigRepository(session).as_dict()
        self._marker = marker
        self._read_at = now
        self.full_reads += 1
        return values

    async def _read_marker(self) -> tuple[Any, ...] | None:
        if self._engine is None:  # a sessionmaker without an engine: always read in full
            return None
        try:
            if self._connection is None:
                self._connection = await self._engine.connect()
            raw = await self._connection.get_raw_connection()
            driver: Any = raw.driver_connection
            if self._engine.dialect.name == "postgresql":
                row = await driver.fetchrow(_MARKER_SQL)
            else:
                async with driver.execute(_MARKER_SQL) as cursor:
                    row = await cursor.fetchone()
            return tuple(row) if row is not None else None
        except Exception:
            # A new connection next time: the server may have restarted.
            await self.close(broken=True)
            raise

    async def close(self, *, broken: bool = False) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if broken:
                await connection.invalidate()
            else:
                await connection.close()
        except Exception as exc:  # already broken: nothing more to release
            logger.debug("closing the config connection: %s", exc)
