"""At most one maintenance runner at a time, across processes (the server's replicas,
``perfwatch sampler``, ``perfwatch retention run``): whoever gets the lock runs, the others skip
their round. Never waits.

PostgreSQL: ``pg_try_advisory_lock`` on a connection of its own, held in autocommit (no open
transaction pins old row versions meanwhile) and released with ``pg_advisory_unlock``; if the
process dies, the server drops the lock with the connection. SQLite: an exclusive, non-blocking
``flock`` on a file beside the database, dropped by the kernel if the process dies.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MAINTENANCE_LOCK_KEY = 0x5046_4D41_494E_54  # "PFMAINT"; init and migrations use their own keys
LOCK_FILE_SUFFIX = ".maintenance.lock"


@asynccontextmanager
async def maintenance_lock(engine: AsyncEngine) -> AsyncIterator[bool]:
    """Yield True while this process holds the maintenance lock, False if another one does."""
    if engine.dialect.name == "postgresql":
        async with _advisory_lock(engine) as held:
            yield held
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True  # a private database: no other process can reach it
        return
    with _file_lock(database + LOCK_FILE_SUFFIX) as held:
        yield held


@asynccontextmanager
async def _advisory_lock(engine: AsyncEngine) -> AsyncIterator[bool]:
    connection = await engine.connect()
    try:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        held = bool(
            await autocommit.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": MAINTENANCE_LOCK_KEY}
            )
        )
        try:
            yield held
        finally:
            if held:
                try:
                    await autocommit.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": MAINTENANCE_LOCK_KEY}
                    )
                except BaseException:
                    # Never hand a connection that may still hold the lock back to the pool.
                    await connection.invalidate()
                    raise
    finally:
        await connection.close()


@contextmanager
def _file_lock(path: str) -> Iterator[bool]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
