"""``perfwatch db``: schema migrations through Alembic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from alembic import command as alembic_command

from perfwatch.cli.common import fail, settings
from perfwatch.config import Environment
from perfwatch.db import migrations

db_app = typer.Typer(help="Schema migrations (Alembic).", no_args_is_help=True)


def alembic(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        action(migrations.alembic_config(settings(), configure_logging=True), *args, **kwargs)
    except FileNotFoundError as exc:
        fail(str(exc))
    except Exception as exc:
        if type(exc).__module__.startswith(
            ("sqlalchemy", "asyncpg", "alembic", "sqlite3")
        ) or isinstance(exc, OSError):
            fail(f"migration failed: {exc}".splitlines()[0])
        raise


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    alembic(alembic_command.upgrade, revision)


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("-1")) -> None:
    """Revert migrations down to REVISION.

    The default is one step back; 'base' reverts them all."""
    alembic(alembic_command.downgrade, revision)


@db_app.command("current")
def db_current() -> None:
    """Show the revision the database is at."""
    alembic(alembic_command.current, verbose=False)


@db_app.command("history")
def db_history() -> None:
    """List all revisions."""
    alembic(alembic_command.history, verbose=False)


@db_app.command("reset")
def db_reset(yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Drop everything and migrate again (development only)."""
    current = settings()
    if current.environment is not Environment.DEVELOPMENT:
        fail(f"db reset is refused when ENVIRONMENT={current.environment.value}")
    if not yes:
        typer.confirm(f"Erase ALL data in {current.safe_database_url()}?", abort=True)
    alembic(alembic_command.downgrade, "base")
    alembic(alembic_command.upgrade, "head")
    typer.echo("database reset to an empty schema at head")
