"""``perfwatch config``: runtime configuration entries, checked as the API checks them."""

from __future__ import annotations

import json
from typing import Any

import typer

from perfwatch.cli.common import fail, run
from perfwatch.config_store.repository import ConfigRepository
from perfwatch.config_store.service import ConfigService
from perfwatch.config_store.validation import validate_value
from perfwatch.db.session import Database, unit_of_work
from perfwatch.errors import PerfWatchError

config_app = typer.Typer(help="Runtime configuration entries.", no_args_is_help=True)


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

    for name, value in run(work).items():
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
        fail(str(exc))

    async def work(database: Database) -> Any:
        async with unit_of_work(database.sessionmaker) as session:
            entry = await ConfigService(session).set_entry(
                key, parsed, updated_by="cli", allow_unknown=True
            )
            return entry.value

    stored = run(work)
    typer.echo(f"{key} = {json.dumps(stored)}")
