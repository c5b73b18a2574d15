"""Per-minute rollups (``metric_rollups_1m``), materialised when a series first reads a minute.

Why: 24 h of 1 s snapshots are 86,400 JSON documents to open on every request; the same day as
per-minute totals is 1,440 rows per field, read through the primary key.

How (:func:`rolled_up_minutes`): the range is cut into a head (the partial minute it starts
in), a middle of whole minutes that have settled (they end ``SETTLE_SECONDS`` before now or
earlier) and a tail (a partial last minute, or minutes still being written). The middle comes
from the table; the minutes missing there are computed from ``metric_snapshots`` (one grouped
query per run of missing minutes, reusing the series' value extraction) and stored for the next
request, one row per field with the minute's snapshot count beside the field's count, sum, min
and max. Head and tail always come from ``metric_snapshots``. A minute without snapshots gets
no rows: it is looked up again next time (an index probe that finds nothing) and never becomes
a bucket. Buckets are then merged from minutes: counts and sums add up, avg = sum / count.

Late rows: whoever stores rows older than ``LATE_ROW_SECONDS`` (the writer's spool replay, the
seed) calls :meth:`RollupRepository.forget_late` in the same transaction, which deletes the
rollups of the minutes they fall in. On PostgreSQL a transaction-scoped advisory lock per
(host, type) orders that against a reader computing missing minutes, so a rollup computed
before late rows committed cannot be stored after their invalidation ran. SQLite needs no
lock: a transaction that read before another one committed cannot write, so such a store fails
and is skipped.

Retention: :meth:`RollupRepository.prune_before_oldest_snapshots` (hourly, from the maintenance
loop in ``db/partitions.py``) deletes rollups older than the oldest snapshot kept for their
host and type, whatever removed the snapshots.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, TextClause, bindparam, delete, func, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.db.types import UTCDateTime, utcnow
from perfwatch.metrics.buckets import MINUTE, ceil_minute, floor_minute, from_epoch
from perfwatch.metrics.records import Minutes, MinuteTotals
from perfwatch.models import MetricRollup, MetricSnapshot

logger = logging.getLogger("perfwatch.metrics.rollups")

# Minutes this recent may still receive rows from a live batch: read raw, never stored.
SETTLE_SECONDS = 120
# A stored row older than this may fall in a minute already rolled up. Below SETTLE_SECONDS,
# so that a live batch delivered late still invalidates, with 30 s to spare for clock skew.
LATE_ROW_SECONDS = 90
# Runs of missing minutes this close together are read in one query (a few minutes of extra
# rows cost less than a round trip), and never more than MAX_RAW_READS queries per series.
JOIN_GAP_SECONDS = 10 * MINUTE
MAX_RAW_READS = 8

# The minutes of [start, end) that hold snapshots, computed from metric_snapshots.
RawMinutes = Callable[[datetime, datetime], Awaitable[Minutes]]

_LOCK_KEY = (
    "hashtextextended('perfwatch.rollups:' || CAST(:host AS text) || '/' || :metric_type, 0)"
)
_HOLD_OFF_INVALIDATION = text(f"SELECT pg_advisory_xact_lock_shared({_LOCK_KEY})")
_EXCLUDE_READERS = text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
_POSTGRES_INSERT = text(
    "INSERT INTO metric_rollups_1m (host, metric_type, field, minute, snapshot_count, "
    "value_count, value_sum, value_min, value_max) "
    "SELECT CAST(:host AS varchar), CAST(:metric_type AS varchar), r.* "
    "FROM unnest(CAST(:fields AS varchar[]), CAST(:minutes AS timestamptz[]), "
    "CAST(:snapshots AS integer[]), CAST(:counts AS integer[]), CAST(:sums AS float8[]), "
    "CAST(:mins AS float8[]), CAST(:maxs AS float8[])) AS r "
    "ON CONFLICT DO NOTHING"
)


@functools.cache
def _read_statement(postgres: bool, fields: int) -> TextClause:
    """The complete minutes of ``[first, last)``: their start, then the columns of
    :meth:`MinuteTotals.from_row`. One
    field is a range of the primary key; several are pivoted into one row per minute by the
    database, so that one row per minute reaches Python whatever the number of fields."""
    if postgres:
        epoch = "CAST(extract(epoch FROM minute) AS bigint)"
    else:
        epoch = "CAST(strftime('%s', minute) AS INTEGER)"
    where = (
        "FROM metric_rollups_1m WHERE host = :host AND metric_type = :metric_type "
        "AND minute >= :first AND minute < :last"
    )
    if fields == 1:
        statement = (
            f"SELECT {epoch}, snapshot_count, value_count, value_sum, value_min, value_max "
            f"{where} AND field = :field_0"
        )
    else:
        pivoted = "".join(
            f", max(CASE WHEN field = :field_{i} THEN {column} END)"
            for i in range(fields)
            for column in ("value_count", "value_sum", "value_min", "value_max")
        )
        names = ", ".join(f":field_{i}" for i in range(fields))
        statement = (
            f"SELECT {epoch}, max(snapshot_count){pivoted} {where} AND field IN ({names}) "
            f"GROUP BY minute HAVING count(*) = {fields}"
        )
    return text(statement).bindparams(
        bindparam("first", type_=UTCDateTime()), bindparam("last", type_=UTCDateTime())
    )


async def rolled_up_minutes(
    rollups: RollupRepository,
    raw: RawMinutes,
    *,
    host: str,
    metric_type: str,
    fields: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> Minutes:
    """Per-minute totals of ``[start, end)``: settled whole minutes from the rollups (the
    missing ones computed and stored), the rest from ``raw``. Only minutes with snapshots."""
    first = ceil_minute(start)
    last = min(floor_minute(end), floor_minute(now - timedelta(seconds=SETTLE_SECONDS)))
    if first >= last:
        return await raw(start, end)
    minutes = await rollups.read(host, metric_type, fields, from_epoch(first), from_epoch(last))
    runs = missing_runs(minutes, first, last)
    if runs:
        await rollups.hold_off_invalidation(host, metric_type)
        computed: Minutes = {}
        for run_start, run_end in runs:
            computed.update(await raw(from_epoch(run_start), from_epoch(run_end)))
        # Joined runs also recomputed some stored minutes: fresher, but not worth a write.
        await rollups.store(
            host, metric_type, fields, {m: r for m, r in computed.items() if m not in minutes}
        )
        minutes.update(computed)
    if start < from_epoch(first):
        minutes.update(await raw(start, from_epoch(first)))
    if from_epoch(last) < end:
        minutes.update(await raw(from_epoch(last), end))
    return minutes


def missing_runs(present: Iterable[int], first: int, last: int) -> list[tuple[int, int]]:
    """``[start, end)`` runs of the minutes of ``[first, last)`` not in ``present``, joined
    across gaps of at most ``JOIN_GAP_SECONDS`` and then across the narrowest gaps until at
    most ``MAX_RAW_READS`` are left."""
    runs: list[tuple[int, int]] = []
    cursor = first
    for minute in sorted(present):
        if minute > cursor:
            runs.append((cursor, minute))
        cursor = minute + MINUTE
    if cursor < last:
        runs.append((cursor, last))
    if len(runs) <= 1:
        return runs
    gaps = sorted(
        (runs[i + 1][0] - runs[i][1], i)
        for i in range(len(runs) - 1)
        if runs[i + 1][0] - runs[i][1] > JOIN_GAP_SECONDS
    )
    kept_apart = {i for _, i in gaps[-(MAX_RAW_READS - 1) :]}
    joined = [runs[0]]
    for i, run in enumerate(runs[1:]):
        if i in kept_apart:
            joined.append(run)
        else:
            joined[-1] = (joined[-1][0], run[1])
    return joined


class RollupRepository:
    """Reads and writes ``metric_rollups_1m`` in the caller's transaction; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def read(
        self, host: str, metric_type: str, fields: Sequence[str], first: datetime, last: datetime
    ) -> Minutes:
        """The minutes of ``[first, last)`` stored for every one of ``fields`` (a minute that
        lacks one of them counts as missing)."""
        params: dict[str, Any] = {
            "host": host,
            "metric_type": metric_type,
            "first": first,
            "last": last,
            **{f"field_{i}": path for i, path in enumerate(fields)},
        }
        result = await self.session.execute(_read_statement(self._postgres(), len(fields)), params)
        return {int(row[0]): MinuteTotals.from_row(row[1:]) for row in result}

    async def hold_off_invalidation(self, host: str, metric_type: str) -> None:
        """Until this transaction ends, make :meth:`forget_late` for (host, type) wait; and wait
        for one in progress, so the snapshots read next include its rows (PostgreSQL)."""
        if self._postgres():
            await self.session.execute(
                _HOLD_OFF_INVALIDATION, {"host": host, "metric_type": metric_type}
            )

    async def store(
        self,
        host: str,
        metric_type: str,
        fields: Sequence[str],
        minutes: Mapping[int, MinuteTotals],
    ) -> bool:
        """Insert ``minutes``, skipping any row already there; False when the database refused
        (read-only, locked, …): logged, and the caller's transaction is left as it was."""
        rows: list[tuple[str, datetime, int, int, float | None, float | None, float | None]] = []
        for minute, totals in minutes.items():
            at = from_epoch(minute)
            for path, field in zip(fields, totals.fields, strict=True):
                if field.numbers:
                    low, high = float(field.low), float(field.high)  # type: ignore[arg-type]
                    rows.append((path, at, totals.snapshots, field.numbers, field.total, low, high))
                else:
                    rows.append((path, at, totals.snapshots, 0, None, None, None))
        if not rows:
            return True
        try:
            # A SAVEPOINT: a refused write must not abort the request's transaction.
            async with self.session.begin_nested():
                if self._postgres():
                    columns = list(zip(*rows, strict=True))
                    await self.session.execute(
                        _POSTGRES_INSERT,
                        {
                            "host": host,
                            "metric_type": metric_type,
                            "fields": list(columns[0]),
                            "minutes": list(columns[1]),
                            "snapshots": list(columns[2]),
                            "counts": list(columns[3]),
                            "sums": list(columns[4]),
                            "mins": list(columns[5]),
                            "maxs": list(columns[6]),
                        },
                    )
                else:
                    await self.session.execute(
                        sqlite_insert(MetricRollup).on_conflict_do_nothing(),
                        [
                            {
                                "host": host,
                                "metric_type": metric_type,
                                "field": path,
                                "minute": at,
                                "snapshot_count": snapshots,
                                "value_count": count,
                                "value_sum": total,
                                "value_min": low,
                                "value_max": high,
                            }
                            for path, at, snapshots, count, total, low, high in rows
                        ],
                    )
        except SQLAlchemyError as error:
            logger.info(
                "rollups of %s/%s not stored (%d rows), served anyway: %s",
                host,
                metric_type,
                len(rows),
                str(error).splitlines()[0],
            )
            return False
        return True

    async def forget_late(
        self, rows: Iterable[tuple[str, datetime, str]], now: datetime | None = None
    ) -> int:
        """Delete the rollups of the minutes that ``rows`` (host, captured_at, metric_type, just
        stored in this transaction) fall in, if any is older than ``LATE_ROW_SECONDS``. Live
        rows cost one pass over the batch and no statement. Returns the rollup rows deleted."""
        threshold = (now or utcnow()) - timedelta(seconds=LATE_ROW_SECONDS)
        spans: dict[tuple[str, str], list[datetime]] = {}
        for host, captured_at, metric_type in rows:
            if captured_at >= threshold:
                continue
            span = spans.get((host, metric_type))
            if span is None:
                spans[host, metric_type] = [captured_at, captured_at]
            elif captured_at < span[0]:
                span[0] = captured_at
            elif captured_at > span[1]:
                span[1] = captured_at
        deleted = 0
        # Sorted, so two writers cannot take each other's locks in opposite orders.
        for (host, metric_type), (low, high) in sorted(spans.items()):
            if self._postgres():
                # A separate statement: the DELETE's snapshot must be taken after the wait,
                # to see the rollups a reader holding the lock stored meanwhile.
                await self.session.execute(
                    _EXCLUDE_READERS, {"host": host, "metric_type": metric_type}
                )
            result = await self.session.execute(
                delete(MetricRollup).where(
                    MetricRollup.host == host,
                    MetricRollup.metric_type == metric_type,
                    MetricRollup.minute >= from_epoch(floor_minute(low)),
                    MetricRollup.minute <= from_epoch(floor_minute(high)),
                )
            )
            deleted += _rowcount(result)
        return deleted

    async def prune_before_oldest_snapshots(self) -> int:
        """Delete rollups older than the oldest snapshot stored for their host and type (all of
        them when none is left); returns how many. A partial first minute goes too: it is
        computed again from what is left if a series asks for it."""
        pairs = (
            await self.session.execute(
                select(MetricRollup.host, MetricRollup.metric_type).distinct()
            )
        ).all()
        deleted = 0
        for host, metric_type in pairs:
            oldest = await self.session.scalar(
                select(func.min(MetricSnapshot.captured_at)).where(
                    MetricSnapshot.host == host, MetricSnapshot.metric_type == metric_type
                )
            )
            statement = delete(MetricRollup).where(
                MetricRollup.host == host, MetricRollup.metric_type == metric_type
            )
            if oldest is not None:
                statement = statement.where(MetricRollup.minute < oldest)
            deleted += _rowcount(await self.session.execute(statement))
        return deleted


def _rowcount(result: Any) -> int:
    return max(int(cast("CursorResult[Any]", result).rowcount or 0), 0)
