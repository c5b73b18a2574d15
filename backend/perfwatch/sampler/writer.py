"""The batch writer: snapshots to the database in batches, to the spool when it is away.

- Snapshots gather in memory and are written in one statement per flush: every ``max_rows``
  snapshots or every ``max_seconds``, whichever comes first. The insert ignores rows already
  stored (host, type, time), so a retried or replayed batch never duplicates.
- When a write fails because the database is unreachable, the batch goes to the on-disk spool,
  and until the spool has been replayed every new snapshot is appended to it directly: a
  ``kill -9`` during an outage loses nothing that was sampled before it.
- Each flush first replays the spool, oldest first, in chunks; a chunk leaves the spool only
  after the database committed it.
- A batch the database rejects for its content (not for being away) is retried row by row so
  one bad document cannot block the rest; the rows it still rejects are counted and logged.
- Rows older than ``LATE_ROW_SECONDS`` (a replay after an outage) mark their minutes for the
  tier job, in the transaction that stores them (``SnapshotIngest``, ``metrics/tiers/pending.py``).

This class owns the sampler's transactions: one per flushed batch or replayed chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.sampler.spool import Spool

logger = logging.getLogger("perfwatch.sampler.writer")
R = TypeVar("R")

REPLAY_CHUNK_ROWS = 5_000
# Below this, a replayed chunk goes through the usual insert (COPY's check costs a round trip).
COPY_MIN_ROWS = 500
# How long a graceful stop may spend replaying the spool when the database has come back.
CLOSE_REPLAY_SECONDS = 10.0
# SQLSTATE classes meaning "these rows are wrong" (data exception, integrity violation):
# retrying them unchanged would fail forever. Everything else (connection lost, server shutting
# down, table missing until migrations run, timeouts) is treated as the database being away.
_CONTENT_SQLSTATE_CLASSES = ("22", "23")


class ContentRejected(Exception):
    """The database refused the rows themselves, not the connection."""


def is_content_error(error: BaseException) -> bool:
    if isinstance(error, (sa_exc.DataError, sa_exc.IntegrityError)):
        return True
    # Wrapped by SQLAlchemy (.orig) or straight from the driver (COPY on the raw connection).
    sqlstate = getattr(getattr(error, "orig", error), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _CONTENT_SQLSTATE_CLASSES


@dataclass
class WriterStats:
    written: int = 0  # rows the database stored from live batches
    replayed: int = 0  # rows the database stored from the spool
    duplicates: int = 0  # rows skipped because already stored (replays after a crash)
    spooled: int = 0  # rows sent to the spool
    rejected: int = 0  # rows the database refused for their content
    flushes: int = 0
    failures: int = 0  # writes that failed because the database was away
    database_available: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DatabaseAway(Exception):
    """A write failed because the database could not be reached."""


class SnapshotWriter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        spool: Spool,
        *,
        max_rows: int = 500,
        max_seconds: float = 5.0,
        replay_chunk_rows: int = REPLAY_CHUNK_ROWS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.spool = spool
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.replay_chunk_rows = replay_chunk_rows
        self.stats = WriterStats()
        self._batch: list[EncodedSnapshot] = []
        self._flush_requested = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        # Rows left over from an earlier run are replayed first; new rows queue behind them.
        self._spooling = len(spool) > 0

    async def add_encoded(self, records: Sequence[EncodedSnapshot]) -> None:
        """Queue snapshots already encoded (the sampler encodes each document once)."""
        if not records:
            return
        if self._spooling:
            await self._to_spool(records)
            return
        self._batch.extend(records)
        if len(self._batch) >= self.max_rows:
            self._flush_requested.set()

    def request_flush(self) -> None:
        """Flush now rather than at the next ``max_seconds`` tick."""
        self._flush_requested.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``max_seconds`` (or when a batch is full) until ``stop`` is set."""
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                requested = asyncio.create_task(self._flush_requested.wait())
                await asyncio.wait(
                    {stopping, requested},
                    timeout=max(self.max_seconds, 0.05),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                requested.cancel()
                self._flush_requested.clear()
                if stop.is_set():
                    break
                await self.flush()
        finally:
            stopping.cancel()

    async def flush(self) -> None:
        """Replay the spool, then write the batch; whatever the database cannot take is spooled."""
        async with self._flush_lock:
            batch, self._batch = self._batch, []
            self.stats.flushes += 1
            if self._spooling or len(self.spool):
                try:
                    await self._replay()
                except DatabaseAway:
                    await self._to_spool(batch)
                    return
            if not batch:
                return
            try:
                inserted = await self._insert(batch)
            except DatabaseAway:
                self._spooling = True
                await self._to_spool(batch)
                return
            self.stats.written += inserted
            self.stats.duplicates += len(batch) - inserted

    async def close(self) -> None:
        """Final flush (graceful stop): to the database if it answers, else to the spool."""
        if self._spooling:
            batch, self._batch = self._batch, []
            await self._to_spool(batch)
            # The database may be back since the last attempt: one bounded try at the spool
            # (a replay cut short loses nothing; unacknowledged rows stay spooled).
            with contextlib.suppress(DatabaseAway, TimeoutError):
                async with self._flush_lock:
                    await asyncio.wait_for(self._replay(), timeout=CLOSE_REPLAY_SECONDS)
        else:
            await self.flush()
        await asyncio.to_thread(self.spool.close)
        logger.info("writer closed: %s", self.stats.as_dict())

    async def _replay(self) -> None:
        """Write the spool to the database, oldest first. Reading the next chunk and deleting
        the last one (SQLite, in threads) overlap with the database writing the current one."""
        # While the database is known to be away, the first chunk is a single row: a cheap
        # probe instead of reading thousands of rows from disk for a write that will fail.
        first = self.replay_chunk_rows if self.stats.database_available else 1
        chunk = await asyncio.to_thread(self.spool.peek, first)
        acknowledging: asyncio.Future[None] | None = None
        try:
            while chunk is not None:
                following = asyncio.ensure_future(
                    asyncio.to_thread(self.spool.peek, self.replay_chunk_rows, chunk)
                )
                try:
                    inserted = await self._insert_replayed(chunk.records)
                except BaseException:
                    await asyncio.gather(following, return_exceptions=True)
                    raise
                if acknowledging is not None:
                    await acknowledging
                acknowledging = asyncio.ensure_future(
                    asyncio.to_thread(self.spool.acknowledge, chunk)
                )
                self.stats.replayed += inserted
                self.stats.duplicates += len(chunk.records) - inserted
                chunk = await following
        finally:
            if acknowledging is not None:
                await acknowledging
        if self._spooling:
            logger.info("spool replayed; writing to the database directly again")
        self._spooling = False

    async def _insert_replayed(self, records: Sequence[EncodedSnapshot]) -> int:
        """A replayed chunk: ``COPY`` when none of it can be stored already (PostgreSQL; the
        usual case after an outage), else the conflict-ignoring insert."""
        if len(records) >= COPY_MIN_ROWS:
            try:
                copied = await self._in_transaction(_copy_records(records))
            except ContentRejected:  # a row appeared meanwhile (another writer): no fast path
                copied = None
            if copied is not None:
                return copied
        return await self._insert(records)

    async def _to_spool(self, records: Sequence[EncodedSnapshot]) -> None:
        if records:
            await asyncio.to_thread(self.spool.append_encoded, records)
            self.stats.spooled += len(records)

    async def _insert(self, records: Sequence[EncodedSnapshot]) -> int:
        try:
            return await self._in_transaction(_insert_records(records))
        except ContentRejected as error:
            logger.warning("batch of %d rejected (%s); retrying row by row", len(records), error)
        inserted = 0
        for record in records:
            try:
                inserted += await self._in_transaction(_insert_records([record]))
            except ContentRejected as error:
                self.stats.rejected += 1
                host, captured_at, metric_type, _ = record
                logger.error(
                    "snapshot %s/%s at %s rejected by the database: %s",
                    host,
                    metric_type,
                    captured_at.isoformat(),
                    error,
                )
        return inserted

    async def _in_transaction(self, work: Callable[[SnapshotIngest], Awaitable[R]]) -> R:
        try:
            async with self.sessionmaker() as session, session.begin():
                inserted = await work(SnapshotIngest(session))
        except Exception as error:
            if is_content_error(error):
                raise ContentRejected(str(error)) from error
            # Unreachable, restarting, timed out, not migrated yet: keep the rows on disk.
            self.stats.failures += 1
            if self.stats.database_available:
                logger.warning("database unavailable, spooling snapshots to disk: %s", error)
            self.stats.database_available = False
            raise DatabaseAway(str(error)) from error
        if not self.stats.database_available:
            logger.info("database available again")
        self.stats.database_available = True
        return inserted


def _insert_records(
    records: Sequence[EncodedSnapshot],
) -> Callable[[SnapshotIngest], Awaitable[int]]:
    async def work(repository: SnapshotIngest) -> int:
        return await repository.bulk_insert_encoded(records)

    return work


def _copy_records(
    records: Sequence[EncodedSnapshot],
) -> Callable[[SnapshotIngest], Awaitable[int | None]]:
    async def work(repository: SnapshotIngest) -> int | None:
        return await repository.copy_encoded_if_absent(records)

    return work
