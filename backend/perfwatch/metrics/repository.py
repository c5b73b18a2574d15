"""Snapshot storage: idempotent bulk inserts, latest-per-type lookups and keyset-paged ranges."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import CursorResult, and_, or_, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from perfwatch.errors import InvalidQueryError
from perfwatch.kit.repository import MAX_PAGE_SIZE, Repository
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


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A snapshot to store, before it has an id."""

    host: str
    captured_at: datetime
    metric_type: str
    metric_data: dict[str, Any]


# (host, captured_at, metric_type, metric_data as JSON text): a snapshot encoded once, for the
# database, the spool and the cache alike.
EncodedSnapshot = tuple[str, datetime, str, str]


def encode_snapshot(row: SnapshotRow) -> EncodedSnapshot:
    document = json.dumps(row.metric_data, separators=(",", ":"))
    return (row.host, row.captured_at, row.metric_type, document)


@dataclass(frozen=True, slots=True)
class SnapshotPage:
    items: list[MetricSnapshot]
    next_cursor: str | None


def encode_cursor(snapshot: MetricSnapshot) -> str:
    raw = f"{snapshot.captured_at.isoformat()}|{snapshot.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        captured_at, _, snapshot_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        after_time, after_id = datetime.fromisoformat(captured_at), int(snapshot_id)
        # A naive time or an id beyond BIGINT would otherwise fail in the database driver.
        if after_time.tzinfo is None or not 0 <= after_id < 2**63:
            raise ValueError(cursor)
        return after_time, after_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidQueryError(
            "cursor is malformed; pass the next_cursor of a previous page"
        ) from None


class SnapshotRepository(Repository[MetricSnapshot]):
    model = MetricSnapshot
    sortable_fields: ClassVar[frozenset[str]] = frozenset({"captured_at", "host", "metric_type"})
    filterable_fields: ClassVar[frozenset[str]] = frozenset({"host", "metric_type", "captured_at"})
    default_sort = ("-captured_at",)

    async def bulk_insert_ignore_conflicts(self, rows: Sequence[SnapshotRow]) -> int:
        """Insert ``rows`` in one statement, skipping any (host, type, time) already stored.

        Returns the number of rows actually inserted.
        """
        if not rows:
            return 0
        for row in rows:
            if row.captured_at.tzinfo is None:
                raise ValueError(f"captured_at must be timezone-aware, got {row.captured_at!r}")
        if self.session.get_bind().dialect.name == "postgresql":
            result = await self.session.execute(
                _POSTGRES_BULK_INSERT,
                {
                    "hosts": [row.host for row in rows],
                    "times": [row.captured_at for row in rows],
                    "types": [row.metric_type for row in rows],
                    "documents": [
                        json.dumps(row.metric_data, separators=(",", ":")) for row in rows
                    ],
                },
            )
        else:
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
        # The driver reports how many rows the INSERT wrote; skipped conflicts are not counted.
        return max(int(cast("CursorResult[Any]", result).rowcount or 0), 0)

    async def bulk_insert_encoded(self, records: Sequence[EncodedSnapshot]) -> int:
        """Like :meth:`bulk_insert_ignore_conflicts` for documents already encoded as JSON text
        (the spool's replay): PostgreSQL takes the text as is, without a decode/encode round."""
        if not records:
            return 0
        if self.session.get_bind().dialect.name != "postgresql":
            return await self.bulk_insert_ignore_conflicts(
                [SnapshotRow(host, at, kind, json.loads(doc)) for host, at, kind, doc in records]
            )
        result = await self.session.execute(
            _POSTGRES_BULK_INSERT,
            {
                "hosts": [record[0] for record in records],
                "times": [record[1] for record in records],
                "types": [record[2] for record in records],
                "documents": [record[3] for record in records],
            },
        )
        return max(int(cast("CursorResult[Any]", result).rowcount or 0), 0)

    async def copy_encoded_if_absent(self, records: Sequence[EncodedSnapshot]) -> int | None:
        """PostgreSQL's fast path for large replays: ``COPY`` the rows when no stored row falls
        in any of their (host, type) time ranges, so none can conflict. Returns the number of
        rows copied, or None when the fast path does not apply (some rows may exist already,
        or another dialect): then use :meth:`bulk_insert_encoded`.

        Two writers for one host at once could still make the ``COPY`` fail on the unique key;
        the transaction then rolls back and the caller falls back as well.
        """
        if not records or self.session.get_bind().dialect.name != "postgresql":
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
        return len(records)

    async def latest(self, host: str, metric_type: str) -> MetricSnapshot | None:
        query = (
            select(MetricSnapshot)
            .where(MetricSnapshot.host == host, MetricSnapshot.metric_type == metric_type)
            .order_by(MetricSnapshot.captured_at.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def distinct_metric_types(self, host: str | None = None) -> list[str]:
        """The metric types stored (for ``host`` if given), found by an index skip-scan.

        A plain ``SELECT DISTINCT`` would read every row of a table holding months of history;
        the recursive query jumps from one type to the next through the index instead.
        """
        host_filter = "m.host = :host AND " if host is not None else ""
        query = text(
            "WITH RECURSIVE types(metric_type) AS ("
            f" SELECT (SELECT m.metric_type FROM metric_snapshots m WHERE {host_filter}true"
            "  ORDER BY m.metric_type LIMIT 1)"
            " UNION ALL"
            f" SELECT (SELECT m.metric_type FROM metric_snapshots m WHERE {host_filter}"
            "  m.metric_type > types.metric_type ORDER BY m.metric_type LIMIT 1)"
            " FROM types WHERE types.metric_type IS NOT NULL"
            ") SELECT metric_type FROM types WHERE metric_type IS NOT NULL"
        )
        params = {"host": host} if host is not None else {}
        return [row[0] for row in await self.session.execute(query, params)]

    async def distinct_hosts(self) -> list[str]:
        query = text(
            "WITH RECURSIVE hosts(host) AS ("
            " SELECT (SELECT host FROM metric_snapshots ORDER BY host LIMIT 1)"
            " UNION ALL"
            " SELECT (SELECT m.host FROM metric_snapshots m WHERE m.host > hosts.host"
            "  ORDER BY m.host LIMIT 1) FROM hosts WHERE hosts.host IS NOT NULL"
            ") SELECT host FROM hosts WHERE host IS NOT NULL"
        )
        return [row[0] for row in await self.session.execute(query)]

    async def latest_per_type(self, host: str) -> dict[str, MetricSnapshot]:
        """The newest snapshot of every metric type stored for ``host``."""
        latest: dict[str, MetricSnapshot] = {}
        for metric_type in await self.distinct_metric_types(host):
            snapshot = await self.latest(host, metric_type)
            if snapshot is not None:
                latest[metric_type] = snapshot
        return latest

    async def range(
        self,
        *,
        metric_type: str,
        start: datetime,
        end: datetime,
        host: str | None = None,
        limit: int = 500,
        cursor: str | None = None,
    ) -> SnapshotPage:
        """Snapshots with ``start <= captured_at < end`` oldest first, ``limit`` per page.

        Keyset pagination: pass the returned ``next_cursor`` to get the following page; unlike
        offsets it stays fast and stable while the sampler keeps inserting.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidQueryError("start and end must be timezone-aware")
        if start >= end:
            raise InvalidQueryError("start must be before end")
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidQueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        conditions = [
            MetricSnapshot.metric_type == metric_type,
            MetricSnapshot.captured_at >= start,
            MetricSnapshot.captured_at < end,
        ]
        if host is not None:
            conditions.append(MetricSnapshot.host == host)
        if cursor is not None:
            after_time, after_id = decode_cursor(cursor)
            conditions.append(
                or_(
                    MetricSnapshot.captured_at > after_time,
                    and_(MetricSnapshot.captured_at == after_time, MetricSnapshot.id > after_id),
                )
            )
        query = (
            select(MetricSnapshot)
            .where(*conditions)
            .order_by(MetricSnapshot.captured_at, MetricSnapshot.id)
            .limit(limit + 1)
        )
        items = list((await self.session.execute(query)).scalars())
        has_more = len(items) > limit
        items = items[:limit]
        return SnapshotPage(items=items, next_cursor=encode_cursor(items[-1]) if has_more else None)
