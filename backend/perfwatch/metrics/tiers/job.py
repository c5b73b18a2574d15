"""The tier job: keeps ``metric_tier_1m`` and ``metric_tier_1h`` current, once a minute, in the
caller's transaction (the maintenance runner calls :func:`roll_up_tiers` and commits).

One call:

1. takes (deletes and returns) a bounded batch of the late-row marks of
   ``metric_tier_pending``;
2. rolls up the new settled minutes: from the watermark (``maintenance_state`` row ``tiers``;
   at first the minute of the oldest raw snapshot, or the newest settled minute when there is
   none) to the newest minute that ended ``SETTLE_SECONDS`` ago, at most ``max_minutes`` of
   them (catching up after an upgrade is bounded; the next call continues). Raw documents are
   read an hour at a time per host and type, so a day to catch up is never in memory at once;
3. recomputes from raw the marked minutes before the old watermark (a minute whose snapshots
   are all gone loses its row). Marks at or after it need nothing: step 2 read those minutes
   after the marks were taken, or a later call will;
4. recomputes the 1-hour row of every hour a minute row was written in or deleted from,
   including the current, partial hour, from the hour's 1-minute rows;
5. moves the watermark.

Why no minute is missed (PostgreSQL at READ COMMITTED, where each statement sees what was
committed before it began; SQLite serialises writers, and step 1 writes first, so the job's
transaction holds the write lock from its first statement on):

- A row stored on time for minute ``m`` (captured less than ``LATE_ROW_SECONDS`` = 90 s before
  the ingest's clock) was written before ``m + 60 + 90``. Step 2 reads ``m`` no earlier than
  ``m + 60 + SETTLE_SECONDS`` = ``m + 180``: the ingest had 30 s to commit (or the two clocks
  to differ). ``LATE_ROW_SECONDS < SETTLE_SECONDS`` is what makes that margin.
- A row stored late is marked in its own transaction, so mark and row become visible
  together. Step 1 deletes the marks it takes in the statement that reads them, and every raw
  read of steps 2 and 3 comes after it: a mark it took was committed with its rows, which those
  reads see. A mark committed later stays for the next call, and so does one set while step 1
  runs: on PostgreSQL the ingest's ``ON CONFLICT DO UPDATE`` locks an existing mark until the
  ingest commits (step 1's delete waits for it, then sees the rows), and an ingest marking a
  minute whose mark step 1 has deleted waits for the job to commit, then inserts a fresh mark.

Idempotent: a bucket is always recomputed whole from its source rows and upserted (an unchanged
one is not rewritten), so running a call again, or over the same minutes, changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.metrics.buckets import HOUR, MINUTE, floor_time
from perfwatch.metrics.repository import SnapshotRepository
from perfwatch.metrics.tiers.pending import SETTLE_SECONDS
from perfwatch.metrics.tiers.repository import PendingMinute, TierRepository, TierRow
from perfwatch.metrics.tiers.stats import BucketStats

# Raw documents are read at most an hour of one host and type per query; 1-minute rows at
# most a day (1,440) per query when hours are recomputed.
_RAW_CHUNK = timedelta(seconds=HOUR)
_HOURS_PER_READ = 24

# (host, metric_type, hour start): a 1-hour row to recompute.
HourKey = tuple[str, str, datetime]


@dataclass(frozen=True, slots=True)
class TierRollupReport:
    minutes_rolled: int  # settled minutes newly rolled up: how far the watermark moved
    pending_minutes: int  # marked minutes recomputed from raw
    minute_rows_written: int  # 1-minute rows stored (new and recomputed)
    hour_rows_written: int  # 1-hour rows stored
    watermark: datetime  # every minute before it is rolled up
    caught_up: bool  # False: a bound was reached, call again soon


async def roll_up_tiers(
    session: AsyncSession, *, now: datetime, max_minutes: int = 24 * 60
) -> TierRollupReport:
    """One run of the tier job (see the module's documentation); ``max_minutes`` bounds both
    the new minutes rolled up and the marked minutes taken."""
    if max_minutes < 1:
        raise ValueError(f"max_minutes must be at least 1, got {max_minutes}")
    tiers = TierRepository(session)
    marks = await tiers.take_pending(max_minutes)  # first: see the module's documentation
    settled = floor_time(now - timedelta(seconds=SETTLE_SECONDS), MINUTE)
    pairs = [
        (seen.host, metric_type, last_seen)
        for seen in await SnapshotRepository(session).hosts_last_seen()
        for metric_type, last_seen in seen.metric_types.items()
    ]
    watermark = await tiers.watermark()
    if watermark is None:
        watermark = await _first_watermark(tiers, pairs, settled)
    target = max(watermark, min(settled, watermark + timedelta(minutes=max_minutes)))

    work = _Rollup(tiers)
    active = [(host, metric_type) for host, metric_type, last in pairs if last >= watermark]
    await work.new_minutes(active, watermark, target)
    stale = [mark for mark in marks if mark.minute < watermark]
    await work.marked_minutes(stale)
    await work.hours()
    await tiers.set_watermark(target)
    return TierRollupReport(
        minutes_rolled=int((target - watermark).total_seconds()) // MINUTE,
        pending_minutes=len(stale),
        minute_rows_written=work.minute_rows,
        hour_rows_written=work.hour_rows,
        watermark=target,
        # >=: a clock set back leaves the watermark ahead of the settled minute, caught up.
        caught_up=target >= settled and len(marks) < max_minutes,
    )


async def _first_watermark(
    tiers: TierRepository, pairs: Sequence[tuple[str, str, datetime]], settled: datetime
) -> datetime:
    """The minute of the oldest raw snapshot (one index probe per host and type), or the newest
    settled minute when nothing older is stored."""
    first = settled
    for host, metric_type, _ in pairs:
        oldest = await tiers.oldest_snapshot(host, metric_type)
        if oldest is not None:
            first = min(first, floor_time(oldest, MINUTE))
    return first


class _Rollup:
    """The rows one call writes, and the hours they touch."""

    def __init__(self, tiers: TierRepository) -> None:
        self.tiers = tiers
        self.minute_rows = 0
        self.hour_rows = 0
        self.touched: set[HourKey] = set()

    async def new_minutes(
        self, pairs: Sequence[tuple[str, str]], start: datetime, end: datetime
    ) -> None:
        """Roll up ``[start, end)`` of every host and type in ``pairs``, an hour at a time."""
        low = start
        while low < end:
            high = min(floor_time(low, HOUR) + _RAW_CHUNK, end)
            rows: list[TierRow] = []
            for host, metric_type in pairs:
                documents = await self.tiers.documents(host, metric_type, low, high)
                rows.extend(minute_rows(host, metric_type, documents))
            await self._store_minutes(rows)
            low = high

    async def marked_minutes(self, marks: Sequence[PendingMinute]) -> None:
        """Recompute the marked minutes from raw, one query per run of adjacent minutes (an
        hour at most); a minute left without snapshots loses its row."""
        for (host, metric_type), group in groupby(marks, key=lambda mark: mark[:2]):
            minutes = [mark.minute for mark in group]
            for run in _runs(minutes, MINUTE, HOUR // MINUTE):
                end = run[-1] + timedelta(seconds=MINUTE)
                documents = await self.tiers.documents(host, metric_type, run[0], end)
                rows = minute_rows(host, metric_type, documents)
                await self._store_minutes(rows)
                kept = {row.bucket for row in rows}
                await self.tiers.delete(
                    "1m", host, metric_type, [minute for minute in run if minute not in kept]
                )
                self.touched.update((host, metric_type, floor_time(m, HOUR)) for m in run)

    async def hours(self) -> None:
        """Recompute every touched hour from its 1-minute rows (an hour without any loses its
        row), a day of one host and type per query."""
        for (host, metric_type), group in groupby(sorted(self.touched), key=lambda key: key[:2]):
            hours = [hour for _, _, hour in group]
            for run in _runs(hours, HOUR, _HOURS_PER_READ):
                end = run[-1] + timedelta(seconds=HOUR)
                merged: dict[datetime, BucketStats] = {}
                for bucket, snapshots, stats in await self.tiers.stored(
                    "1m", host, metric_type, run[0], end
                ):
                    hour = floor_time(bucket, HOUR)
                    minute = BucketStats.decode(snapshots, stats)
                    if hour in merged:
                        merged[hour].merge(minute)
                    else:
                        merged[hour] = minute
                rows = [
                    TierRow(host, metric_type, hour, stats.snapshots, stats.encode())
                    for hour, stats in merged.items()
                ]
                await self.tiers.upsert("1h", rows)
                self.hour_rows += len(rows)
                await self.tiers.delete(
                    "1h", host, metric_type, [hour for hour in run if hour not in merged]
                )

    async def _store_minutes(self, rows: Sequence[TierRow]) -> None:
        await self.tiers.upsert("1m", rows)
        self.minute_rows += len(rows)
        self.touched.update(
            (row.host, row.metric_type, floor_time(row.bucket, HOUR)) for row in rows
        )


def minute_rows(
    host: str, metric_type: str, documents: Sequence[tuple[datetime, str]]
) -> list[TierRow]:
    """One 1-minute row per minute of ``documents`` ((captured_at, JSON text), oldest first)."""
    rows: list[TierRow] = []
    minute: datetime | None = None
    stats = BucketStats()
    for captured_at, text in documents:
        start = floor_time(captured_at, MINUTE)
        if start != minute:
            if minute is not None:
                rows.append(TierRow(host, metric_type, minute, stats.snapshots, stats.encode()))
            minute, stats = start, BucketStats()
        document = json.loads(text)
        # A document that is no object (written by hand) still counts as a snapshot.
        stats.add(metric_type, document if isinstance(document, dict) else {})
    if minute is not None:
        rows.append(TierRow(host, metric_type, minute, stats.snapshots, stats.encode()))
    return rows


def _runs(moments: Sequence[datetime], width: int, longest: int) -> Iterator[list[datetime]]:
    """Sorted, distinct ``moments`` cut into runs ``width`` seconds apart, ``longest`` at most."""
    step = timedelta(seconds=width)
    run: list[datetime] = []
    for moment in moments:
        if run and (moment - run[-1] != step or len(run) == longest):
            yield run
            run = []
        run.append(moment)
    if run:
        yield run
