"""What every command shares: settings, the one-line error, running async work on the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from perfwatch.config import Settings, SettingsError, get_settings
from perfwatch.db.migrations import schema_problem
from perfwatch.db.session import Database, open_database
from perfwatch.errors import PerfWatchError

T = TypeVar("T")


def settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        fail(str(exc))


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run(work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` with the database open, turning known failures into one-line errors."""

    async def wrapper() -> T:
        async with open_database(settings()) as database:
            return await work(database)

    try:
        return asyncio.run(wrapper())
    except PerfWatchError as exc:
        fail(str(exc))
    except (OSError, ConnectionError) as exc:
        fail(f"cannot reach the database at {settings().safe_database_url()}: {exc}")
    except Exception as exc:  # driver errors: say what failed without a traceback
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "sqlite3")):
            fail(f"database error: {exc}".splitlines()[0])
        raise


async def require_schema_at_head(database: Database) -> None:
    """Refuse, naming the fix, to write into a database that is not migrated to head."""
    problem = await schema_problem(database.engine)
    if problem is not None:
        raise PerfWatchError(problem)


def configure_logging(current: Settings) -> None:
    """Log lines for the long-running commands (the server, the sampler)."""
    logging.basicConfig(
        level=current.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
