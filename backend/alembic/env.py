"""Alembic environment: async engine (asyncpg or aiosqlite), the models' metadata, and an
advisory lock on PostgreSQL so replicas starting together migrate exactly once."""

from __future__ import annotations

import asyncio
import logging.config
import re
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from perfwatch.config import Settings, SettingsError, get_settings
from perfwatch.db.engine import build_engine
from perfwatch.db.migrations import render_frozen_type
from perfwatch.db.partitions import is_partition
from perfwatch.models import Base

# Any constant works as long as every PerfWatch process uses the same one.
MIGRATION_LOCK_KEY = 0x5045_5246_5741_5443 & 0x7FFF_FFFF_FFFF_FFFF  # "PERFWATC"

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # Partitions are created at run time by the partition function, not by models.
    return not (type_ == "table" and name is not None and is_partition(name))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
        include_name=include_name,
        render_item=render_frozen_type,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )


def _run_migrations(connection: Connection) -> None:
    is_postgres = connection.dialect.name == "postgresql"
    if is_postgres:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
    try:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if is_postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def _settings() -> Settings:
    # Callers (CLI, tests) may pass explicit settings; otherwise read the environment.
    settings = config.attributes.get("settings")
    if isinstance(settings, Settings):
        return settings
    try:
        return get_settings()
    except SettingsError as exc:
        raise SystemExit(f"alembic: {exc}") from None


async def _run_async() -> None:
    engine = build_engine(_settings(), null_pool=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    url = _settings().effective_database_url
    context.configure(
        url=re.sub(r"\+(asyncpg|aiosqlite)", "", url),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        include_name=include_name,
        render_item=render_frozen_type,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # Tests and the CLI may hand over an open (sync-facing) connection.
        _run_migrations(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
