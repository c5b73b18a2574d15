"""Driving the HTTP API in tests: the real app with its lifespan over ASGI, users, tokens.

Isolation: an API test on the shared, migrated test database (the ``api_settings`` fixture
without ``fresh_db``) runs inside one outer transaction that the fixture rolls back. The app
reaches it through ``app.dependency_overrides[get_session]``: each request's unit of work
commits to a savepoint of that transaction. A test that needs real commits (other connections
or processes must see its writes, or it sends requests concurrently) asks for ``fresh_db``."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from perfwatch.api.dependencies import get_session
from perfwatch.app import create_app
from perfwatch.auth.tokens import TokenType, issue_token
from perfwatch.config import Settings
from perfwatch.db.session import SessionFactory, unit_of_work
from perfwatch.models import User, UserRole
from perfwatch.users.service import UserService
from tests.support.helpers import make_settings

BASE_URL = "http://perfwatch.test"


def api_settings_for(
    request: pytest.FixtureRequest, url: str, dialect: str, **overrides: Any
) -> Settings:
    """Settings on the test's ``fresh_db``: PostgreSQL with the real Redis, SQLite with the
    in-process cache (each database and each cache is covered)."""
    if dialect == "postgres":
        overrides.setdefault("redis_url", request.getfixturevalue("redis_url"))
    return make_settings(url, **overrides)


def random_address() -> str:
    """A client address of its own, so address throttling never carries over between tests
    (the Redis server is shared by the whole run)."""
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# The outer transaction of the running test, by database URL (set by the api_settings fixture;
# a copy of the settings keeps the URL, so it stays in the transaction too).
OPEN_TRANSACTIONS: dict[str, AsyncConnection] = {}
# The session factory of the app running in this test: add_user() and app_session() use it.
_SESSIONS: ContextVar[SessionFactory] = ContextVar("test_sessions")


@asynccontextmanager
async def running_app(settings: Settings, app: FastAPI | None = None) -> AsyncIterator[FastAPI]:
    app = app or create_app(settings)
    async with app.router.lifespan_context(app):
        connection = OPEN_TRANSACTIONS.get(str(settings.database_url))
        if connection is None:
            sessions: SessionFactory = app.state.database.sessionmaker
        else:
            sessions = async_sessionmaker(
                bind=connection,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )

            async def session_in_test_transaction() -> AsyncIterator[AsyncSession]:
                async with unit_of_work(sessions) as session:
                    yield session

            app.dependency_overrides[get_session] = session_in_test_transaction
        token = _SESSIONS.set(sessions)
        try:
            yield app
        finally:
            _SESSIONS.reset(token)
            app.dependency_overrides.clear()


@contextmanager
def statements_executed(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app sends inside the block, whichever database the test uses
    (the app's engine, or the test transaction's connection)."""
    executed: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        executed.append(statement)

    engines = {app.state.database.engine.sync_engine}
    engines.update(connection.sync_engine for connection in OPEN_TRANSACTIONS.values())
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield executed
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def app_session() -> AbstractAsyncContextManager[AsyncSession]:
    """A unit of work on the running app's database (inside the test's transaction if any)."""
    return unit_of_work(_SESSIONS.get())


def client_of(
    app: FastAPI, address: str | None = None, *, raise_app_exceptions: bool = True
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=app,
        client=(address or random_address(), 40000),
        raise_app_exceptions=raise_app_exceptions,
    )
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@dataclass(frozen=True, slots=True)
class Account:
    user: User
    password: str

    @property
    def username(self) -> str:
        return self.user.username


async def add_user(
    role: UserRole = UserRole.VIEWER,
    *,
    password: str | None = None,
    username: str | None = None,
    sessions: SessionFactory | None = None,
    **values: Any,
) -> Account:
    """A committed user in the running app's database (or in ``sessions``' database)."""
    password = password or f"pw-{uuid.uuid4().hex}"
    async with unit_of_work(sessions or _SESSIONS.get()) as session:
        user = await UserService(session).create_user(
            username=username or unique_name(role.value),
            password=password,
            role=role,
            check_strength=False,
        )
        if values:
            for name, value in values.items():
                setattr(user, name, value)
    return Account(user=user, password=password)


def access_token(settings: Settings, user: User, **kwargs: Any) -> str:
    return issue_token(
        settings, user_id=user.id, role=user.role.value, typ=TokenType.ACCESS, **kwargs
    ).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", data={"username": username, "password": password}
    )


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response has ``status`` and the one error shape; returns its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code, error
    return dict(error)
