"""The database session module and engine: units of work that really commit and roll back (on
scratch databases, cleaned up here), opening and closing a database, the request session
dependency, the health probe, SQLite connection settings and the slow-query log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import NullPool

from perfwatch.api.dependencies import get_session
from perfwatch.db.engine import SQLITE_BUSY_TIMEOUT_MS, build_engine
from perfwatch.db.session import (
    Database,
    check_database,
    make_sessionmaker,
    open_database,
    unit_of_work,
)
from perfwatch.errors import ConflictError
from perfwatch.models import User
from perfwatch.users.repository import UserRepository
from tests.support.helpers import (
    closed_postgres_url,
    drop_database,
    make_settings,
    migrate_async,
    recreate_database,
    user_values,
)
from tests.support.services import TEST_DATABASE_NAME, PostgresServer

SCRATCH_DATABASE = f"{TEST_DATABASE_NAME}_scratch"


# ----- scratch databases: committed to for real, emptied after every test ---------------------
@pytest.fixture(scope="module")
async def scratch_postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    url = await recreate_database(postgres_server, SCRATCH_DATABASE)
    yield await migrate_async(url)
    await drop_database(postgres_server, SCRATCH_DATABASE)


@pytest.fixture(scope="module")
async def scratch_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("scratch") / "scratch.db"
    return await migrate_async(f"sqlite+aiosqlite:///{path}")


@pytest.fixture(params=["postgres", "sqlite"])
def scratch_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"scratch_{request.param}_url"))


@pytest.fixture
async def scratch_engine(scratch_url: str) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(scratch_url))
    try:
        yield engine
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM users"))
        await engine.dispose()


async def usernames(engine: AsyncEngine) -> list[str]:
    """What another connection sees, i.e. what was committed."""
    async with engine.connect() as connection:
        result = await connection.execute(select(User.username).order_by(User.username))
        return list(result.scalars())


# ----- unit_of_work ----------------------------------------------------------------------------
async def test_unit_of_work_commits_on_success(scratch_engine: AsyncEngine) -> None:
    sessionmaker = make_sessionmaker(scratch_engine)

    async with unit_of_work(sessionmaker) as session:
        await UserRepository(session).create(**user_values("alice"))
        await UserRepository(session).create(**user_values("bob"))

    assert await usernames(scratch_engine) == ["alice", "bob"]


async def test_unit_of_work_rolls_back_on_error(scratch_engine: AsyncEngine) -> None:
    sessionmaker = make_sessionmaker(scratch_engine)

    with pytest.raises(RuntimeError, match="boom"):
        async with unit_of_work(sessionmaker) as session:
            await UserRepository(session).create(**user_values("alice"))
            raise RuntimeError("boom")

    assert await usernames(scratch_engine) == []


async def test_unit_of_work_rolls_back_everything_after_a_conflict(
    scratch_engine: AsyncEngine,
) -> None:
    sessionmaker = make_sessionmaker(scratch_engine)
    async with unit_of_work(sessionmaker) as session:
        await UserRepository(session).create(**user_values("alice"))

    with pytest.raises(ConflictError):
        async with unit_of_work(sessionmaker) as session:
            users = UserRepository(session)
            await users.create(**user_values("bob"))
            await users.create(**user_values("alice"))

    assert await usernames(scratch_engine) == ["alice"]


async def test_unit_of_work_rolls_back_on_cancellation(scratch_engine: AsyncEngine) -> None:
    sessionmaker = make_sessionmaker(scratch_engine)
    created = asyncio.Event()

    async def work() -> None:
        async with unit_of_work(sessionmaker) as session:
            await UserRepository(session).create(**user_values("alice"))
            created.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await asyncio.wait_for(created.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await usernames(scratch_engine) == []


async def test_a_handled_conflict_inside_a_unit_of_work_keeps_the_rest(
    scratch_engine: AsyncEngine,
) -> None:
    """The savepoint in the repository lets a caller recover from a conflict and still commit."""
    sessionmaker = make_sessionmaker(scratch_engine)
    async with unit_of_work(sessionmaker) as session:
        await UserRepository(session).create(**user_values("alice"))

    async with unit_of_work(sessionmaker) as session:
        users = UserRepository(session)
        await users.create(**user_values("bob"))
        with pytest.raises(ConflictError):
            await users.create(**user_values("alice"))
        await users.create(**user_values("carol"))

    assert await usernames(scratch_engine) == ["alice", "bob", "carol"]


async def test_objects_stay_readable_after_the_commit(scratch_engine: AsyncEngine) -> None:
    # expire_on_commit=False: reading an attribute after commit must not lazy-load.
    async with unit_of_work(make_sessionmaker(scratch_engine)) as session:
        user = await UserRepository(session).create(**user_values("alice"))

    assert user.username == "alice"
    assert user.created_at.tzinfo is not None


async def test_sessionmaker_does_not_autoflush(scratch_engine: AsyncEngine) -> None:
    async with unit_of_work(make_sessionmaker(scratch_engine)) as session:
        session.add(User(**user_values("alice")))
        count = await session.scalar(select(func.count()).select_from(User))
        assert count == 0, "nothing is flushed before the repository asks"
        await session.flush()
        assert await session.scalar(select(func.count()).select_from(User)) == 1

    assert await usernames(scratch_engine) == ["alice"]


# ----- open_database / the request dependency ---------------------------------------------
async def test_open_database_disposes_its_engine(scratch_sqlite_url: str) -> None:
    async with open_database(make_settings(scratch_sqlite_url)) as database:
        assert str(database.engine.url) == scratch_sqlite_url
        async with unit_of_work(database.sessionmaker) as session:
            assert session.bind is database.engine
            assert await session.scalar(text("SELECT 1")) == 1
        pool = database.engine.sync_engine.pool
        assert pool.checkedin() >= 1
    # Disposed: the pool was replaced by an empty one.
    assert database.engine.sync_engine.pool is not pool


async def test_database_logs_the_url_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="perfwatch.db")

    database = Database.connect(
        make_settings("postgresql://perfwatch:s3cr3t-pw@db.invalid:5432/perfwatch")
    )
    await database.close()

    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "db.invalid" in logged
    assert "s3cr3t-pw" not in logged


def request_on(database: Database) -> Request:
    """A bare request of an app whose lifespan put ``database`` on its state."""
    app = FastAPI()
    app.state.database = database
    return Request({"type": "http", "app": app})


async def test_get_session_commits_when_the_request_succeeds(scratch_engine: AsyncEngine) -> None:
    dependency = get_session(
        request_on(Database(scratch_engine, make_sessionmaker(scratch_engine)))
    )

    session = await anext(dependency)
    assert isinstance(session, AsyncSession)
    await UserRepository(session).create(**user_values("alice"))
    with pytest.raises(StopAsyncIteration):
        await anext(dependency)

    assert await usernames(scratch_engine) == ["alice"]


async def test_get_session_rolls_back_when_the_request_fails(scratch_engine: AsyncEngine) -> None:
    dependency = get_session(
        request_on(Database(scratch_engine, make_sessionmaker(scratch_engine)))
    )

    session = await anext(dependency)
    await UserRepository(session).create(**user_values("alice"))
    with pytest.raises(ValueError, match="handler failed"):
        await dependency.athrow(ValueError("handler failed"))

    assert await usernames(scratch_engine) == []


async def test_each_request_gets_its_own_session(scratch_engine: AsyncEngine) -> None:
    request = request_on(Database(scratch_engine, make_sessionmaker(scratch_engine)))
    first, second = get_session(request), get_session(request)

    try:
        assert await anext(first) is not await anext(second)
    finally:
        await first.aclose()
        await second.aclose()


# ----- check_database ------------------------------------------------------------------------
async def test_check_database_is_none_when_healthy(engine: AsyncEngine) -> None:
    assert await check_database(engine) is None


async def test_check_database_reports_a_closed_port_quickly() -> None:
    engine = build_engine(make_settings(closed_postgres_url(password="s3cr3t-pw")))
    try:
        started = time.monotonic()
        reason = await check_database(engine, timeout=3)
        elapsed = time.monotonic() - started
    finally:
        await engine.dispose()

    assert reason is not None
    assert reason.startswith("database unreachable:")
    assert "s3cr3t-pw" not in reason
    assert len(reason) <= 300
    assert elapsed < 3


async def test_check_database_gives_up_after_its_timeout() -> None:
    """A server that accepts connections and never answers must not hang the probe."""
    accepted: list[asyncio.StreamWriter] = []

    async def black_hole(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = build_engine(make_settings(f"postgresql://perfwatch@127.0.0.1:{port}/perfwatch"))
    try:
        started = time.monotonic()
        reason = await check_database(engine, timeout=0.5)
        elapsed = time.monotonic() - started
    finally:
        await engine.dispose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()

    assert reason == "database did not answer within 0.5 s"
    assert 0.4 < elapsed < 3
    assert accepted, "the probe did reach the server"


async def test_check_database_reports_a_missing_database(
    postgres_server: PostgresServer,
) -> None:
    engine = build_engine(make_settings(postgres_server.url_for(f"{TEST_DATABASE_NAME}_missing")))
    try:
        reason = await check_database(engine, timeout=5)
    finally:
        await engine.dispose()

    assert reason is not None
    assert "does not exist" in reason


# ----- engine settings -------------------------------------------------------------------------
async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    sqlite_engine: AsyncEngine,
) -> None:
    async with sqlite_engine.connect() as connection:
        journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        busy = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
        synchronous = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar_one()

    assert journal == "wal"
    assert foreign_keys == 1
    assert busy == SQLITE_BUSY_TIMEOUT_MS
    assert synchronous == 1  # NORMAL


async def test_sqlite_savepoints_roll_back_only_their_part(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.connect() as connection:
        outer = await connection.begin()
        await connection.execute(text("INSERT INTO config_entries (key, value) VALUES ('a', '1')"))
        nested = await connection.begin_nested()
        await connection.execute(text("INSERT INTO config_entries (key, value) VALUES ('b', '2')"))
        await nested.rollback()
        keys = (await connection.execute(text("SELECT key FROM config_entries"))).scalars().all()
        await outer.rollback()
        left = (await connection.execute(text("SELECT count(*) FROM config_entries"))).scalar()

    assert keys == ["a"]
    assert left == 0


async def test_sqlite_readers_are_not_blocked_by_a_writer(tmp_path: Path) -> None:
    engine = build_engine(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}"))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as writer, engine.connect() as reader:
            await writer.begin()
            await writer.execute(text("INSERT INTO t VALUES (2)"))
            started = time.monotonic()
            seen = (await reader.execute(text("SELECT count(*) FROM t"))).scalar()
            assert time.monotonic() - started < 1
            await writer.commit()
    finally:
        await engine.dispose()

    assert seen == 1, "the reader sees the last committed state"


async def test_sqlite_file_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "perfwatch.db"
    engine = build_engine(make_settings(f"sqlite+aiosqlite:///{path}"))
    try:
        assert path.parent.is_dir()
        assert await check_database(engine) is None
    finally:
        await engine.dispose()

    assert path.is_file()


async def test_postgres_sessions_run_in_utc_with_a_statement_timeout(
    postgres_url: str,
) -> None:
    engine = build_engine(make_settings(postgres_url, db_statement_timeout_ms=200))
    try:
        async with engine.connect() as connection:
            zone = (await connection.exec_driver_sql("SHOW timezone")).scalar_one()
            name = (await connection.exec_driver_sql("SHOW application_name")).scalar_one()
            limit = (await connection.exec_driver_sql("SHOW statement_timeout")).scalar_one()
            with pytest.raises(DBAPIError, match="statement timeout"):
                await connection.exec_driver_sql("SELECT pg_sleep(2)")
    finally:
        await engine.dispose()

    assert (zone, name, limit) == ("UTC", "perfwatch", "200ms")


async def test_null_pool_for_one_shot_tools(postgres_url: str, sqlite_url: str) -> None:
    for url in (postgres_url, sqlite_url):
        engine = build_engine(make_settings(url), null_pool=True)
        try:
            assert isinstance(engine.pool, NullPool)
            assert await check_database(engine) is None
        finally:
            await engine.dispose()


async def test_postgres_pool_follows_the_settings(postgres_url: str) -> None:
    engine = build_engine(make_settings(postgres_url, db_pool_size=3, db_max_overflow=2))
    try:
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 2  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_postgres_pool_counts_the_wait_for_a_connection(postgres_url: str) -> None:
    engine = build_engine(make_settings(postgres_url, db_pool_size=1, db_max_overflow=0))
    stats = engine.pool.wait_stats  # type: ignore[attr-defined]
    try:
        async with engine.connect() as first:
            await first.execute(text("SELECT 1"))

            async def second() -> None:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))

            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the only connection is held by `first`
        await waiting
        # Two checkouts; the second waited for the first to be returned.
        assert stats.checkouts == 2
        assert stats.max_wait_seconds >= 0.25
        assert stats.wait_seconds >= stats.max_wait_seconds
    finally:
        await engine.dispose()


# ----- slow-query log -------------------------------------------------------------------------
def slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "perfwatch.db.slow"]


async def run(url: str, statement: str, **settings: float) -> None:
    engine = build_engine(make_settings(url, **settings))
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def test_slow_query_is_logged(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="perfwatch.db.slow")

    await run(postgres_url, "SELECT   pg_sleep(0.05)", slow_query_ms=10)

    [record] = [r for r in slow_records(caplog) if "pg_sleep" in r.getMessage()]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("slow query (")
    assert "SELECT pg_sleep(0.05)" in message, "whitespace is collapsed"
    elapsed_ms = float(message.split("(")[1].split(" ms")[0])
    assert elapsed_ms >= 50


async def test_fast_query_is_not_logged(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="perfwatch.db.slow")

    await run(postgres_url, "SELECT pg_sleep(0.01)", slow_query_ms=5_000)

    assert slow_records(caplog) == []


async def test_slow_query_log_can_be_switched_off(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="perfwatch.db.slow")

    await run(postgres_url, "SELECT pg_sleep(0.05)", slow_query_ms=0)

    assert slow_records(caplog) == []


async def test_slow_query_log_works_on_sqlite(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="perfwatch.db.slow")

    await run(sqlite_url, "SELECT count(*) FROM users", slow_query_ms=0.000001)

    assert any("FROM users" in record.getMessage() for record in slow_records(caplog))


async def test_a_slow_query_that_fails_is_logged_too(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The slowest statements are the ones statement_timeout cancels: they must show up."""
    caplog.set_level(logging.WARNING, logger="perfwatch.db.slow")

    with pytest.raises(DBAPIError, match="statement timeout"):
        await run(postgres_url, "SELECT pg_sleep(1)", slow_query_ms=50, db_statement_timeout_ms=100)

    assert any("pg_sleep(1)" in record.getMessage() for record in slow_records(caplog))


async def test_timers_of_failed_statements_do_not_pile_up(postgres_url: str) -> None:
    engine = build_engine(make_settings(postgres_url, slow_query_ms=10_000))
    try:
        async with engine.connect() as connection:
            for _ in range(5):
                with pytest.raises(DBAPIError):
                    await connection.exec_driver_sql("SELECT 1/0")
                await connection.rollback()
            await connection.exec_driver_sql("SELECT 1")
            info = (await connection.get_raw_connection()).info  # the pooled connection's info
            timers = [value for key, value in info.items() if "perfwatch" in str(key)]
    finally:
        await engine.dispose()

    assert all(not value for value in timers), f"timers left behind: {timers}"
