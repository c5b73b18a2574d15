"""Async engine construction: driver-specific tuning and slow-query logging."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from perfwatch.config import Settings
from perfwatch.db.pool import TimedQueuePool

logger = logging.getLogger("perfwatch.db")
slow_query_logger = logging.getLogger("perfwatch.db.slow")

SQLITE_BUSY_TIMEOUT_MS = 5_000


def build_engine(settings: Settings, *, null_pool: bool = False) -> AsyncEngine:
    """Create the application's engine for ``settings.effective_database_url``.

    ``null_pool`` is for one-shot work (Alembic migrations) that must not keep connections open.
    """
    url = settings.effective_database_url
    kwargs: dict[str, Any] = {"echo": settings.db_echo, "pool_pre_ping": True}
    if settings.database_dialect == "sqlite":
        _ensure_sqlite_directory(url)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["connect_args"] = {
            "timeout": settings.db_connect_timeout,
            "server_settings": {
                "application_name": "perfwatch",
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "timezone": "UTC",
            },
        }
    if null_pool:
        kwargs["poolclass"] = NullPool
    elif settings.database_dialect != "sqlite":
        kwargs.update(
            poolclass=TimedQueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
        )
    engine = create_async_engine(url, **kwargs)
    if settings.database_dialect == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        event.listen(engine.sync_engine, "begin", _begin_sqlite_transaction)
    _install_slow_query_log(engine.sync_engine, settings.slow_query_ms)
    return engine


def _ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the sampler write while the API reads; SQLite leaves foreign keys off by default.
    cursor = dbapi_connection.cursor()
    # Chosen when the file is new (no page yet; it cannot change once tables exist): retention's
    # deletes then give pages back with `PRAGMA incremental_vacuum`. An older file is converted
    # once by the retention job (docs/retention.md). Setting it on an existing file would wait
    # for the write lock: every new connection would queue behind the sampler's writes.
    cursor.execute("PRAGMA page_count")
    if cursor.fetchone()[0] == 0:
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # The sqlite3 driver's own transaction handling breaks SAVEPOINT; SQLAlchemy emits BEGIN
    # itself instead (see the SQLAlchemy SQLite dialect docs, "Serializable isolation").
    dbapi_connection.isolation_level = None


def _begin_sqlite_transaction(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def _install_slow_query_log(sync_engine: Engine, threshold_ms: float) -> None:
    if threshold_ms <= 0:
        return

    # The start time rides on the statement's execution context: a statement that fails never
    # reaches after_cursor_execute, and a per-connection stack would keep its entry forever.
    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start_timer(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is not None:
            context.perfwatch_query_start = time.perf_counter()

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _log_if_slow(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        _log_slow(getattr(context, "perfwatch_query_start", None), statement, "")

    # Failed statements count too: the slowest ones are those statement_timeout cancels.
    @event.listens_for(sync_engine, "handle_error")
    def _log_failed_if_slow(exception_context: Any) -> None:
        started = getattr(exception_context.execution_context, "perfwatch_query_start", None)
        _log_slow(started, exception_context.statement or "", ", failed")

    def _log_slow(started: float | None, statement: str, outcome: str) -> None:
        if started is None:
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        if elapsed_ms >= threshold_ms:
            slow_query_logger.warning(
                "slow query (%.1f ms%s): %s", elapsed_ms, outcome, " ".join(statement.split())
            )
