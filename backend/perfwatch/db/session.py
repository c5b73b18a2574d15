"""Engine and session lifecycle, the request session dependency and the database health probe.

The request dependency ``get_session`` is the only place that commits in request handling;
jobs and the CLI use ``unit_of_work()``, which follows the same rule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from perfwatch.config import Settings, get_settings
from perfwatch.db.engine import build_engine

logger = logging.getLogger("perfwatch.db")

_engine: AsyncEngine | None = None
_sessionmaker: async_sessionmaker[AsyncSession] | None = None


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def init_database(settings: Settings | None = None) -> AsyncEngine:
    """Create the process-wide engine (idempotent) and return it."""
    global _engine, _sessionmaker
    if _engine is None:
        settings = settings or get_settings()
        _engine = build_engine(settings)
        _sessionmaker = make_sessionmaker(_engine)
        logger.info("database engine created for %s", settings.safe_database_url())
    return _engine


async def close_database() -> None:
    global _engine, _sessionmaker
    if _engine is not None:
        await _engine.dispose()
    _engine = None
    _sessionmaker = None


def get_engine() -> AsyncEngine:
    if _engine is None:
        raise RuntimeError("init_database() has not been called")
    return _engine


def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    if _sessionmaker is None:
        raise RuntimeError("init_database() has not been called")
    return _sessionmaker


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    factory = sessionmaker or get_sessionmaker()
    async with factory() as session:
        try:
            yield session
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                # (A request answered from the cache never touched the database.)
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request, committed on success, rolled back on error."""
    async with unit_of_work() as session:
        yield session


async def check_database(engine: AsyncEngine | None = None, timeout: float = 2.0) -> str | None:
    """Run ``SELECT 1``; return ``None`` when healthy, otherwise a short reason."""
    try:
        target = engine or get_engine()
        async with asyncio.timeout(timeout):
            async with target.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"database did not answer within {timeout:g} s"
    except Exception as exc:  # any driver error means "not ready"; the reason is reported
        return f"database unreachable: {type(exc).__name__}: {exc}".strip()[:300]
    return None
