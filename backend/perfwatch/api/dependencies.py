"""Request dependencies shared by the API routers: the session, the cache, the settings, the
engine. Each comes from ``app.state``, where the lifespan put it (no module globals), so a test
can override any of them through ``app.dependency_overrides``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from perfwatch.cache import Cache
from perfwatch.config import Settings
from perfwatch.db.session import Database, unit_of_work


# All are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
# and that hop costs more than the whole cache hit of /metrics/latest.
async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, the only commit owner of request handling. A session
    that nothing used (a cache hit, a remembered account) opens no connection and commits
    nothing."""
    database = cast(Database, request.app.state.database)
    async with unit_of_work(database.sessionmaker) as session:
        yield session


async def get_cache(request: Request) -> Cache:
    return cast(Cache, request.app.state.cache)


async def get_app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_engine(request: Request) -> AsyncEngine:
    return cast(Database, request.app.state.database).engine


# scope="function": the unit of work commits when the endpoint returns, *before* the response
# is sent, so a failed commit becomes an error response instead of a lost write after a 2xx.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
CacheDep = Annotated[Cache, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
