"""Fixtures: real PostgreSQL 16 and SQLite, migrated once per run; each test runs inside a
transaction that is rolled back at the end (savepoint mode), so tests never see each other."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from perfwatch.config import Settings, get_settings
from perfwatch.db.engine import build_engine
from tests.support.helpers import make_settings, migrate_async, recreate_database, scratch_postgres
from tests.support.services import (
    TEST_DATABASE_NAME,
    PostgresServer,
    RedisServer,
    start_postgres,
    start_redis,
    unavailable,
)

# The Docker Compose end-to-end suite needs a Docker engine and minutes: `make e2e` runs it.
collect_ignore_glob = [] if os.environ.get("PERFWATCH_E2E") == "1" else ["e2e/*"]

DIALECTS = ("postgres", "sqlite")
TEMPLATE_DATABASE_NAME = f"{TEST_DATABASE_NAME}_template"

# Settings read from the environment must never point tests at a developer's database, and a
# developer's .env must not leak in (subprocesses inherit PERFWATCH_ENV_FILE="" too).
for _name in ("DATABASE_URL", "REDIS_URL", "ENVIRONMENT", "ADMIN_PASSWORD", "ADMIN_USERNAME"):
    os.environ.pop(_name, None)
os.environ["PERFWATCH_ENV_FILE"] = ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    if redis_server.problem:
        unavailable(redis_server.problem)
    return redis_server.url


@pytest.fixture(scope="session")
async def postgres_url(postgres_server: PostgresServer) -> str:
    """A dedicated, migrated test database (never the development one)."""
    url = await recreate_database(postgres_server, TEST_DATABASE_NAME)
    return await migrate_async(url)


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "perfwatch_test.db"
    return await migrate_async(f"sqlite+aiosqlite:///{path}")


@pytest.fixture(scope="session")
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(postgres_url))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(sqlite_url))
    yield engine
    await engine.dispose()


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def postgres_template(postgres_server: PostgresServer) -> str:
    """A database migrated once per run, which fresh databases are copied from."""
    url = await recreate_database(postgres_server, TEMPLATE_DATABASE_NAME)
    await migrate_async(url)
    return TEMPLATE_DATABASE_NAME


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    await migrate_async(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def fresh_db(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of ``dialect`` that is this test's alone: its writes are real
    commits. A copy of the template migrated once per run (``CREATE DATABASE … TEMPLATE`` on
    PostgreSQL, dropped afterwards; a copied file on SQLite): migrating per test cost more."""
    if dialect == "postgres":
        template = request.getfixturevalue("postgres_template")
        with scratch_postgres(request.getfixturevalue("postgres_server"), template) as url:
            yield url
    else:
        path = tmp_path / "scratch.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def engine(dialect: str, request: pytest.FixtureRequest) -> AsyncEngine:
    return request.getfixturevalue(f"{dialect}_engine")  # type: ignore[no-any-return]


@asynccontextmanager
async def rolled_back_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose commits become savepoints inside one outer transaction, rolled back after."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        test_session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield test_session
        finally:
            await test_session.close()
            await transaction.rollback()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """Parametrized over both dialects."""
    async with rolled_back_session(engine) as test_session:
        yield test_session


@pytest.fixture
async def pg_session(postgres_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """For PostgreSQL-only behaviour (partitions, JSONB, locks)."""
    async with rolled_back_session(postgres_engine) as test_session:
        yield test_session


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Hash at bcrypt's lowest cost in this process: every user a test creates and every login
    pays one hash, hundreds in a run. Hashes still verify across costs; production's cost is
    checked in tests/test_auth_principals.py, and subprocesses (the CLI tests) use it."""
    from perfwatch.users import passwords

    production = passwords._context
    passwords._context = passwords.make_context(rounds=4)
    yield
    passwords._context = production


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def api_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection to the shared test database inside a transaction rolled back after."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def api_settings(request: pytest.FixtureRequest, dialect: str) -> Iterator[Settings]:
    """Settings for the API: PostgreSQL with the real Redis, SQLite with the in-process cache.

    On the shared test database, inside one transaction rolled back after the test (see
    ``tests/api_helpers.py``); on ``fresh_db`` with real commits when the test asks for it."""
    from tests.support.api import OPEN_TRANSACTIONS, api_settings_for

    if "fresh_db" in request.fixturenames:
        yield api_settings_for(request, request.getfixturevalue("fresh_db"), dialect)
        return
    settings = api_settings_for(request, request.getfixturevalue(f"{dialect}_url"), dialect)
    key = str(settings.database_url)
    OPEN_TRANSACTIONS[key] = request.getfixturevalue("api_transaction")
    try:
        yield settings
    finally:
        OPEN_TRANSACTIONS.pop(key, None)
