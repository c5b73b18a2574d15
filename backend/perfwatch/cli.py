"""The ``perfwatch`` command line. Each command is a thin shell over services and repositories."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from alembic import command as alembic_command

from perfwatch.auth.revocation import revoke_tokens_issued_before
from perfwatch.bootstrap.init import InitReport, initialise
from perfwatch.bootstrap.seed import MAX_SEED_DAYS, plan_seed, seed_history
from perfwatch.cache import build_cache, check_cache
from perfwatch.config import Environment, Settings, SettingsError, get_settings
from perfwatch.config_store.repository import ConfigRepository
from perfwatch.config_store.service import ConfigService
from perfwatch.config_store.validation import validate_value
from perfwatch.db import migrations
from perfwatch.db.session import Database, check_database, open_database, unit_of_work
from perfwatch.errors import PerfWatchError, ServiceUnavailableError
from perfwatch.models import UserRole
from perfwatch.users.service import UserService

T = TypeVar("T")

app = typer.Typer(help="PerfWatch: self-hosted system-performance monitor.", no_args_is_help=True)
db_app = typer.Typer(help="Schema migrations (Alembic).", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
config_app = typer.Typer(help="Runtime configuration entries.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(config_app, name="config")


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _run(work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` with the database open, turning known failures into one-line errors."""

    async def wrapper() -> T:
        async with open_database(_settings()) as database:
            return await work(database)

    try:
        return asyncio.run(wrapper())
    except PerfWatchError as exc:
        _fail(str(exc))
    except (OSError, ConnectionError) as exc:
        _fail(f"cannot reach the database at {_settings().safe_database_url()}: {exc}")
    except Exception as exc:  # driver errors: say what failed without a traceback
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "sqlite3")):
            _fail(f"database error: {exc}".splitlines()[0])
        raise


# ----- db -------------------------------------------------------------------------------


def _alembic(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        action(migrations.alembic_config(_settings(), configure_logging=True), *args, **kwargs)
    except FileNotFoundError as exc:
        _fail(str(exc))
    except Exception as exc:
        if type(exc).__module__.startswith(
            ("sqlalchemy", "asyncpg", "alembic", "sqlite3")
        ) or isinstance(exc, OSError):
            _fail(f"migration failed: {exc}".splitlines()[0])
        raise


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    _alembic(alembic_command.upgrade, revision)


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("-1")) -> None:
    """Revert migrations down to REVISION (default: one step; 'base' for all)."""
    _alembic(alembic_command.downgrade, revision)


@db_app.command("current")
def db_current() -> None:
    """Show the revision the database is at."""
    _alembic(alembic_command.current, verbose=False)


@db_app.command("history")
def db_history() -> None:
    """List all revisions."""
    _alembic(alembic_command.history, verbose=False)


@db_app.command("reset")
def db_reset(yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Drop everything and migrate again (development only)."""
    settings = _settings()
    if settings.environment is not Environment.DEVELOPMENT:
        _fail(f"db reset is refused when ENVIRONMENT={settings.environment.value}")
    if not yes:
        typer.confirm(f"Erase ALL data in {settings.safe_database_url()}?", abort=True)
    _alembic(alembic_command.downgrade, "base")
    _alembic(alembic_command.upgrade, "head")
    typer.echo("database reset to an empty schema at head")


# ----- init / seed -------------------------------------------------------------------------


def _print_report(report: InitReport) -> None:
    for item in report.created:
        typer.echo(f"created  {item}")
    for item in report.skipped:
        typer.echo(f"skipped  {item}")
    if report.generated_admin_password:
        settings = get_settings()
        typer.secho(
            f"\nGenerated password for {settings.admin_username!r} (shown once, store it now): "
            f"{report.generated_admin_password}\n",
            fg=typer.colors.YELLOW,
        )


@app.command("init")
def init() -> None:
    """Create the admin user, default config values and archive policies if missing."""
    settings = _settings()

    async def work(database: Database) -> InitReport:
        async with unit_of_work(database.sessionmaker) as session:
            return await initialise(session, settings)

    _print_report(_run(work))


@app.command("seed")
def seed(
    days: float = typer.Option(
        1.0, min=0.001, max=MAX_SEED_DAYS, help="Days of history to generate."
    ),
    interval: int = typer.Option(60, min=1, max=86_400, help="Seconds between points."),
    host: str | None = typer.Option(None, help="Host name to record (default: <hostname>-demo)."),
) -> None:
    """Generate demo history for every metric type (idempotent)."""
    plan = plan_seed(days=days, interval_seconds=interval, host=host)
    typer.echo(
        f"seeding {plan.total_rows:,} snapshots for {plan.host} ({plan.start:%Y-%m-%d %H:%M} → "
        f"{plan.end:%Y-%m-%d %H:%M} UTC, every {interval} s)"
    )
    with typer.progressbar(length=plan.total_rows, label="snapshots") as bar:
        inserted = _run(
            lambda database: seed_history(plan, database.sessionmaker, on_progress=bar.update)
        )
    typer.echo(
        f"inserted {inserted:,} new snapshots ({plan.total_rows - inserted:,} already present)"
    )


# ----- users ---------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    username: str,
    role: UserRole = typer.Option(UserRole.VIEWER, case_sensitive=False),
    email: str | None = typer.Option(None),
    full_name: str | None = typer.Option(None, "--full-name"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="PERFWATCH_NEW_PASSWORD"
    ),
) -> None:
    """Create a user (the password is asked for, or read from PERFWATCH_NEW_PASSWORD)."""

    async def work(database: Database) -> str:
        async with unit_of_work(database.sessionmaker) as session:
            user = await UserService(session).create_user(
                username=username, password=password, role=role, email=email, full_name=full_name
            )
            return f"created user {user.username!r} ({user.role.value})"

    typer.echo(_run(work))


@user_app.command("list")
def user_list(limit: int = typer.Option(100, min=1, max=1000)) -> None:
    """List users."""

    async def work(database: Database) -> list[str]:
        async with unit_of_work(database.sessionmaker) as session:
            page = await UserService(session).list_users(limit=limit)
        lines = [f"{'USERNAME':<24} {'ROLE':<8} {'ACTIVE':<7} {'LAST LOGIN'}"]
        for user in page.items:
            last = (
                user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
            )
            lines.append(
                f"{user.username:<24} {user.role.value:<8} {str(user.is_active).lower():<7} {last}"
            )
        lines.append(f"({page.total} user(s))")
        return lines

    typer.echo("\n".join(_run(work)))


@user_app.command("set-password")
def user_set_password(
    username: str,
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="PERFWATCH_NEW_PASSWORD"
    ),
    keep_sessions: bool = typer.Option(
        False,
        "--keep-sessions",
        help="Do not sign the user out (when Redis is away and the password must change anyway).",
    ),
) -> None:
    """Set a user's password and sign out every session of that user."""
    settings = _settings()
    revoke = bool(settings.redis_url) and not keep_sessions

    async def work(database: Database) -> None:
        cache = build_cache(settings)
        try:
            async with unit_of_work(database.sessionmaker) as session:
                user = await UserService(session).set_password(username, password)
                if revoke:
                    # Before the commit: with Redis away this fails and the password stays.
                    try:
                        await revoke_tokens_issued_before(cache, settings, user.id)
                    except ServiceUnavailableError as exc:
                        raise ServiceUnavailableError(
                            f"{exc.message}; --keep-sessions changes the password without "
                            "signing the user out"
                        ) from exc
        finally:
            await cache.close()

    _run(work)
    typer.echo(f"password updated for {username!r}")
    if revoke:
        typer.echo("every token issued to this user before now is revoked")
    elif not settings.redis_url:
        # The embedded cache lives inside the server process: this process cannot reach it.
        typer.echo(
            "note: without REDIS_URL the running server cannot be told; tokens already issued "
            f"stay valid until they expire (refresh tokens: {settings.refresh_token_days:g} days); "
            "changing SECRET_KEY signs everybody out"
        )


# ----- config --------------------------------------------------------------------------------


@config_app.command("get")
def config_get(key: str | None = typer.Argument(None, help="Omit to list every entry.")) -> None:
    """Show one configuration entry, or all of them."""

    async def work(database: Database) -> dict[str, Any]:
        async with unit_of_work(database.sessionmaker) as session:
            repository = ConfigRepository(session)
            if key is None:
                return await repository.as_dict()
            entry = await repository.get(key)
            if entry is None:
                raise PerfWatchError(f"no config entry {key!r} (see `perfwatch config get`)")
            return {entry.key: entry.value}

    for name, value in _run(work).items():
        typer.echo(f"{name} = {json.dumps(value)}")


@config_app.command("set")
def config_set(
    key: str, value: str = typer.Argument(..., help="A JSON value; bare words are strings.")
) -> None:
    """Set a configuration entry. Known keys are checked as the API checks them; other keys are
    stored as given."""
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    try:
        parsed = validate_value(key, parsed)  # before touching the database
    except PerfWatchError as exc:
        _fail(str(exc))

    async def work(database: Database) -> Any:
        async with unit_of_work(database.sessionmaker) as session:
            entry = await ConfigService(session).set_entry(
                key, parsed, updated_by="cli", allow_unknown=True
            )
            return entry.value

    stored = _run(work)
    typer.echo(f"{key} = {json.dumps(stored)}")


# ----- check / serve ---------------------------------------------------------------------------


@app.command("check")
def check() -> None:
    """Reach the database and the cache (Redis); say which one fails."""
    settings = _settings()

    async def work(database: Database) -> list[tuple[str, str | None]]:
        engine = database.engine
        cache = build_cache(settings)
        try:
            return [
                (
                    f"database {settings.safe_database_url()}",
                    await check_database(engine, timeout=5),
                ),
                (f"cache {cache.name}", await check_cache(cache, timeout=5)),
            ]
        finally:
            await cache.close()

    results = _run(work)
    for name, problem in results:
        if problem is None:
            typer.secho(f"ok    {name}", fg=typer.colors.GREEN)
        else:
            typer.secho(f"FAIL  {name}: {problem}", fg=typer.colors.RED)
    if any(problem for _, problem in results):
        raise typer.Exit(1)


@app.command("wait")
def wait(
    timeout: float = typer.Option(60.0, min=1, help="Give up after this many seconds."),
) -> None:
    """Wait until the database and the cache answer (container start-up); exit 1 on timeout."""
    settings = _settings()

    async def work(database: Database) -> list[str]:
        engine = database.engine
        cache = build_cache(settings)
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

    problems = _run(work)
    if problems:
        _fail(f"gave up after {timeout:g} s; unreachable: {'; '.join(problems)}")
    typer.echo("database and cache are reachable")


@app.command("sampler")
def sampler_command() -> None:
    """Run the sampler alone (no API): until SIGTERM/SIGINT, then flush the batch and spool."""
    from perfwatch.cache import build_cache as make_cache
    from perfwatch.sampler.runner import SPOOL_FILE, Sampler

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def work(database: Database) -> None:
        cache = make_cache(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        sampler = Sampler(
            sessionmaker=database.sessionmaker,
            cache=cache,
            spool_path=settings.perfwatch_data_dir / SPOOL_FILE,
            spool_max_rows=settings.sampler_spool_max_rows,
        )
        try:
            await sampler.run(stop)
        finally:
            await cache.close()
        typer.echo(f"sampler stopped: {json.dumps(sampler.status())}")

    _run(work)


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535),
    migrate: bool = typer.Option(True, help="Apply migrations and init before serving."),
    sampler: bool = typer.Option(True, help="Run the sampler in this process (off: API only)."),
) -> None:
    """Migrate, initialise and serve the API with uvicorn (and, by default, the sampler)."""
    import uvicorn

    if not sampler:
        os.environ["RUN_SAMPLER"] = "0"  # read by the app's settings inside uvicorn
        get_settings.cache_clear()
    settings = _settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if migrate:
        _alembic(alembic_command.upgrade, "head")
        init()
    typer.echo(
        f"serving PerfWatch on http://{host}:{port} (database: {settings.safe_database_url()})"
    )
    uvicorn.run(
        "perfwatch.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
    )


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
