"""The long-running and start-up commands: ``check``, ``wait``, ``sampler``, ``serve``."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import typer
from alembic import command as alembic_command

from perfwatch.cache import build_cache, check_cache
from perfwatch.cli.bootstrap import init
from perfwatch.cli.common import configure_logging, fail, run, settings
from perfwatch.cli.db import alembic
from perfwatch.config import get_settings
from perfwatch.db.session import Database, check_database
from perfwatch.retention.jobs import start_maintenance


def check() -> None:
    """Reach the database and the cache (Redis); say which one fails."""
    current = settings()

    async def work(database: Database) -> list[tuple[str, str | None]]:
        engine = database.engine
        cache = build_cache(current)
        try:
            return [
                (
                    f"database {current.safe_database_url()}",
                    await check_database(engine, timeout=5),
                ),
                (f"cache {cache.name}", await check_cache(cache, timeout=5)),
            ]
        finally:
            await cache.close()

    results = run(work)
    for name, problem in results:
        if problem is None:
            typer.secho(f"ok    {name}", fg=typer.colors.GREEN)
        else:
            typer.secho(f"FAIL  {name}: {problem}", fg=typer.colors.RED)
    if any(problem for _, problem in results):
        raise typer.Exit(1)


def wait(
    timeout: float = typer.Option(60.0, min=1, help="Give up after this many seconds."),
) -> None:
    """Wait until the database and the cache answer.

    For container start-up: probe both, backing off, and exit 1 after --timeout seconds."""
    current = settings()

    async def work(database: Database) -> list[str]:
        engine = database.engine
        cache = build_cache(current)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.5
        try:
            while True:
                probes = {
                    "database": await check_database(engine, timeout=3),
                    cache.name: await check_cache(cache, timeout=3),
                }
                problems = [f"{name} ({reason})" for name, reason in probes.items() if reason]
                if not problems or loop.time() + delay > deadline:
                    return problems
                typer.echo(f"waiting {delay:.1f} s for: {'; '.join(problems)}", err=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)  # back off, but keep probing often enough
        finally:
            await cache.close()

    problems = run(work)
    if problems:
        fail(f"gave up after {timeout:g} s; unreachable: {'; '.join(problems)}")
    typer.echo("database and cache are reachable")


def sampler_command() -> None:
    """Run the sampler alone, without the API, and the maintenance jobs.

    Until SIGTERM/SIGINT, then flush the batch (to the spool if the database is away).
    RUN_MAINTENANCE=false leaves the maintenance jobs to another process."""
    # Imported here: the collectors (psutil) are not needed by the other commands.
    from perfwatch.sampler.factory import build_sampler

    current = settings()
    configure_logging(current)

    async def work(database: Database) -> None:
        cache = build_cache(current)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        sampler = build_sampler(current, database.sessionmaker, cache)
        maintenance = start_maintenance(database, current)
        try:
            await sampler.run(stop)
        finally:
            if maintenance is not None:
                await maintenance.stop()
            await cache.close()
        typer.echo(f"sampler stopped: {json.dumps(sampler.status())}")

    run(work)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535),
    migrate: bool = typer.Option(True, help="Apply migrations and init before serving."),
    sampler: bool = typer.Option(True, help="Run the sampler in this process (off: API only)."),
) -> None:
    """Serve the API (and, by default, the sampler) with uvicorn.

    Migrates and runs init first unless --no-migrate."""
    import uvicorn

    if not sampler:
        os.environ["RUN_SAMPLER"] = "0"  # read by the app's settings inside uvicorn
        get_settings.cache_clear()
    current = settings()
    configure_logging(current)
    if migrate:
        alembic(alembic_command.upgrade, "head")
        init()
    typer.echo(
        f"serving PerfWatch on http://{host}:{port} (database: {current.safe_database_url()})"
    )
    uvicorn.run(
        "perfwatch.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=current.log_level.lower(),
    )
