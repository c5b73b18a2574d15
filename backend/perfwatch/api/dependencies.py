"""Request dependencies shared by the API routers: the session, the cache, the settings."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.cache import Cache
from perfwatch.config import Settings
from perfwatch.db.session import get_session


# Both are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
# and that hop costs more than the whole cache hit of /metrics/latest.
async def get_cache(request: Request) -> Cache:
    return cast(Cache, request.app.state.cache)


async def get_app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


# scope="function": the unit of work commits when the endpoint returns, *before* the response
# is sent, so a failed commit becomes an error response instead of a lost write after a 2xx.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
CacheDep = Annotated[Cache, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
