"""The app's authenticator (``api.security.Authenticator``): an access token → its account.

A remembered account (``users/principals.py``) needs no database read; otherwise the request's
own session is used, so request handling keeps one commit owner (``api.dependencies``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.api.security import Principal
from perfwatch.auth.service import AuthService
from perfwatch.cache import Cache
from perfwatch.config import Settings


async def authenticate_token(
    token: str, session: AsyncSession, cache: Cache, settings: Settings
) -> Principal:
    remembered = AuthService.remembered(settings, token)
    if remembered is not None:
        return remembered
    return await AuthService(session, cache, settings).authenticate(token)
