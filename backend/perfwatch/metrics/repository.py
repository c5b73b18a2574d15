"""The read path of snapshots: latest values, keyset-paged ranges, downsampled series,
summaries, and which hosts and types are stored.

Inputs are trusted: ``MetricsService`` has checked the type, host, range and fields (and
decoded the cursor) before calling. Writes are in ``metrics/ingest.py``; the SQL text in
``metrics/sql.py``; bucket arithmetic in ``metrics/buckets.py``."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import and_, or_, select

from perfwatch.errors import ValidationFailedError
from perfwatch.kit.repository import Repository
from perfwatch.metrics import sql
from perfwatch.metrics.buckets import as_epoch_seconds, bucket_time
from perfwatch.metrics.records import (
    Bucket,
    FieldStats,
    FieldSummary,
    HostSeen,
    MinuteTotals,
    RangeSummary,
    SnapshotPage,
    Totals,
    rounded,
)
from perfwatch.models import MetricSnapshot

# A keyset position: the (captured_at, id) of the last row of the previous page.
After = tuple[datetime, int]


def encode_cursor(snapshot: MetricSnapshot) -> str:
    raw = f"{snapshot.captured_at.isoformat()}|{snapshot.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> After:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        captured_at, _, snapshot_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        after_time, after_id = datetime.fromisoformat(captured_at), int(snapshot_id)
        # A naive time or an id beyond BIGINT would otherwise fail in the database driver.
        if after_time.tzinfo is None or not 0 <= after_id < 2**63:
            raise ValueError(cursor)
        return after_time, after_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailedError(
            "cursor is malformed; pass the next_cursor of a previous page"
        ) from None


def _range(host: str, metric_type: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"host": host, "metric_type": metric_type, "start": start, "end": end}


class SnapshotRepository(Repository[MetricSnapshot]):
    model = MetricSnapshot
    sortable_fields: ClassVar[frozenset[str]] = frozenset({"captured_at", "host", "metric_type"})
    filterable_fields: ClassVar[frozenset[str]] = frozenset({"host", "metric_type", "captured_at"})
    default_sort = ("-captured_at",)

    async def latest(self, host: str, metric_type: str) -> MetricSnapshot | None:
        query = (
            select(MetricSnapshot)
            .where(MetricSnapshot.host == host, MetricSnapshot.metric_type == metric_type)
            .order_by(MetricSnapshot.captured_at.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def distinct_metric_types(
        self, host: str | None = None, *, excluding: Sequence[str] = ()
    ) -> list[str]:
        """The metric types stored (for ``host`` if given), but those in ``excluding``, found
        by an index skip-scan."""
        params: dict[str, Any] = {"host": host} if host is not None else {}
        if excluding:
            params["excluding"] = list(excluding)
        statement = sql.distinct_metric_types(host is not None, bool(excluding))
        return [row[0] for row in await self.session.execute(statement, params)]

    async def range(
        self,
        *,
        metric_type: str,
        start: datetime,
        end: datetime,
        host: str | None = None,
        limit: int = 500,
        after: After | None = None,
    ) -> SnapshotPage:
        """Snapshots with ``start <= captured_at < end`` oldest first, ``limit`` per page.

        Keyset pagination: pass the decoded ``next_cursor`` as ``after`` to get the following
        page; unlike offsets it stays fast and stable while the sampler keeps inserting.
        """
        conditions = [
            MetricSnapshot.metric_type == metric_type,
            MetricSnapshot.captured_at >= start,
            MetricSnapshot.captured_at < end,
        ]
        if host is not None:
            conditions.append(MetricSnapshot.host == host)
        if after is not None:
            after_time, after_id = after
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

    async def downsample(
        self,
        *,
        host: str,
        metric_type: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str],
        step_seconds: int,
    ) -> list[Bucket]:
        """Buckets of ``step_seconds`` (aligned to the Unix epoch) over ``[start, end)`` with
        avg/min/max per field, oldest first. Buckets without any snapshot are left out; values
        that are missing or not numbers (null, strings, booleans, objects) are ignored. Raw
        snapshots only: ``MetricsService.series`` reads the tiers where they serve
        (``metrics/tiers/series.py``)."""
        rows = await self._per_bucket(
            sql.SnapshotQueries.downsample, host, metric_type, fields, start, end, step_seconds
        )
        # Column i of field k is 2 + 3k + i (avg, min, max). Positional arguments and no
        # needless time-zone conversion: an hour at 5 s is 720 buckets per request.
        columns = [(path, 2 + 3 * i) for i, path in enumerate(fields)]
        return [
            Bucket(
                bucket_time(row[0]),
                int(row[1]),
                {
                    path: FieldStats(rounded(row[at]), rounded(row[at + 1]), rounded(row[at + 2]))
                    for path, at in columns
                },
            )
            for row in rows
        ]

    async def bucket_totals(
        self,
        host: str,
        metric_type: str,
        paths: Sequence[str],
        start: datetime,
        end: datetime,
        step_seconds: int,
    ) -> Totals:
        """The buckets of ``step_seconds`` in ``[start, end)`` that hold snapshots, as totals
        (to merge with the tiers' in ``metrics/tiers/series.py``), oldest first."""
        rows = await self._per_bucket(
            sql.SnapshotQueries.totals, host, metric_type, paths, start, end, step_seconds
        )
        return [(as_epoch_seconds(row[0]), MinuteTotals.from_row(row[1:])) for row in rows]

    async def _per_bucket(
        self,
        statement: Callable[[sql.SnapshotQueries], str],
        host: str,
        metric_type: str,
        paths: Sequence[str],
        start: datetime,
        end: datetime,
        step_seconds: int,
    ) -> Sequence[Any]:
        queries = sql.SnapshotQueries(self._dialect(), paths)
        params = {
            **_range(host, metric_type, start, end),
            **queries.params,
            **queries.bucket_params(step_seconds),
        }
        return (await self.session.execute(sql.typed(statement(queries)), params)).all()

    async def summarize(
        self,
        *,
        host: str,
        metric_type: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str],
    ) -> RangeSummary:
        """min/avg/max/p95 per field over ``[start, end)``.

        PostgreSQL: one statement, ``percentile_cont(0.95)``. SQLite has no percentile
        aggregate: after the count/min/avg/max statement, one ``ORDER BY … LIMIT 2 OFFSET k``
        query per field fetches the two values around rank ``0.95 * (n - 1)`` and interpolates
        as ``percentile_cont`` does; no more than two rows per field reach Python.
        """
        queries = sql.SnapshotQueries(self._dialect(), fields)
        params = {**_range(host, metric_type, start, end), **queries.params}
        row = (await self.session.execute(sql.typed(queries.summary()), params)).one()
        width = 5 if queries.postgres else 4  # count, min, avg, max (, p95)
        summaries: dict[str, FieldSummary] = {}
        for i, path in enumerate(fields):
            count, low, avg, high, *p95 = row[1 + width * i : 1 + width * (i + 1)]
            if not queries.postgres:
                p95 = [await self._sqlite_p95(queries, i, int(count), params)]
            summaries[path] = FieldSummary(
                int(count), rounded(low), rounded(avg), rounded(high), rounded(p95[0])
            )
        return RangeSummary(count=int(row[0]), fields=summaries)

    async def _sqlite_p95(
        self, queries: sql.SnapshotQueries, index: int, count: int, params: dict[str, Any]
    ) -> float | None:
        if count == 0:
            return None
        rank = 0.95 * (count - 1)
        lower = math.floor(rank)
        statement = sql.typed(queries.nth_values(index))
        result = await self.session.execute(statement, {**params, "offset": lower})
        values = [float(value) for value in result.scalars()]
        if len(values) == 1 or rank == lower:
            return values[0]
        return values[0] + (values[1] - values[0]) * (rank - lower)

    async def hosts_last_seen(self) -> list[HostSeen]:
        """Every host with its newest snapshot time (overall and per type), by host name.

        Index skip-scans in one statement: hosts, then each host's types through the unique
        index (host, metric_type, captured_at), then the newest row of each pair (on
        PostgreSQL an ordered append that stops in the newest partition holding one).
        """
        seen: dict[str, dict[str, datetime]] = {}
        for host, metric_type, last_seen in await self.session.execute(sql.HOSTS_LAST_SEEN):
            if last_seen is not None:
                seen.setdefault(host, {})[metric_type] = last_seen
        return [
            HostSeen(host=host, last_seen=max(types.values()), metric_types=types)
            for host, types in seen.items()
        ]

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name
