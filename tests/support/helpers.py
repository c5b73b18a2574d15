"""Plain helpers shared by several test modules: settings, databases (scratch PostgreSQL databases,
raw queries on either dialect, migrations) and the ``perfwatch`` command run as a subprocess.

Fixtures live in ``conftest.py``; the services themselves (PostgreSQL, Redis) in ``services.py``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from perfwatch.config import Settings
from perfwatch.db import migrations
from tests.support.services import TEST_DATABASE_NAME, PostgresServer, free_port, unavailable

T = TypeVar("T")

BIN_DIR = Path(sys.executable).parent
# Every settings variable, so a subprocess sees only what a test gives it.
SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields) | {
    "PERFWATCH_NEW_PASSWORD",
    "PERFWATCH_ALEMBIC_INI",
}


# ----- settings ---------------------------------------------------------------------------------


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings for ``database_url``; ``overrides`` may replace any value, the secret too."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "environment": "test",
        "secret_key": "t" * 40,
        # Tests that need the sampler start it themselves; an app under test must not sample.
        "run_sampler": False,
        # Likewise the maintenance runner: tests of it build their own (tests/retention/).
        "run_maintenance": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def user_values(username: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``UserRepository.create``: a user with a derived email address."""
    values: dict[str, Any] = {
        "username": username,
        "email": f"{username}@example.com",
        "password_hash": "not-a-real-hash",
    }
    values.update(overrides)
    return values


# ----- threads and closed ports -------------------------------------------------------------------


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Call ``function`` in a worker thread and wait for it (for code that calls asyncio.run)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop in a worker thread (safe from sync tests)."""
    return in_thread(asyncio.run, coro)


def closed_postgres_url(password: str = "s3cret") -> str:
    """A PostgreSQL URL on a local port nothing listens on, as user ``perfwatch`` with
    ``password`` (tests check that it never shows up in an error)."""
    return f"postgresql://perfwatch:{password}@127.0.0.1:{free_port()}/perfwatch"


def closed_redis_url() -> str:
    """A Redis URL on a local port nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


# ----- databases ----------------------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    """``url`` (any PostgreSQL driver spelling) as a DSN asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def pg_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw asyncpg connection to ``url``, closed afterwards."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        yield connection
    finally:
        await connection.close()


async def pg_fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async with pg_connection(url) as connection:
        return list(await connection.fetch(query, *args))


def sqlite_fetch(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    path = make_url(url).database
    assert path, url
    with sqlite3.connect(path) as connection:
        return list(connection.execute(query, args))


def fetch(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``query`` (``$1``-style parameters on PostgreSQL, ``?`` on SQLite)."""
    if make_url(url).get_backend_name() == "postgresql":
        return [tuple(row) for row in run_async(pg_fetch(url, query, *args))]
    return sqlite_fetch(url, query, *args)


async def recreate_database(server: PostgresServer, name: str, template: str | None = None) -> str:
    """Drop and create database ``name`` on ``server`` (a copy of ``template`` if given);
    return its SQLAlchemy URL."""
    if server.problem:
        unavailable(server.problem)
    copy = f' TEMPLATE "{template}"' if template else ""
    async with pg_connection(server.admin_url) as connection:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    return server.url_for(name)


async def drop_database(server: PostgresServer, name: str) -> None:
    async with pg_connection(server.admin_url) as connection:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_postgres(server: PostgresServer, template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database of its own (empty, or a copy of ``template``), dropped afterwards."""
    name = f"{TEST_DATABASE_NAME}_{uuid.uuid4().hex[:12]}"
    url = run_async(recreate_database(server, name, template))
    try:
        yield url
    finally:
        run_async(drop_database(server, name))


@contextmanager
def empty_database(dialect: str, request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """An empty database of ``dialect``: a scratch PostgreSQL database or a new SQLite file."""
    if dialect == "postgres":
        with scratch_postgres(request.getfixturevalue("postgres_server")) as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{directory / 'scratch.db'}"


def migrate(url: str, revision: str = "head") -> str:
    """Upgrade ``url`` to ``revision`` in-process (in a worker thread: Alembic calls
    asyncio.run)."""
    in_thread(migrations.upgrade, revision, make_settings(url))
    return url


def migrate_down(url: str, revision: str) -> str:
    """Downgrade ``url`` to ``revision`` in-process, like ``migrate``."""
    in_thread(migrations.downgrade, revision, make_settings(url))
    return url


async def migrate_async(url: str) -> str:
    """``migrate`` for async code: the event loop keeps running meanwhile."""
    await asyncio.to_thread(migrations.upgrade, "head", make_settings(url))
    return url


# ----- subprocesses -------------------------------------------------------------------------------


def subprocess_env(database_url: str | None, data_dir: Path, **variables: str) -> dict[str, str]:
    """The current environment without any PerfWatch settings, plus exactly the ones given."""
    env = {
        name: value for name, value in os.environ.items() if name.upper() not in SETTINGS_VARIABLES
    }
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    env["PERFWATCH_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(variables)
    return env


def perfwatch(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    input: str | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``perfwatch`` command (``input``, if given, is its standard input)."""
    return subprocess.run(
        [str(BIN_DIR / "perfwatch"), *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_concurrently(
    argv: Sequence[str], copies: int, *, env: dict[str, str], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Start ``copies`` processes of ``argv`` at once and wait for them all."""
    processes = [
        subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(copies)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    return results
