"""The ingest path of snapshots: idempotent bulk inserts (decoded or already-encoded documents)
and PostgreSQL's COPY fast path for large replays. Used by the sampler's writer, the seed and
the benchmark; in the caller's transaction, never committing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import EncodedSnapshot, SnapshotRow, encode_snapshot
from perfwatch.db.types import utcnow
from perfwatch.metrics.tiers.pending import mark_late_rows
from perfwatch.models import MetricSnapshot

# One statement for the whole batch: arrays are unnested server-side, which keeps PostgreSQL
# inserts close to COPY speed while still skipping rows that already exist.
_POSTGRES_BULK_INSERT = text(
    "INSERT INTO metric_snapshots (host, captured_at, metric_type, metric_data) "
    "SELECT host, captured_at, metric_type, metric_data::jsonb "
    "FROM unnest(CAST(:hosts AS varchar[]), CAST(:times AS timestamptz[]), "
    "CAST(:types AS varchar[]), CAST(:documents AS text[])) "
    "AS batch(host, captured_at, metric_type, metric_data) "
    "ON CONFLICT (host, metric_type, captured_at) DO NOTHING"
)

# One index probe per (host, type) range: is any stored row inside it?
_ANY_STORED_IN_RANGES = text(
    "SELECT EXISTS (SELECT 1 FROM unnest(CAST(:hosts AS varchar[]), CAST(:types AS varchar[]), "
    "CAST(:lows AS timestamptz[]), CAST(:highs AS timestamptz[])) AS r(host, metric_type, lo, hi) "
    "WHERE EXISTS (SELECT 1 FROM metric_snapshots AS s WHERE s.host = r.host "
    "AND s.metric_type = r.metric_type AND s.captured_at BETWEEN r.lo AND r.hi))"
)


def _rowcount(result: Any) -> int:
    # The driver reports how many rows the INSERT wrote; skipped conflicts are not counted.
    return max(int(cast("CursorResult[Any]", result).rowcount or 0), 0)


class SnapshotIngest:
    """Writes ``metric_snapshots`` in the caller's transaction. Every path marks the minutes of
    late rows for the tier job (``metrics/tiers/pending.py``) in that same transaction;
    ``clock`` says what "late" is measured from (tests move it)."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utcnow) -> None:
        self.session = session
        self.clock = clock

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def bulk_insert_ignore_conflicts(self, rows: Sequence[SnapshotRow]) -> int:
        """Insert ``rows`` in one statement, skipping any (host, type, time) already stored.

        Returns the number of rows actually inserted.
        """
        if not rows:
            return 0
        for row in rows:
            if row.captured_at.tzinfo is None:
                raise ValueError(f"captured_at must be timezone-aware, got {row.captured_at!r}")
        if self._postgres():
            return await self.bulk_insert_encoded([encode_snapshot(row) for row in rows])
        inserted = await self._insert_sqlite(rows)
        if inserted:
            await self._mark_late((row.host, row.captured_at, row.metric_type) for row in rows)
        return inserted

    async def _insert_sqlite(self, rows: Sequence[SnapshotRow]) -> int:
        # RETURNING yields only the rows inserted, which counts them across the batch.
        statement = (
            sqlite_insert(MetricSnapshot)
            .on_conflict_do_nothing(index_elements=["host", "metric_type", "captured_at"])
            .returning(MetricSnapshot.id)
        )
        result = await self.session.execute(
            statement,
            [
                {
                    "host": row.host,
                    "captured_at": row.captured_at,
                    "metric_type": row.metric_type,
                    "metric_data": row.metric_data,
                }
                for row in rows
            ],
        )
        return len(result.all())

    async def bulk_insert_encoded(self, records: Sequence[EncodedSnapshot]) -> int:
        """Like :meth:`bulk_insert_ignore_conflicts` for documents already encoded as JSON text
        (the spool's replay): PostgreSQL takes the text as is, without a decode/encode round."""
        if not records:
            return 0
        if not self._postgres():
            return await self.bulk_insert_ignore_conflicts(
                [SnapshotRow(host, at, kind, json.loads(doc)) for host, at, kind, doc in records]
            )
        result = await self.session.execute(
            _POSTGRES_BULK_INSERT,
            {
                "hosts": [record.host for record in records],
                "times": [record.captured_at for record in records],
                "types": [record.metric_type for record in records],
                "documents": [record.document for record in records],
            },
        )
        inserted = _rowcount(result)
        if inserted:
            await self._mark_late(_keys(records))
        return inserted

    async def copy_encoded_if_absent(self, records: Sequence[EncodedSnapshot]) -> int | None:
        """PostgreSQL's fast path for large replays: ``COPY`` the rows when no stored row falls
        in any of their (host, type) time ranges, so none can conflict. Returns the number of
        rows copied, or None when the fast path does not apply (some rows may exist already,
        or another dialect): then use :meth:`bulk_insert_encoded`.

        Two writers for one host at once could still make the ``COPY`` fail on the unique key;
        the transaction then rolls back and the caller falls back as well.
        """
        if not records or not self._postgres():
            return None
        ranges: dict[tuple[str, str], list[datetime]] = {}
        for host, captured_at, metric_type, _ in records:
            bounds = ranges.setdefault((host, metric_type), [captured_at, captured_at])
            bounds[0] = min(bounds[0], captured_at)
            bounds[1] = max(bounds[1], captured_at)
        keys = list(ranges)
        occupied = await self.session.scalar(
            _ANY_STORED_IN_RANGES,
            {
                "hosts": [host for host, _ in keys],
                "types": [metric_type for _, metric_type in keys],
                "lows": [ranges[key][0] for key in keys],
                "highs": [ranges[key][1] for key in keys],
            },
        )
        if occupied:
            return None
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            "metric_snapshots",
            records=records,
            columns=["host", "captured_at", "metric_type", "metric_data"],
        )
        await self._mark_late(_keys(records))
        return len(records)

    async def _mark_late(self, rows: Iterable[tuple[str, datetime, str]]) -> None:
        await mark_late_rows(self.session, rows, self.clock())


def _keys(records: Sequence[EncodedSnapshot]) -> Iterator[tuple[str, datetime, str]]:
    return ((host, captured_at, kind) for host, captured_at, kind, _ in records)
