"""The batch writer against real PostgreSQL 16 and SQLite: batching, idempotent retries, the
spool while the database is away and its replay, exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from perfwatch.contract.metrics import EncodedSnapshot, SnapshotRow, encode_snapshot
from perfwatch.db.engine import build_engine
from perfwatch.db.session import make_sessionmaker
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.sampler.spool import Spool
from perfwatch.sampler.writer import SnapshotWriter
from tests.support.helpers import closed_postgres_url, fetch, make_settings

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def rows(
    start: int, count: int, metric_type: str = "cpu", host: str = "host-w"
) -> list[SnapshotRow]:
    return [
        SnapshotRow(host, T0 + timedelta(seconds=i), metric_type, {"schema_version": 1, "n": i})
        for i in range(start, start + count)
    ]


def encoded(
    start: int, count: int, metric_type: str = "cpu", host: str = "host-w"
) -> list[EncodedSnapshot]:
    """``rows`` as the sampler hands them to the writer and the spool: encoded once."""
    return [encode_snapshot(row) for row in rows(start, count, metric_type, host)]


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    inserts: list[str]

    def stored(self, host: str = "host-w") -> list[tuple[str, int]]:
        """(type, n) of every stored row of ``host``, in time order."""
        found = fetch(
            self.url,
            "SELECT metric_type, metric_data FROM metric_snapshots WHERE host = "
            + ("$1" if self.url.startswith("postgresql") else "?")
            + " ORDER BY captured_at, metric_type",
            host,
        )
        return [(kind, _document(data)["n"]) for kind, data in found]


def _document(data: object) -> dict[str, int]:
    import json

    return json.loads(data) if isinstance(data, str) else data  # type: ignore[return-value]


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    engine = build_engine(make_settings(fresh_db))
    inserts: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO METRIC_SNAPSHOTS"):
            inserts.append(statement)

    yield Database(fresh_db, engine, make_sessionmaker(engine), inserts)
    await engine.dispose()


@pytest.fixture
async def unreachable() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(make_settings(closed_postgres_url(), db_connect_timeout=2))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_a_full_batch_is_written_in_one_statement(database: Database, tmp_path: Path) -> None:
    writer = SnapshotWriter(
        database.sessionmaker,
        Spool(tmp_path / "spool.db"),
        max_rows=300,
        max_seconds=60,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    await writer.add_encoded(encoded(0, 299))
    await asyncio.sleep(0.3)
    assert database.stored() == []  # neither full nor due yet

    await writer.add_encoded(encoded(299, 1))  # the batch is full: flushed at once, not after 60 s
    for _ in range(100):
        if writer.stats.written:
            break
        await asyncio.sleep(0.05)
    assert [n for _, n in database.stored()] == list(range(300))
    assert len(database.inserts) == 1
    stop.set()
    await task
    await writer.close()


async def test_a_partial_batch_is_written_after_max_seconds(
    database: Database, tmp_path: Path
) -> None:
    writer = SnapshotWriter(
        database.sessionmaker,
        Spool(tmp_path / "spool.db"),
        max_rows=500,
        max_seconds=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    await writer.add_encoded(encoded(0, 3, "memory"))
    for _ in range(100):
        if writer.stats.written == 3:
            break
        await asyncio.sleep(0.05)
    assert database.stored() == [("memory", 0), ("memory", 1), ("memory", 2)]
    stop.set()
    await task
    await writer.close()


async def test_a_retried_batch_does_not_duplicate(database: Database, tmp_path: Path) -> None:
    writer = SnapshotWriter(database.sessionmaker, Spool(tmp_path / "spool.db"))
    await writer.add_encoded(encoded(0, 10))
    await writer.flush()
    await writer.add_encoded(encoded(5, 10))  # 5..9 again (a retry), 10..14 new
    await writer.flush()
    assert [n for _, n in database.stored()] == list(range(15))
    assert writer.stats.written == 15
    assert writer.stats.duplicates == 5
    await writer.close()


async def test_while_the_database_is_away_rows_are_spooled_then_replayed_exactly_once(
    database: Database, unreachable: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.db")
    writer = SnapshotWriter(unreachable, spool)
    await writer.add_encoded(encoded(0, 20))
    await writer.flush()
    assert not writer.stats.database_available
    assert len(spool) == 20
    # During the outage each new snapshot goes to disk at once (a kill -9 loses nothing).
    await writer.add_encoded(encoded(20, 5))
    assert len(spool) == 25
    await writer.flush()  # still away: still spooled, in order
    assert len(spool) == 25

    writer.sessionmaker = database.sessionmaker  # the database is back
    await writer.add_encoded(encoded(25, 5))
    await writer.flush()
    assert writer.stats.database_available
    assert len(spool) == 0
    assert [n for _, n in database.stored()] == list(range(30))
    assert writer.stats.replayed + writer.stats.written == 30

    await writer.add_encoded(encoded(30, 2))  # back to in-memory batching
    assert len(spool) == 0  # batched in memory, no longer spooled
    await writer.close()
    assert [n for _, n in database.stored()] == list(range(32))


async def test_a_replay_after_a_crash_between_commit_and_acknowledge_does_not_duplicate(
    database: Database, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append_encoded(encoded(0, 40))
    # The crash: the database committed the first 25 spooled rows, the spool never heard.
    async with database.sessionmaker() as session, session.begin():
        await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows(0, 25))

    writer = SnapshotWriter(database.sessionmaker, spool, replay_chunk_rows=10)
    await writer.flush()
    assert len(spool) == 0
    assert [n for _, n in database.stored()] == list(range(40))
    assert writer.stats.replayed == 15
    assert writer.stats.duplicates == 25
    await writer.close()


async def test_a_spool_left_by_an_earlier_run_is_replayed_before_new_rows(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    earlier = Spool(path)
    earlier.append_encoded(encoded(0, 12, "disk"))
    earlier.close()

    writer = SnapshotWriter(database.sessionmaker, Spool(path))
    await writer.add_encoded(encoded(12, 3, "disk"))  # queued behind the spooled rows
    await writer.flush()
    assert database.stored() == [("disk", n) for n in range(15)]
    await writer.close()


async def test_closing_while_the_database_is_away_keeps_the_batch_on_disk(
    unreachable: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    writer = SnapshotWriter(unreachable, Spool(path))
    await writer.add_encoded(encoded(0, 7))
    await writer.close()  # graceful stop: the flush fails, the rows are spooled
    reopened = Spool(path)
    assert len(reopened) == 7
    reopened.close()


@pytest.mark.parametrize("dialect", ["postgres"])
async def test_a_row_the_database_rejects_does_not_block_the_others(
    database: Database, tmp_path: Path
) -> None:
    bad = SnapshotRow("host-w", T0 + timedelta(seconds=3), "cpu", {"n": 3, "name": "nul\u0000"})
    batch = [*rows(0, 3), bad, *rows(4, 3)]
    writer = SnapshotWriter(database.sessionmaker, Spool(tmp_path / "spool.db"))
    await writer.add_encoded([encode_snapshot(row) for row in batch])
    await writer.flush()
    assert [n for _, n in database.stored()] == [0, 1, 2, 4, 5, 6]
    assert writer.stats.rejected == 1
    assert writer.stats.database_available
    await writer.close()


async def test_a_large_replay_into_an_empty_range_is_copied(
    database: Database, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append_encoded(encoded(0, 1000, "cpu") + encoded(0, 1000, "memory"))
    writer = SnapshotWriter(database.sessionmaker, spool, replay_chunk_rows=1000)
    await writer.flush()
    stored = database.stored()
    assert len(stored) == 2000 and len(set(stored)) == 2000
    assert writer.stats.replayed == 2000 and len(spool) == 0
    if database.url.startswith("postgresql"):
        # COPY, not INSERT, for the chunks of 1,000: no INSERT statement was sent at all.
        assert database.inserts == []
    await writer.close()


async def test_a_large_replay_over_rows_already_stored_falls_back_and_does_not_duplicate(
    database: Database, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append_encoded(encoded(0, 1500))
    # A crash after the database committed part of the spool: those rows are stored already.
    async with database.sessionmaker() as session, session.begin():
        await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows(700, 100))
    writer = SnapshotWriter(database.sessionmaker, spool, replay_chunk_rows=1000)
    await writer.flush()
    assert [n for _, n in database.stored()] == list(range(1500))
    assert writer.stats.replayed == 1400
    assert writer.stats.duplicates == 100
    await writer.close()


@pytest.mark.parametrize("dialect", ["postgres"])
async def test_a_copy_that_hits_the_unique_key_is_retried_as_an_insert(
    database: Database, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.db")
    # The same snapshot twice inside one chunk: the range check sees nothing stored, COPY fails
    # on the unique key, and the chunk is written by the conflict-ignoring insert instead.
    spool.append_encoded(encoded(0, 600))
    spool.append_encoded(encoded(599, 1))
    writer = SnapshotWriter(database.sessionmaker, spool, replay_chunk_rows=1000)
    await writer.flush()
    assert [n for _, n in database.stored()] == list(range(600))
    assert writer.stats.duplicates == 1
    assert writer.stats.database_available and len(spool) == 0
    assert len(database.inserts) == 1
    await writer.close()


async def test_a_graceful_stop_replays_the_spool_if_the_database_is_back(
    database: Database, unreachable: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    writer = SnapshotWriter(unreachable, Spool(path))
    await writer.add_encoded(encoded(0, 9))
    await writer.flush()  # away: spooled, and new rows now go straight to the spool
    await writer.add_encoded(encoded(9, 3))
    assert len(writer.spool) == 12

    writer.sessionmaker = database.sessionmaker  # back just before the stop
    await writer.close()
    assert [n for _, n in database.stored()] == list(range(12))
    reopened = Spool(path)
    assert len(reopened) == 0
    reopened.close()
