"""Re-importing an archive file: verified first, then inserted through the ingest path, which
skips rows already stored (so restoring twice changes nothing) and marks the minutes of late
rows for the tier job (so the tiers of the restored day are recomputed).

Each batch is its own transaction rather than one per file: a busy host-day is 86,400 rows and
seconds of inserts, and one transaction would hold SQLite's only write lock all that time (the
sampler's writes wait at most 5 s, then spool) and keep a long PostgreSQL transaction open.
A restore cut short leaves the batches before it stored, which is harmless: running it again
inserts the rest, and a batch's rows and their tier marks commit together.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.db.partitions import PARTITIONED_TABLES, ensure_partitions_between
from perfwatch.db.session import SessionFactory, unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.retention.archive import ArchiveVerificationError, Manifest, read_rows, verify

# Rows per insert statement and transaction (bench/restore_bench.py).
RESTORE_BATCH_ROWS = 5_000


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """``rows_in_file`` rows of ``path`` (described by ``manifest``), of which ``inserted``
    were stored and the others already present (a row of the same host, type and captured_at
    is kept as it is)."""

    path: Path
    manifest: Manifest
    rows_in_file: int
    inserted: int

    @property
    def already_present(self) -> int:
        return self.rows_in_file - self.inserted


async def restore_file(
    sessions: SessionFactory, path: Path, *, batch_rows: int = RESTORE_BATCH_ROWS
) -> RestoreResult:
    """Restore the archive data file ``path`` (``<day>.jsonl.zst``) into the database of
    ``sessions``: :func:`~perfwatch.retention.archive.verify` it whole first and refuse it with
    :class:`ArchiveVerificationError` when it is missing or does not verify (nothing is
    inserted then); create the day's partitions; insert its rows in batches of ``batch_rows``,
    each committed on its own (module docstring)."""
    manifest = await asyncio.to_thread(_verified, path)
    async with unit_of_work(sessions) as session:
        # The tier months too: the job's recomputed minutes then land in partitions of their own.
        for table in PARTITIONED_TABLES:
            await ensure_partitions_between(session, table, manifest.day, manifest.day)
    rows = read_rows(path)
    read = inserted = 0
    # Decompressing a batch is CPU work: in a worker thread, off the event loop.
    while batch := await asyncio.to_thread(_take, rows, batch_rows):
        async with unit_of_work(sessions) as session:
            inserted += await SnapshotIngest(session).bulk_insert_encoded(batch)
        read += len(batch)
    if read != manifest.rows:
        raise ArchiveVerificationError(
            f"{path}: {read} rows read back, the manifest says {manifest.rows} (changed meanwhile)"
        )
    return RestoreResult(path, manifest, read, inserted)


def _verified(path: Path) -> Manifest:
    if not path.is_file():
        raise ArchiveVerificationError(f"{path}: no such archive file")
    try:
        return verify(path)
    except OSError as error:  # unreadable: permissions, I/O
        raise ArchiveVerificationError(f"{path}: {error.strerror or error}") from error


def _take(rows: Iterator[EncodedSnapshot], count: int) -> list[EncodedSnapshot]:
    return list(itertools.islice(rows, count))
