"""Snapshot storage: idempotent bulk inserts, latest-per-type lookups and keyset-paged ranges."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from sqlalchemy import CursorResult, String, TextClause, and_, bindparam, column, or_, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from perfwatch.contract.metrics import EncodedSnapshot, SnapshotRow
from perfwatch.db.types import UTCDateTime, utcnow
from perfwatch.errors import InvalidQueryError
from perfwatch.kit.repository import MAX_PAGE_SIZE, Repository
from perfwatch.metrics.rollups import (
    MINUTE,
    Minutes,
    RollupRepository,
    epoch_seconds,
    from_epoch,
    rolled_up_minutes,
)
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


# ----- read side for the HTTP API: downsampled series, summaries, hosts ----------------------
# A field is a dotted path into the document ("percent", "virtual.percent", "load_average.1m",
# "per_core.0"). Only this shape is accepted; the path then travels as a bound parameter (a
# text[] for PostgreSQL's #>, a JSON path for SQLite's json_extract), never as SQL text.
FIELD_PATH_PATTERN = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
MAX_FIELD_PATH_LENGTH = 200
MAX_FIELD_PATH_DEPTH = 8
MAX_FIELDS = 20
# Origin of the time buckets: buckets are aligned to whole multiples of the step since the Unix
# epoch, so a chart refreshed a few seconds later gets the same bucket boundaries.
_BUCKET_ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)


def validate_fields(fields: Sequence[str]) -> list[str]:
    """The requested field paths, checked and de-duplicated (order kept)."""
    if isinstance(fields, str):
        fields = [fields]
    if not fields:
        raise InvalidQueryError("name at least one numeric field, e.g. fields=percent")
    unique = list(dict.fromkeys(fields))
    if len(unique) > MAX_FIELDS:
        raise InvalidQueryError(f"at most {MAX_FIELDS} fields per query, got {len(unique)}")
    for path in unique:
        if (
            not isinstance(path, str)
            or len(path) > MAX_FIELD_PATH_LENGTH
            or FIELD_PATH_PATTERN.fullmatch(path) is None
        ):
            raise InvalidQueryError(
                f"field {str(path)[:80]!r} is not a valid path: use dot-separated names of "
                "letters, digits and underscores, e.g. 'percent', 'virtual.percent', "
                "'load_average.1m'"
            )
        if path.count(".") >= MAX_FIELD_PATH_DEPTH:
            raise InvalidQueryError(
                f"field {path!r} is nested too deeply (at most {MAX_FIELD_PATH_DEPTH} levels)"
            )
    return unique


def _sqlite_json_path(path: str) -> str:
    """``a.b.0`` → ``$."a"."b"[0]``: keys quoted (safe: the pattern allows no quote), a segment
    of digits only is an array index (``per_core.0``). PostgreSQL's ``#>`` resolves a digit
    segment as an array index or an object key, whichever the value is; SQLite treats it as an
    index only."""
    parts = ["$"]
    for segment in path.split("."):
        parts.append(f"[{segment}]" if segment.isdigit() else f'."{segment}"')
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class FieldStats:
    avg: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket ``[start, start + step)``: ``count`` snapshots, stats per field (None
    where no snapshot of the bucket had a number at that path)."""

    start: datetime
    count: int
    fields: dict[str, FieldStats]


@dataclass(frozen=True, slots=True)
class FieldSummary:
    count: int  # snapshots with a number at this path
    min: float | None
    avg: float | None
    max: float | None
    p95: float | None  # continuous percentile (interpolated), as percentile_cont(0.95)


@dataclass(frozen=True, slots=True)
class RangeSummary:
    count: int  # snapshots in the range
    fields: dict[str, FieldSummary]


@dataclass(frozen=True, slots=True)
class HostSeen:
    host: str
    last_seen: datetime
    metric_types: dict[str, datetime]  # type → its newest snapshot's time


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _buckets_from_minutes(
    minutes: Minutes, paths: Sequence[str], step_seconds: int
) -> list[Bucket]:
    """Per-minute rows (``rollups.MinuteRow``) merged into epoch-aligned buckets of
    ``step_seconds`` (a multiple of 60): counts and sums add up, the average is their ratio."""
    buckets: list[Bucket] = []
    start: int | None = None
    merged: list[Any] = []
    for minute in sorted(minutes):
        row = minutes[minute]
        bucket = minute - minute % step_seconds
        if bucket != start:
            if start is not None:
                buckets.append(_bucket(start, merged, paths))
            start, merged = bucket, list(row)
            continue
        merged[0] += row[0]
        for k in range(1, len(row), 4):
            if not row[k]:
                continue
            if not merged[k]:
                merged[k : k + 4] = row[k : k + 4]
                continue
            merged[k] += row[k]
            merged[k + 1] += row[k + 1]
            merged[k + 2] = min(merged[k + 2], row[k + 2])
            merged[k + 3] = max(merged[k + 3], row[k + 3])
    if start is not None:
        buckets.append(_bucket(start, merged, paths))
    return buckets


def _bucket(start: int, row: Sequence[Any], paths: Sequence[str]) -> Bucket:
    fields = {}
    for i, path in enumerate(paths):
        count, total, low, high = row[1 + 4 * i : 5 + 4 * i]
        if count:
            fields[path] = FieldStats(avg=total / count, min=float(low), max=float(high))
        else:
            fields[path] = FieldStats(avg=None, min=None, max=None)
    return Bucket(start=from_epoch(start), count=row[0], fields=fields)


class _SnapshotQueries:
    """SQL text of the read-side queries for one dialect; field values are bound parameters."""

    def __init__(self, dialect: str, fields: Sequence[str]) -> None:
        self.postgres = dialect == "postgresql"
        # PostgreSQL: OFFSET 0 stops the planner from merging the inner query into the outer.
        self.fence = " OFFSET 0" if self.postgres else ""
        self.fields = list(fields)
        self.params: dict[str, Any] = {}
        self.values: list[str] = []  # SQL expression of field i's number (NULL if not one)
        for index, path in enumerate(self.fields):
            name = f"path_{index}"
            if self.postgres:
                # jsonb_typeof guards the cast: strings, booleans, null and objects give NULL.
                # The text form (#>>) of a JSON number casts to double precision directly.
                self.params[name] = path.split(".")
                self.values.append(
                    f"CASE WHEN jsonb_typeof(s.metric_data #> CAST(:{name} AS text[])) = 'number' "
                    f"THEN CAST(s.metric_data #>> CAST(:{name} AS text[]) AS double precision) END"
                )
            else:
                self.params[name] = _sqlite_json_path(path)
                self.values.append(
                    f"CASE WHEN json_type(s.metric_data, :{name}) IN ('integer', 'real') "
                    f"THEN json_extract(s.metric_data, :{name}) END"
                )

    # The rows of one host and type in [start, end): served by the unique index
    # (host, metric_type, captured_at) and, on PostgreSQL, pruned to the day partitions.
    WHERE = (
        "s.host = :host AND s.metric_type = :metric_type "
        "AND s.captured_at >= :start AND s.captured_at < :end"
    )

    def value_columns(self) -> str:
        return ", ".join(f"{value} AS v{index}" for index, value in enumerate(self.values))

    def downsample(self) -> str:
        return self._per_bucket(
            "".join(f", avg(v.v{i}), min(v.v{i}), max(v.v{i})" for i in range(len(self.fields)))
        )

    def totals(self) -> str:
        """Per bucket: snapshots, then per field the count, sum, min and max of its numbers."""
        # SQLite's sum() of integers is an integer that can overflow; total() is a float.
        total = "sum" if self.postgres else "total"
        return self._per_bucket(
            "".join(
                f", count(v.v{i}), {total}(v.v{i}), min(v.v{i}), max(v.v{i})"
                for i in range(len(self.fields))
            )
        )

    def _per_bucket(self, aggregates: str) -> str:
        if self.postgres:
            bucket = (
                "date_bin(CAST(:width AS interval), s.captured_at, CAST(:origin AS timestamptz))"
            )
        else:
            # Whole seconds since the epoch, floored to a multiple of the step (also below 0).
            epoch = "CAST(strftime('%s', s.captured_at) AS INTEGER)"
            bucket = f"({epoch} - ((({epoch} % :step) + :step) % :step))"
        # OFFSET 0 keeps the inner query a separate step: each value is extracted once per row
        # (not once per aggregate), and the planner, blind to the bucket's statistics, groups
        # the few buckets in a hash table instead of sorting every row.
        return (
            f"SELECT v.bucket, count(*){aggregates} "
            f"FROM (SELECT {bucket} AS bucket, {self.value_columns()} "
            f"FROM metric_snapshots s WHERE {self.WHERE}{self.fence}) AS v "
            "GROUP BY v.bucket ORDER BY v.bucket"
        )

    def summary(self) -> str:
        parts = []
        for i in range(len(self.fields)):
            parts.append(f"count(v.v{i}), min(v.v{i}), avg(v.v{i}), max(v.v{i})")
            if self.postgres:
                parts.append(f"percentile_cont(0.95) WITHIN GROUP (ORDER BY v.v{i})")
        return (
            f"SELECT count(*), {', '.join(parts)} "
            f"FROM (SELECT {self.value_columns()} "
            f"FROM metric_snapshots s WHERE {self.WHERE}{self.fence}) AS v"
        )

    def nth_values(self, index: int) -> str:
        """SQLite's percentile: the sorted numbers of field ``index`` from an offset."""
        return (
            f"SELECT v.v{index} FROM (SELECT {self.values[index]} AS v{index} "
            f"FROM metric_snapshots s WHERE {self.WHERE}) AS v "
            f"WHERE v.v{index} IS NOT NULL ORDER BY v.v{index} LIMIT 2 OFFSET :offset"
        )


def _range_params(host: str, metric_type: str, start: datetime, end: datetime) -> dict[str, Any]:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidQueryError("start and end must be timezone-aware")
    if start >= end:
        raise InvalidQueryError("start must be before end")
    return {"host": host, "metric_type": metric_type, "start": start, "end": end}


def _typed(statement: str) -> TextClause:
    return text(statement).bindparams(
        bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    )


_HOSTS_LAST_SEEN = text(
    "WITH RECURSIVE hosts(host) AS ("
    " SELECT (SELECT host FROM metric_snapshots ORDER BY host LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT m.host FROM metric_snapshots m WHERE m.host > hosts.host"
    "  ORDER BY m.host LIMIT 1) FROM hosts WHERE hosts.host IS NOT NULL"
    "), pairs(host, metric_type) AS ("
    " SELECT h.host, (SELECT m.metric_type FROM metric_snapshots m WHERE m.host = h.host"
    "  ORDER BY m.metric_type LIMIT 1) FROM hosts h WHERE h.host IS NOT NULL"
    " UNION ALL"
    " SELECT p.host, (SELECT m.metric_type FROM metric_snapshots m WHERE m.host = p.host"
    "  AND m.metric_type > p.metric_type ORDER BY m.metric_type LIMIT 1)"
    " FROM pairs p WHERE p.metric_type IS NOT NULL"
    ") SELECT p.host, p.metric_type, (SELECT m.captured_at FROM metric_snapshots m"
    " WHERE m.host = p.host AND m.metric_type = p.metric_type"
    " ORDER BY m.captured_at DESC LIMIT 1) AS last_seen"
    " FROM pairs p WHERE p.metric_type IS NOT NULL ORDER BY p.host, p.metric_type"
).columns(
    column("host", String()), column("metric_type", String()), column("last_seen", UTCDateTime())
)


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
                "hosts": [record.host for record in records],
                "times": [record.captured_at for record in records],
                "types": [record.metric_type for record in records],
                "documents": [record.document for record in records],
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

    async def downsample(
        self,
        *,
        host: str,
        metric_type: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str],
        step_seconds: int,
        use_rollups: bool = True,
        now: datetime | None = None,
    ) -> list[Bucket]:
        """Buckets of ``step_seconds`` (aligned to the Unix epoch) over ``[start, end)`` with
        avg/min/max per field, oldest first. Buckets without any snapshot are left out; values
        that are missing or not numbers (null, strings, booleans, objects) are ignored.

        A width of whole minutes is assembled from per-minute rollups (``metrics/rollups.py``),
        which may store the minutes they lacked in the session's transaction (in a savepoint: a
        refused write is logged and skipped). ``now`` (default: the clock) decides which minutes
        have settled; ``use_rollups=False`` reads ``metric_snapshots`` alone.
        """
        paths = validate_fields(fields)
        _range_params(host, metric_type, start, end)
        if not isinstance(step_seconds, int) or step_seconds < 1:
            raise InvalidQueryError(
                f"step must be a whole number of seconds ≥ 1, got {step_seconds}"
            )
        if use_rollups and step_seconds % MINUTE == 0:

            async def raw(low: datetime, high: datetime) -> Minutes:
                return await self.minute_totals(host, metric_type, paths, low, high)

            minutes = await rolled_up_minutes(
                RollupRepository(self.session),
                raw,
                host=host,
                metric_type=metric_type,
                fields=paths,
                start=start,
                end=end,
                now=now or utcnow(),
            )
            return _buckets_from_minutes(minutes, paths, step_seconds)
        rows = await self._per_bucket(
            _SnapshotQueries.downsample, host, metric_type, paths, start, end, step_seconds
        )
        # Positional arguments and no needless time-zone conversion: an hour at 5 s is 720
        # buckets per request, and this loop was a fifth of the request's CPU.
        columns = [(path, 2 + 3 * i) for i, path in enumerate(paths)]
        buckets = []
        for row in rows:
            bucket_start = row[0]
            if not isinstance(bucket_start, datetime):
                bucket_start = _BUCKET_ORIGIN + timedelta(seconds=int(bucket_start))
            elif bucket_start.tzinfo is not UTC:
                bucket_start = bucket_start.astimezone(UTC)
            stats = {
                path: FieldStats(_float(row[at]), _float(row[at + 1]), _float(row[at + 2]))
                for path, at in columns
            }
            buckets.append(Bucket(bucket_start, int(row[1]), stats))
        return buckets

    async def minute_totals(
        self, host: str, metric_type: str, paths: Sequence[str], start: datetime, end: datetime
    ) -> Minutes:
        """The minutes of ``[start, end)`` that hold snapshots, as ``rollups.MinuteRow``
        computed from the snapshots (what rollups store). ``paths`` must be validated."""
        rows = await self._per_bucket(
            _SnapshotQueries.totals, host, metric_type, paths, start, end, MINUTE
        )
        return {
            epoch_seconds(row[0]) if isinstance(row[0], datetime) else int(row[0]): tuple(row[1:])
            for row in rows
        }

    async def _per_bucket(
        self,
        statement: Callable[[_SnapshotQueries], str],
        host: str,
        metric_type: str,
        paths: Sequence[str],
        start: datetime,
        end: datetime,
        step_seconds: int,
    ) -> Sequence[Any]:
        params = _range_params(host, metric_type, start, end)
        queries = _SnapshotQueries(self._dialect(), paths)
        params.update(queries.params)
        if queries.postgres:
            params.update(width=timedelta(seconds=step_seconds), origin=_BUCKET_ORIGIN)
        else:
            params["step"] = step_seconds
        return (await self.session.execute(_typed(statement(queries)), params)).all()

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
        paths = validate_fields(fields)
        params = _range_params(host, metric_type, start, end)
        queries = _SnapshotQueries(self._dialect(), paths)
        params.update(queries.params)
        row = (await self.session.execute(_typed(queries.summary()), params)).one()
        width = 5 if queries.postgres else 4
        summaries: dict[str, FieldSummary] = {}
        for i, path in enumerate(paths):
            base = 1 + width * i
            count = int(row[base])
            if queries.postgres:
                p95 = _float(row[base + 4])
            else:
                p95 = await self._sqlite_p95(queries, i, count, params)
            summaries[path] = FieldSummary(
                count=count,
                min=_float(row[base + 1]),
                avg=_float(row[base + 2]),
                max=_float(row[base + 3]),
                p95=p95,
            )
        return RangeSummary(count=int(row[0]), fields=summaries)

    async def _sqlite_p95(
        self, queries: _SnapshotQueries, index: int, count: int, params: dict[str, Any]
    ) -> float | None:
        if count == 0:
            return None
        rank = 0.95 * (count - 1)
        lower = math.floor(rank)
        values = [
            float(value)
            for value in (
                await self.session.execute(
                    _typed(queries.nth_values(index)), {**params, "offset": lower}
                )
            ).scalars()
        ]
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
        for host, metric_type, last_seen in await self.session.execute(_HOSTS_LAST_SEEN):
            if last_seen is not None:
                seen.setdefault(host, {})[metric_type] = last_seen
        return [
            HostSeen(host=host, last_seen=max(types.values()), metric_types=types)
            for host, types in seen.items()
        ]

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name
