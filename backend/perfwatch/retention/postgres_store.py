"""Retention's storage work on PostgreSQL: what is stored per (type, period), dropping a leaf,
bounded deletes for the rare rows outside a leaf of their own, and the database's size.

A leaf is dropped in a short transaction of its own under ``lock_timeout``: a drop is atomic
(it happens whole or not at all), and one that cannot get its lock in time (a long query still
reads that day) raises :class:`LockTimeout` and is retried on the next run. Dropping never
leaves dead tuples, unlike ``DELETE``; deletes are kept for rows in an ``_other`` child or a
DEFAULT partition, which hold nothing in normal operation.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from perfwatch.db.partitions import PartitionedTable, list_partitions
from perfwatch.retention.stored import Resolution, Stored, StoredPart

LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout


class LockTimeout(Exception):
    """A table's lock was not granted within ``lock_timeout``: nothing changed."""


def _quoted(name: str) -> str:
    # Names come from pg_class and match db/partitions.py's pattern ([a-z0-9_]); quoted anyway.
    return '"' + name.replace('"', '""') + '"'


def _is_lock_timeout(exc: DBAPIError) -> bool:
    orig = exc.orig
    return LOCK_NOT_AVAILABLE in (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None))


async def list_stored(
    connection: AsyncConnection, resolution: Resolution, before: datetime
) -> list[Stored]:
    """Every (type, period) of ``resolution`` whose period ends at or before ``before``, oldest
    first: leaves with their size, plus the rows of ``_other`` children and of the DEFAULT
    partition counted per type (both are scanned, and both are empty or nearly so)."""
    table = resolution.table
    parts: dict[tuple[str, date], list[StoredPart]] = defaultdict(list)
    leaves = [leaf for leaf in await list_partitions(connection, table) if leaf.end <= before]
    sizes = await _sizes(connection, [leaf.name for leaf in leaves if leaf.metric_type])
    for leaf in leaves:
        if leaf.metric_type is not None:
            heap, total = sizes.get(leaf.name, (None, None))
            # A leaf whose heap is empty holds no row (most types have one per period, sampled
            # or not); how many rows any other holds costs a scan (count_rows).
            rows = 0 if heap == 0 else None
            part = StoredPart(leaf.name, own_table=True, rows=rows, bytes=total)
            parts[(leaf.metric_type, leaf.period)].append(part)
            continue
        counts = await connection.execute(
            text(f"SELECT metric_type, count(*) FROM {_quoted(leaf.name)} GROUP BY metric_type")
        )
        for metric_type, rows in counts:
            parts[(metric_type, leaf.period)].append(StoredPart(leaf.name, False, rows=rows))
    for metric_type, period, rows in await _default_counts(connection, table, before):
        parts[(metric_type, period)].append(StoredPart(table.default_partition, False, rows=rows))
    return [
        Stored(resolution, metric_type, period, tuple(found))
        for (metric_type, period), found in sorted(parts.items(), key=lambda kv: kv[0][::-1])
    ]


async def _sizes(connection: AsyncConnection, names: list[str]) -> dict[str, tuple[int, int]]:
    """Each table's heap bytes and its bytes with indexes and TOAST (catalog reads only)."""
    if not names:
        return {}
    result = await connection.execute(
        text(
            "SELECT relname, pg_relation_size(oid), pg_total_relation_size(oid) FROM pg_class "
            "WHERE relname = ANY(CAST(:names AS text[])) AND relkind = 'r'"
        ),
        {"names": names},
    )
    return {name: (int(heap), int(total)) for name, heap, total in result}


async def _default_counts(
    connection: AsyncConnection, table: PartitionedTable, before: datetime
) -> list[tuple[str, date, int]]:
    column = table.time_column
    period = (
        f"({column} AT TIME ZONE 'UTC')::date"
        if table.unit == "day"
        else f"date_trunc('month', {column} AT TIME ZONE 'UTC')::date"
    )
    result = await connection.execute(
        text(
            f"SELECT metric_type, {period} AS period, count(*) "
            f"FROM {_quoted(table.default_partition)} WHERE {column} < :before "
            "GROUP BY 1, 2"
        ),
        {"before": before},
    )
    # Rows of a period that ends after ``before`` are left for a later run.
    return [
        (metric_type, day, int(rows))
        for metric_type, day, rows in result
        if table.period_end(day) <= before.astimezone(UTC).date()
    ]


async def count_rows(connection: AsyncConnection, stored: Stored) -> Stored:
    """``stored`` with the exact row count of each leaf (one scan each: for the CLI's
    listing, not for the scheduled runs)."""
    parts = []
    for part in stored.parts:
        if part.own_table and part.rows is None:
            rows = await connection.scalar(text(f"SELECT count(*) FROM {_quoted(part.table)}"))
            part = StoredPart(part.table, True, rows=int(rows or 0), bytes=part.bytes)
        parts.append(part)
    return Stored(stored.resolution, stored.metric_type, stored.period, tuple(parts))


class ChangedSinceArchived(Exception):
    """The table holds rows its archive does not (late rows stored after it was written):
    nothing was dropped; the next run archives again (merging) and drops then."""


async def drop_table(
    engine: AsyncEngine, name: str, lock_timeout_ms: int, archived_rows: int | None = None
) -> None:
    """``DROP TABLE name`` in a transaction of its own, or :class:`LockTimeout`. With
    ``archived_rows``, first lock it and check it holds no more rows than were archived, or
    :class:`ChangedSinceArchived`: an archived day is dropped only if its archive has every row."""
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
            if archived_rows is not None:
                await connection.execute(
                    text(f"LOCK TABLE {_quoted(name)} IN ACCESS EXCLUSIVE MODE")
                )
                stored = await connection.scalar(text(f"SELECT count(*) FROM {_quoted(name)}"))
                if int(stored or 0) > archived_rows:
                    raise ChangedSinceArchived(
                        f"{name} holds {stored} rows, its archive {archived_rows}"
                    )
            await connection.execute(text(f"DROP TABLE IF EXISTS {_quoted(name)}"))
    except DBAPIError as exc:
        if _is_lock_timeout(exc):
            raise LockTimeout(name) from exc
        raise


async def delete_rows(
    engine: AsyncEngine, stored: Stored, part: StoredPart, batch_rows: int
) -> int:
    """Delete ``stored``'s rows from ``part.table``, ``batch_rows`` per transaction; returns
    how many. A run stopped half-way leaves the rest for the next one."""
    column = stored.resolution.table.time_column
    statement = text(
        f"DELETE FROM {_quoted(part.table)} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {_quoted(part.table)} WHERE metric_type = :metric_type "
        f"AND {column} >= :start AND {column} < :end LIMIT :batch))"
    )
    params = {
        "metric_type": stored.metric_type,
        "start": stored.start,
        "end": stored.end,
        "batch": batch_rows,
    }
    deleted = 0
    while True:
        async with engine.begin() as connection:
            result = await connection.execute(statement, params)
        count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < batch_rows:
            return deleted


async def drop_emptied_periods(
    engine: AsyncEngine, table: PartitionedTable, lock_timeout_ms: int
) -> list[str]:
    """Drop the period tables whose type leaves are all gone and whose ``_other`` child is
    empty, so expired periods leave no tables behind; returns their names. A period that gets
    rows again later stores them in the DEFAULT partition (expired from there). Locks the
    parent table briefly; a lock timeout leaves the period for the next run."""
    async with engine.connect() as connection:
        leaves = await list_partitions(connection, table)
    by_period: dict[date, set[str | None]] = defaultdict(set)
    for leaf in leaves:
        by_period[leaf.period].add(leaf.metric_type)
    dropped = []
    for period, kinds in sorted(by_period.items()):
        if kinds != {None}:
            continue
        name = table.period_name(period)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
                await connection.execute(
                    text(f"LOCK TABLE {_quoted(name)} IN ACCESS EXCLUSIVE MODE")
                )
                # Checked under the lock: no row can arrive between the check and the drop.
                if await connection.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {_quoted(name)})")):
                    continue
                await connection.execute(text(f"DROP TABLE {_quoted(name)}"))
        except DBAPIError as exc:
            if not _is_lock_timeout(exc):
                raise
            continue
        dropped.append(name)
    return dropped


async def database_size(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        size = await connection.scalar(text("SELECT pg_database_size(current_database())"))
    return int(size or 0)
