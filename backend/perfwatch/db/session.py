"""Opening the database, units of work and the database health probe.

No module globals: whoever runs (the app's lifespan, a CLI command, a job) opens a
:class:`Database` and hands its session factory on. The app keeps it on ``app.state``; the
request dependency (``api/dependencies.get_session``) is ``unit_of_work`` per request, the only
place that commits in request handling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from perfwatch.config import Settings
from perfwatch.db.engine import build_engine

logger = logging.getLogger("perfwatch.db")

SessionFactory = async_sessionmaker[AsyncSession]


def make_sessionmaker(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@dataclass(frozen=True, slots=True)
class Database:
    """An engine and its session factory: what one process (or test) talks to."""

    engine: AsyncEngine
    sessionmaker: SessionFactory

    @classmethod
    def connect(cls, settings: Settings) -> Database:
        """Build the engine (no connection is made until first use)."""
        engine = build_engine(settings)
        logger.info("database engine created for %s", settings.safe_database_url())
        return cls(engine, make_sessionmaker(engine))

    async def close(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """A :class:`Database` for the block, disposed afterwards (CLI commands, jobs)."""
    database = Database.connect(settings)
    try:
        yield database
    finally:
        await database.close()


@asynccontextmanager
async def unit_of_work(sessionmaker: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                # (A request answered from the cache never touched the database.)
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def check_database(engine: AsyncEngine, timeout: float = 2.0) -> str | None:
    """Run ``SELECT 1``; return ``None`` when healthy, otherwise a short reason."""
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"database did not answer within {timeout:g} s"
    except Exception as exc:  # any driver error means "not ready"; the reason is reported
        return f"database unreachable: {type(exc).__name__}: {exc}".strip()[:300]
    return None
