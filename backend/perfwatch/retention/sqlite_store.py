"""Retention's storage work on SQLite: what is stored per (type, period), bounded deletes,
giving the freed pages back to the file system, and the database's size.

Every table here is keyed (host, metric_type, time) (the snapshots' unique index, the tiers'
primary key), so each read below is an index seek, never a scan of the history. Deletes go
``batch_rows`` at a time, each batch its own short transaction, so the sampler and the API keep
writing and reading in between; a run stopped half-way leaves the remaining rows for the next.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, bindparam, column, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from perfwatch.db.types import UTCDateTime
from perfwatch.retention.stored import Resolution, Stored, StoredPart

logger = logging.getLogger("perfwatch.retention")

# Pages freed per `PRAGMA incremental_vacuum` step (4 MiB at the default page size): each
# step holds the write lock only briefly.
VACUUM_STEP_PAGES = 1024
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def _oldest_per_series(table: str, time_column: str) -> Any:
    """(host, metric_type, oldest time) of every series: skip-scans of the key, as in
    metrics/sql.py's HOSTS_LAST_SEEN."""
    return text(
        "WITH RECURSIVE hosts(host) AS ("
        f" SELECT (SELECT host FROM {table} ORDER BY host LIMIT 1)"
        " UNION ALL"
        f" SELECT (SELECT t.host FROM {table} t WHERE t.host > hosts.host"
        "  ORDER BY t.host LIMIT 1) FROM hosts WHERE hosts.host IS NOT NULL"
        "), pairs(host, metric_type) AS ("
        f" SELECT h.host, (SELECT t.metric_type FROM {table} t WHERE t.host = h.host"
        "  ORDER BY t.metric_type LIMIT 1) FROM hosts h WHERE h.host IS NOT NULL"
        " UNION ALL"
        f" SELECT p.host, (SELECT t.metric_type FROM {table} t WHERE t.host = p.host"
        "  AND t.metric_type > p.metric_type ORDER BY t.metric_type LIMIT 1)"
        " FROM pairs p WHERE p.metric_type IS NOT NULL"
        f") SELECT p.host, p.metric_type, (SELECT t.{time_column} FROM {table} t"
        f" WHERE t.host = p.host AND t.metric_type = p.metric_type ORDER BY t.{time_column}"
        " LIMIT 1) FROM pairs p WHERE p.metric_type IS NOT NULL"
    ).columns(column("host", String()), column("metric_type", String()), column("t", UTCDateTime()))


def _next_time(table: str, time_column: str) -> Any:
    return (
        text(
            f"SELECT {time_column} FROM {table} WHERE host = :host AND metric_type = :metric_type "
            f"AND {time_column} >= :after ORDER BY {time_column} LIMIT 1"
        )
        .bindparams(bindparam("after", type_=UTCDateTime()))
        .columns(column(time_column, UTCDateTime()))
    )


def _range_params(table: str, time_column: str, sql: str) -> Any:
    return text(sql.format(table=table, t=time_column)).bindparams(
        bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    )


async def list_stored(
    connection: AsyncConnection, resolution: Resolution, before: datetime
) -> list[Stored]:
    """Every (type, period) of ``resolution`` with rows, whose period ends at or before
    ``before``, oldest first, with the hosts that have rows in it; one seek per series and
    period found."""
    table, column_name = resolution.table.name, resolution.table.time_column
    hosts: dict[tuple[str, date], set[str]] = defaultdict(set)
    next_time = _next_time(table, column_name)
    for host, metric_type, oldest in await connection.execute(
        _oldest_per_series(table, column_name)
    ):
        moment: datetime | None = oldest
        while moment is not None:
            period = resolution.period_of(moment)
            end = resolution.end(period)
            if end > before:
                break
            hosts[(metric_type, period)].add(host)
            moment = await connection.scalar(
                next_time, {"host": host, "metric_type": metric_type, "after": end}
            )
    return [
        Stored(
            resolution,
            metric_type,
            period,
            (StoredPart(table, own_table=False, hosts=tuple(sorted(found))),),
        )
        for (metric_type, period), found in sorted(hosts.items(), key=lambda kv: kv[0][::-1])
    ]


async def count_rows(connection: AsyncConnection, stored: Stored) -> Stored:
    """``stored`` with its exact row count (an index range count per host)."""
    table = stored.resolution.table
    statement = _range_params(
        table.name,
        table.time_column,
        "SELECT count(*) FROM {table} WHERE host = :host AND metric_type = :metric_type "
        "AND {t} >= :start AND {t} < :end",
    )
    parts = []
    for part in stored.parts:
        rows = 0
        for host in part.hosts:
            rows += int(
                await connection.scalar(
                    statement,
                    {
                        "host": host,
                        "metric_type": stored.metric_type,
                        "start": stored.start,
                        "end": stored.end,
                    },
                )
                or 0
            )
        parts.append(StoredPart(part.table, False, rows=rows, hosts=part.hosts))
    return Stored(stored.resolution, stored.metric_type, stored.period, tuple(parts))


async def delete_rows(
    engine: AsyncEngine, stored: Stored, part: StoredPart, batch_rows: int
) -> int:
    """Delete ``stored``'s rows, at most ``batch_rows`` per transaction; returns how many.

    One statement per batch: it bounds itself by the time of the batch's last row (the key is
    unique per host, type and time), so it needs no rowid and no ``DELETE … LIMIT``."""
    table = stored.resolution.table
    statement = _range_params(
        table.name,
        table.time_column,
        "DELETE FROM {table} WHERE host = :host AND metric_type = :metric_type "
        "AND {t} >= :start AND {t} < :end AND {t} <= coalesce(("
        "SELECT {t} FROM {table} WHERE host = :host AND metric_type = :metric_type "
        "AND {t} >= :start AND {t} < :end ORDER BY {t} LIMIT 1 OFFSET :last), :end)",
    )
    deleted = 0
    for host in part.hosts:
        params = {
            "host": host,
            "metric_type": stored.metric_type,
            "start": stored.start,
            "end": stored.end,
            "last": batch_rows - 1,
        }
        while True:
            async with engine.begin() as connection:
                result = await connection.execute(statement, params)
            count = int(getattr(result, "rowcount", 0) or 0)
            deleted += count
            if count < batch_rows:
                break
    return deleted


@dataclass(frozen=True, slots=True)
class Reclaimed:
    pages: int
    converted: bool  # the file was switched to incremental auto-vacuum (one full VACUUM)


async def reclaim_space(engine: AsyncEngine) -> Reclaimed:
    """Give the pages deletes freed back to the file system, so the file shrinks.

    A file made before migration 0003 (``auto_vacuum`` not INCREMENTAL) is converted once
    with ``VACUUM``, which rewrites the whole file and holds the write lock meanwhile (logged);
    afterwards ``PRAGMA incremental_vacuum`` runs in steps of ``VACUUM_STEP_PAGES``. Both run
    outside any transaction, on the driver's connection (Python's sqlite3 runs a pragma's
    every step only through ``executescript``). A passive checkpoint then moves the shrink
    from the write-ahead log into the file, without waiting for readers."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None

        async def pragma(name: str) -> int:
            cursor = await driver.execute(f"PRAGMA {name}")
            row = await cursor.fetchone()
            await cursor.close()
            return int(row[0]) if row else 0

        freed = await pragma("freelist_count")
        converted = False
        if await pragma("auto_vacuum") != INCREMENTAL:
            logger.warning(
                "converting the SQLite file to incremental auto-vacuum: one full VACUUM "
                "(%d free pages), writes wait meanwhile; later runs shrink it in steps",
                freed,
            )
            await driver.executescript("PRAGMA auto_vacuum=INCREMENTAL; VACUUM")
            converted = True
        else:
            left = freed
            while left > 0:
                await driver.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})")
                remaining = await pragma("freelist_count")
                if remaining >= left:  # nothing moved (another writer holds pages): next run
                    break
                left = remaining
        await pragma("wal_checkpoint(PASSIVE)")
        return Reclaimed(freed - await pragma("freelist_count"), converted)


async def free_pages(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("PRAGMA freelist_count")) or 0)


async def database_size(engine: AsyncEngine) -> int:
    """Bytes in use: the file's pages less the free ones (what deletes gave back counts at
    once, before the file shrinks)."""
    async with engine.connect() as connection:
        pages = int(await connection.scalar(text("PRAGMA page_count")) or 0)
        free = int(await connection.scalar(text("PRAGMA freelist_count")) or 0)
        size = int(await connection.scalar(text("PRAGMA page_size")) or 0)
    return (pages - free) * size
