"""The sampler as the settings describe it, built in one place for both processes that run one:
the server's lifespan and ``perfwatch sampler``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.cache import Cache
from perfwatch.config import Settings
from perfwatch.sampler.runner import SPOOL_FILE, Sampler


def build_sampler(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], cache: Cache
) -> Sampler:
    return Sampler(
        sessionmaker=sessionmaker,
        cache=cache,
        spool_path=settings.perfwatch_data_dir / SPOOL_FILE,
        spool_max_rows=settings.sampler_spool_max_rows,
    )
