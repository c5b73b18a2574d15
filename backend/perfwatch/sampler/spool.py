"""The on-disk spool: where snapshots wait while the database is away.

A SQLite file in the data directory, written with the standard library's ``sqlite3`` (from a
worker thread: the calls block). Every append is its own committed transaction in WAL mode, so
what was appended survives a restart or a ``kill -9`` of the sampler. Rows leave the spool only
after the database has committed them; a crash between the two replays them, and the
database's (host, type, time) uniqueness makes that replay harmless: exactly once in the end.

The spool is bounded. Only when it is full is the oldest row dropped; drops are counted in the
file itself (they survive restarts) and logged.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.errors import PerfWatchError

logger = logging.getLogger("perfwatch.sampler.spool")

# A day at the default intervals is ~373,000 snapshots (cpu, memory, network and disk every
# second, processes every 5 s, sensors every 10 s, system every minute); keep a margin.
DEFAULT_MAX_ROWS = 500_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spooled_snapshots ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " host TEXT NOT NULL, captured_at TEXT NOT NULL, metric_type TEXT NOT NULL,"
    " metric_data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS spool_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO spool_counters (name, value) VALUES ('dropped', 0)",
)


class SpoolUnavailableError(PerfWatchError):
    """The spool file cannot be opened or created."""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """Rows read from the spool, oldest first, documents still JSON text; ``last_seq``
    acknowledges them."""

    records: list[EncodedSnapshot]
    last_seq: int


class Spool:
    """A bounded FIFO of snapshots on disk. Thread-safe; each method is one transaction."""

    def __init__(self, path: Path | str, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        if max_rows < 1:
            raise ValueError("the spool must hold at least one row")
        self.path = path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed append survives the process dying (kill -9);
            # only a power cut can take the last transactions.
            self._connection.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():
                for statement in _SCHEMA:
                    self._connection.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolUnavailableError(
                f"cannot open the sampler's spool {path}: {exc} "
                "(PERFWATCH_DATA_DIR must be a writable directory)"
            ) from exc
        self._count = self._scalar("SELECT count(*) FROM spooled_snapshots")
        self._dropped = self._scalar("SELECT value FROM spool_counters WHERE name = 'dropped'")

    def _scalar(self, sql: str) -> int:
        row = self._connection.execute(sql).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection)

    def __len__(self) -> int:
        return self._count

    @property
    def dropped(self) -> int:
        """Rows dropped because the spool was full, over the file's whole life."""
        return self._dropped

    def append_encoded(self, encoded: Sequence[EncodedSnapshot]) -> int:
        """Store snapshots (encoded once by the sampler) after what is already spooled; returns
        how many old rows were dropped to stay within ``max_rows``."""
        if not encoded:
            return 0
        records = [
            (host, captured_at.isoformat(), metric_type, document)
            for host, captured_at, metric_type, document in encoded
        ]
        with self._lock, self._transaction():
            self._connection.executemany(
                "INSERT INTO spooled_snapshots (host, captured_at, metric_type, metric_data) "
                "VALUES (?, ?, ?, ?)",
                records,
            )
            excess = self._count + len(records) - self.max_rows
            if excess > 0:
                self._connection.execute(
                    "DELETE FROM spooled_snapshots WHERE seq IN "
                    "(SELECT seq FROM spooled_snapshots ORDER BY seq LIMIT ?)",
                    (excess,),
                )
                self._connection.execute(
                    "UPDATE spool_counters SET value = value + ? WHERE name = 'dropped'",
                    (excess,),
                )
            dropped = max(excess, 0)
            self._count += len(records) - dropped
            self._dropped += dropped
        if dropped:
            logger.warning(
                "spool full (%d rows): dropped the %d oldest snapshots", self.max_rows, dropped
            )
        return dropped

    def peek(self, limit: int, after: SpooledBatch | None = None) -> SpooledBatch | None:
        """The oldest ``limit`` rows (those following ``after``, if given: read ahead while
        ``after`` is being written), without removing them (see :meth:`acknowledge`)."""
        after_seq = after.last_seq if after is not None else 0
        with self._lock:
            records = self._connection.execute(
                "SELECT seq, host, captured_at, metric_type, metric_data "
                "FROM spooled_snapshots WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        if not records:
            return None
        return SpooledBatch(
            records=[
                EncodedSnapshot(host, datetime.fromisoformat(captured_at), metric_type, data)
                for _, host, captured_at, metric_type, data in records
            ],
            last_seq=int(records[-1][0]),
        )

    def acknowledge(self, batch: SpooledBatch) -> None:
        """Remove a peeked batch once the database has committed it."""
        with self._lock, self._transaction():
            removed = self._connection.execute(
                "DELETE FROM spooled_snapshots WHERE seq <= ?", (batch.last_seq,)
            ).rowcount
            self._count -= max(removed, 0)

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self._connection.execute("ROLLBACK" if exc_type is not None else "COMMIT")
