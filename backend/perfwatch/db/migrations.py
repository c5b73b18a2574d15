"""Run Alembic programmatically (CLI, ``perfwatch serve``, tests), and how autogenerate writes
column types into a new revision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from perfwatch.config import Settings, get_settings


def find_alembic_ini() -> Path:
    """``$PERFWATCH_ALEMBIC_INI``, else ``./alembic.ini``, else the one beside the package."""
    candidates = [
        os.environ.get("PERFWATCH_ALEMBIC_INI"),
        Path.cwd() / "alembic.ini",
        Path(__file__).resolve().parents[2] / "alembic.ini",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "alembic.ini not found: run from backend/ or set PERFWATCH_ALEMBIC_INI to its path"
    )


def alembic_config(settings: Settings | None = None, *, configure_logging: bool = False) -> Config:
    """An Alembic config whose env.py reads the URL from ``settings`` (default: the environment)."""
    config = Config(str(find_alembic_ini()))
    config.attributes["configure_logging"] = configure_logging
    if settings is not None:
        config.attributes["settings"] = settings
    return config


def upgrade(revision: str = "head", settings: Settings | None = None) -> None:
    command.upgrade(alembic_config(settings or get_settings()), revision)


def downgrade(revision: str, settings: Settings | None = None) -> None:
    command.downgrade(alembic_config(settings or get_settings()), revision)


async def schema_problem(engine: AsyncEngine) -> str | None:
    """Why the database is not at the revision this code needs, with what to do; None when it is.

    Commands that write data check this first: on an unmigrated database they would otherwise
    fail on the first missing table, with a driver message that does not say what to run."""
    async with engine.connect() as connection:
        current = set(
            await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
        )
    if not current:
        return "the database has no schema yet: run `perfwatch db upgrade` first"
    try:
        script = ScriptDirectory.from_config(alembic_config())
    except FileNotFoundError:
        return None  # without the migrations at hand, "migrated at all" is all that can be told
    heads = set(script.get_heads())
    if current == heads:
        return None
    at, needed = ", ".join(sorted(current)), ", ".join(sorted(heads))
    if current - {revision.revision for revision in script.walk_revisions()}:
        return (
            f"the database is at revision {at}, newer than this PerfWatch knows (its newest is "
            f"{needed}): run the PerfWatch version that migrated it, or a newer one"
        )
    return f"the database is at revision {at}, not {needed}: run `perfwatch db upgrade` first"


def render_frozen_type(
    type_: str, obj: Any, autogen_context: AutogenContext
) -> str | Literal[False]:
    """Autogenerate's ``render_item``: an application column type (``perfwatch.db.types``) is
    written as the plain SQLAlchemy type of its DDL (``sa.DateTime(timezone=True)`` for
    ``UTCDateTime``).

    A revision must never import perfwatch: it would change what an old revision creates
    whenever the application's types change. Everything else renders as Alembic does.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl_instance
        if type(impl).__module__.startswith("sqlalchemy.sql."):
            return f"sa.{impl!r}"
    return False
