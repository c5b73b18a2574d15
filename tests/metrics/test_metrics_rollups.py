"""Per-minute rollups (``metric_rollups_1m``) on PostgreSQL and SQLite: a series assembled from
them equals the series read from the snapshots alone; minutes are stored once settled and only
when they hold snapshots; a refused write does not fail the read; late rows (spool replay, by
INSERT or COPY) invalidate the minutes they fall in while live batches issue no DELETE; and
rollups older than the snapshots kept are pruned."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from perfwatch.contract.metrics import SnapshotRow, encode_snapshot
from perfwatch.db.engine import build_engine
from perfwatch.db.session import make_sessionmaker, unit_of_work
from perfwatch.metrics.buckets import epoch_seconds
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.maintenance import run_maintenance
from perfwatch.metrics.records import Bucket, FieldTotals, MinuteTotals
from perfwatch.metrics.repository import SnapshotRepository
from perfwatch.metrics.rollups import (
    JOIN_GAP_SECONDS,
    MAX_RAW_READS,
    SETTLE_SECONDS,
    RollupRepository,
    missing_runs,
)
from perfwatch.metrics.service import LatestLookupStats, MetricsService
from perfwatch.models import MetricRollup, MetricSnapshot
from perfwatch.sampler.spool import Spool
from perfwatch.sampler.writer import COPY_MIN_ROWS, SnapshotWriter
from tests.support.helpers import make_settings

# One minute with one snapshot whose one field is 5.
FIVE = MinuteTotals(1, (FieldTotals(1, 5.0, 5.0, 5.0),))
HOST = "rollup-host"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # long settled: every whole minute may roll up
LONG_AFTER = T0 + timedelta(days=2)
FIELDS = ["percent", "load_average.1m", "per_core.1", "absent.path"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ----- helpers ---------------------------------------------------------------------------------
def random_value(rng: random.Random) -> Any:
    """Mostly numbers (ints and floats, negative too), sometimes what the series must ignore."""
    draw = rng.random()
    if draw < 0.45:
        return round(rng.uniform(-50, 150), 3)
    if draw < 0.75:
        return rng.randint(-(10**12), 10**12)
    return rng.choice([None, "42", True, False, {"nested": 1}, [1, 2], "n/a"])


def random_document(rng: random.Random) -> dict[str, Any]:
    document: dict[str, Any] = {"schema_version": 1}
    if rng.random() < 0.9:
        document["percent"] = random_value(rng)
    if rng.random() < 0.8:
        document["load_average"] = {"1m": random_value(rng)} if rng.random() < 0.9 else "n/a"
    if rng.random() < 0.7:
        document["per_core"] = [random_value(rng) for _ in range(rng.randint(0, 3))]
    return document


def random_rows(rng: random.Random, minutes: int, host: str = HOST) -> list[SnapshotRow]:
    """Snapshots at irregular instants (fractions of seconds, exact minute starts, gaps of
    whole empty minutes) over ``minutes`` minutes from T0."""
    rows = []
    moment = 0.0
    while moment < minutes * 60:
        rows.append(SnapshotRow(host, at(moment), "cpu", random_document(rng)))
        draw = rng.random()
        if draw < 0.02:
            moment += rng.randint(2, 6) * 60 + rng.random()  # empty minutes
        elif draw < 0.05:
            moment = (moment // 60 + 1) * 60  # exactly on the next minute's start
        else:
            moment += rng.choice([1, 1, 1, 2, 3.5, 0.25])
    return rows


def assert_same_buckets(rolled: list[Bucket], raw: list[Bucket]) -> None:
    assert [b.start for b in rolled] == [b.start for b in raw]
    for mine, theirs in zip(rolled, raw, strict=True):
        assert mine.count == theirs.count, mine.start
        assert mine.fields.keys() == theirs.fields.keys()
        for path, stats in mine.fields.items():
            expected = theirs.fields[path]
            assert (stats.min, stats.max) == (expected.min, expected.max), (mine.start, path)
            if expected.avg is None:
                assert stats.avg is None
            else:
                assert stats.avg is not None
                assert math.isclose(stats.avg, expected.avg, rel_tol=1e-9, abs_tol=1e-6)


async def both_ways(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    step: int,
    fields: list[str],
    now: datetime = LONG_AFTER,
    host: str = HOST,
) -> list[Bucket]:
    """The series through the rollups, checked against the snapshots-only series."""
    repository = SnapshotRepository(session)
    arguments: dict[str, Any] = {
        "host": host,
        "metric_type": "cpu",
        "start": start,
        "end": end,
        "fields": fields,
        "step_seconds": step,
    }
    rolled = await repository.downsample(**arguments, now=now)
    raw = await repository.downsample(**arguments, use_rollups=False)
    assert_same_buckets(rolled, raw)
    return rolled


async def stored_minutes(session: AsyncSession, field: str = "percent") -> dict[datetime, int]:
    """Rolled-up minutes of ``field`` with their snapshot counts."""
    rows = await session.execute(
        select(MetricRollup.minute, MetricRollup.snapshot_count).where(
            MetricRollup.host == HOST, MetricRollup.field == field
        )
    )
    return {minute: count for minute, count in rows}


# ----- same answers as the snapshots ----------------------------------------------------------
async def test_rollups_give_the_same_series_as_the_snapshots_on_random_data(
    session: AsyncSession,
) -> None:
    rng = random.Random(20261127)
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(random_rows(rng, 240))

    # Cold, then overlapping (runs missing on both sides), then repeated (warm), with
    # unaligned ends, several widths and field sets (a new field makes stored minutes missing).
    await both_ways(session, at(30 * 60), at(90 * 60), 60, ["percent"])
    await both_ways(session, at(0), at(240 * 60), 60, ["percent"])
    await both_ways(session, at(0), at(240 * 60), 60, FIELDS)
    for _ in range(25):
        start = at(rng.uniform(-300, 200 * 60))
        end = start + timedelta(seconds=rng.uniform(1, 150 * 60))
        step = rng.choice([60, 60, 120, 300, 900, 3600])
        fields = rng.sample(FIELDS, rng.randint(1, len(FIELDS)))
        await both_ways(session, start, end, step, fields)
    # "Now" inside the range: the unsettled minutes come from the snapshots, as does a range
    # that lies entirely within them.
    now = at(100 * 60 + 17.5)
    await both_ways(session, at(10.5), at(200 * 60), 60, FIELDS, now=now)
    await both_ways(session, now - timedelta(seconds=100), now, 60, FIELDS, now=now)
    # Before the first snapshot and beyond the last one.
    await both_ways(session, at(-3600), at(300 * 60 + 0.5), 300, FIELDS)


async def test_the_service_serves_minutes_from_the_rollups(session: AsyncSession) -> None:
    rng = random.Random(7)
    # No empty minute: a run of missing minutes is recomputed, and so are the stored minutes
    # a joined query crosses (fresher values win).
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(
        [SnapshotRow(HOST, at(s), "cpu", random_document(rng)) for s in range(1800)]
    )
    service = MetricsService(session, None, stats=LatestLookupStats())

    first = await service.series(
        HOST, "cpu", at(5), at(1800), ["percent"], step=timedelta(seconds=60)
    )
    assert await stored_minutes(session)
    # Prove the second answer comes from the table: change a stored document behind its back.
    await session.execute(
        update(MetricSnapshot)
        .where(MetricSnapshot.host == HOST, MetricSnapshot.captured_at >= at(600))
        .values(metric_data={"percent": 1e9})
    )
    second = await service.series(
        HOST, "cpu", at(5), at(1800), ["percent"], step=timedelta(seconds=60)
    )
    assert second.buckets == first.buckets


async def test_only_settled_minutes_with_snapshots_are_stored(session: AsyncSession) -> None:
    rows = [
        SnapshotRow(HOST, at(minute * 60 + second), "cpu", {"percent": minute})
        for minute in (0, 1, 3, 4, 5, 6, 7, 8, 9)  # minute 2 holds nothing
        for second in (0, 20.5, 59.999)
    ]
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows)
    now = at(10 * 60 + 5)  # minutes 8 and 9 end less than SETTLE_SECONDS before now

    buckets = await both_ways(session, at(0), at(10 * 60), 60, ["percent"], now=now)

    assert [b.start for b in buckets] == [at(m * 60) for m in (0, 1, 3, 4, 5, 6, 7, 8, 9)]
    settled = (10 * 60 + 5 - SETTLE_SECONDS) // 60
    assert await stored_minutes(session) == {
        at(m * 60): 3 for m in (0, 1, 3, 4, 5, 6, 7) if m < settled
    }


async def test_a_minute_without_numbers_is_stored_as_a_count_of_zero(
    session: AsyncSession,
) -> None:
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(
        [SnapshotRow(HOST, at(s), "cpu", {"percent": "busy"}) for s in range(0, 60, 10)]
    )
    [bucket] = await both_ways(session, at(0), at(60), 60, ["percent"])
    assert bucket.count == 6
    [row] = (
        await session.execute(select(MetricRollup).where(MetricRollup.field == "percent"))
    ).scalars()
    assert (row.snapshot_count, row.value_count) == (6, 0)
    assert (row.value_sum, row.value_min, row.value_max) == (None, None, None)


async def test_widths_that_are_not_whole_minutes_read_the_snapshots_only(
    session: AsyncSession,
) -> None:
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(random_rows(random.Random(3), 20))
    for step in (1, 30, 90):
        await both_ways(session, at(0), at(1200), step, ["percent"])
    assert await stored_minutes(session) == {}


async def test_a_refused_rollup_write_does_not_fail_the_series(session: AsyncSession) -> None:
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(random_rows(random.Random(5), 20))
    postgres = session.get_bind().dialect.name == "postgresql"
    # A read-only replica (PostgreSQL), a read-only connection (SQLite).
    await session.execute(
        text("SET LOCAL transaction_read_only = on" if postgres else "PRAGMA query_only = ON")
    )
    try:
        await both_ways(session, at(0), at(1200), 60, FIELDS)
        assert await stored_minutes(session) == {}
    finally:
        if not postgres:
            await session.execute(text("PRAGMA query_only = OFF"))


def test_missing_runs_are_joined_across_narrow_gaps_and_capped() -> None:
    minute = 60
    assert missing_runs([], 0, 10 * minute) == [(0, 10 * minute)]
    assert missing_runs(range(0, 600, 60), 0, 600) == []
    assert missing_runs([120, 180], 0, 600) == [(0, 600)]  # a narrow gap: joined
    wide = JOIN_GAP_SECONDS + 60
    assert missing_runs(range(60, 60 + wide, 60), 0, wide + 120) == [
        (0, 60),
        (wide + 60, wide + 120),
    ]
    # A gap of at most JOIN_GAP_SECONDS between two runs: one query.
    present = range(60, 60 + JOIN_GAP_SECONDS, 60)
    assert missing_runs(present, 0, 2 * JOIN_GAP_SECONDS) == [(0, 2 * JOIN_GAP_SECONDS)]
    # Every other hour missing: never more than MAX_RAW_READS queries, widest gaps kept apart.
    hours = 3 * MAX_RAW_READS
    present = [m for m in range(0, hours * 3600, 60) if (m // 3600) % 2]
    runs = missing_runs(present, 0, hours * 3600)
    assert len(runs) == MAX_RAW_READS
    assert runs[0][0] == 0 and runs[-1][1] >= (hours - 2) * 3600


# ----- late rows --------------------------------------------------------------------------------
@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    statements: list[str]

    async def series(self, start: datetime, end: datetime, *, raw: bool = False) -> list[Bucket]:
        async with unit_of_work(self.sessions) as session:
            return await SnapshotRepository(session).downsample(
                host=HOST,
                metric_type="cpu",
                start=start,
                end=end,
                fields=["percent"],
                step_seconds=60,
                use_rollups=not raw,
            )

    async def rollup_minutes(self) -> dict[datetime, int]:
        async with self.sessions() as session:
            return await stored_minutes(session)

    def rollup_deletes(self) -> int:
        return sum(
            s.lstrip().upper().startswith("DELETE FROM METRIC_ROLLUPS_1M") for s in self.statements
        )


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    engine = build_engine(make_settings(fresh_db))
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    yield Database(engine, make_sessionmaker(engine), statements)
    await engine.dispose()


def minute_start(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@pytest.mark.parametrize("late_rows", [30, COPY_MIN_ROWS + 100])
async def test_a_replayed_spool_reaches_minutes_already_rolled_up(
    database: Database, tmp_path: Path, late_rows: int
) -> None:
    """An outage: the spool holds ``late_rows`` seconds from minute 3:30 on, while the rows
    around them are stored and their minutes rolled up. The large replay goes by COPY on
    PostgreSQL (no stored row inside its range), the small one by INSERT."""
    base = minute_start(datetime.now(UTC) - timedelta(hours=1))

    def second(n: int) -> SnapshotRow:
        return SnapshotRow(HOST, base + timedelta(seconds=n), "cpu", {"percent": n})

    gap = range(210, 210 + late_rows)
    total = -(-(210 + late_rows + 300) // 60) * 60  # whole minutes
    async with unit_of_work(database.sessions) as session:
        await SnapshotIngest(session).bulk_insert_ignore_conflicts(
            [second(n) for n in range(total) if n not in gap]
        )
    end = base + timedelta(seconds=total)
    before = await database.series(base, end)
    assert (await database.rollup_minutes())[base + timedelta(minutes=3)] == 30

    spool = Spool(tmp_path / "spool.db")
    spool.append_encoded([encode_snapshot(second(n)) for n in gap])
    writer = SnapshotWriter(database.sessions, spool, replay_chunk_rows=5000)
    database.statements.clear()
    await writer.flush()
    await writer.close()
    assert writer.stats.replayed == late_rows
    copied = not any(
        s.lstrip().upper().startswith("INSERT INTO METRIC_SNAPSHOTS") for s in database.statements
    )
    assert copied == (late_rows >= COPY_MIN_ROWS and database.engine.dialect.name == "postgresql")
    assert database.rollup_deletes() == 1

    after = await database.series(base, end)
    assert after != before
    assert_same_buckets(after, await database.series(base, end, raw=True))
    assert [b.count for b in after] == [60] * (total // 60)
    assert (await database.rollup_minutes())[base + timedelta(minutes=3)] == 60


async def test_live_batches_issue_no_rollup_delete(database: Database, tmp_path: Path) -> None:
    writer = SnapshotWriter(database.sessions, Spool(tmp_path / "spool.db"))
    now = datetime.now(UTC)
    live = [SnapshotRow(HOST, now - timedelta(seconds=s), "cpu", {}) for s in range(60)]
    await writer.add_encoded([encode_snapshot(row) for row in live])
    await writer.flush()
    assert writer.stats.written == 60
    assert database.rollup_deletes() == 0

    late = SnapshotRow(HOST, now - timedelta(hours=1), "cpu", {})
    await writer.add_encoded([encode_snapshot(late)])
    await writer.flush()
    assert database.rollup_deletes() == 1
    await writer.close()


async def test_forget_late_deletes_the_minutes_of_late_rows_only(session: AsyncSession) -> None:
    now = at(3600)
    rollups = RollupRepository(session)
    minutes = {epoch_seconds(T0) + m * 60: FIVE for m in range(60)}
    assert await rollups.store(HOST, "cpu", ["percent"], minutes)
    assert await rollups.store("other-host", "cpu", ["percent"], minutes)

    live = [(HOST, now - timedelta(seconds=s), "cpu") for s in range(0, 90)]
    assert await rollups.forget_late(live, now=now) == 0
    late = [(HOST, at(10 * 60 + 5), "cpu"), (HOST, at(12 * 60 + 59.5), "cpu")]
    assert await rollups.forget_late([*live, *late], now=now) == 3

    remaining = await stored_minutes(session)
    assert sorted(remaining) == [at(m * 60) for m in range(60) if m not in (10, 11, 12)]
    others = await session.scalar(
        select(MetricRollup.minute).where(MetricRollup.host == "other-host").limit(1)
    )
    assert others is not None


@pytest.mark.parametrize("dialect", ["postgres"])
async def test_invalidation_waits_for_a_reader_that_may_store_rollups(database: Database) -> None:
    """The race: a reader computed a minute before late rows committed and stores it after;
    the invalidation must run after that store, or the stale rollup would stay for good."""
    async with database.sessions() as reader, reader.begin():
        await RollupRepository(reader).hold_off_invalidation(HOST, "cpu")

        async def invalidate() -> int:
            async with database.sessions() as writer, writer.begin():
                return await RollupRepository(writer).forget_late([(HOST, at(30), "cpu")])

        invalidation = asyncio.create_task(invalidate())
        await asyncio.sleep(0.3)
        assert not invalidation.done()
        assert await RollupRepository(reader).store(
            HOST, "cpu", ["percent"], {epoch_seconds(T0): FIVE}
        )
    assert await asyncio.wait_for(invalidation, 10) == 1
    assert await database.rollup_minutes() == {}


# ----- retention --------------------------------------------------------------------------------
async def test_rollups_older_than_the_oldest_snapshot_are_pruned(session: AsyncSession) -> None:
    repository = SnapshotRepository(session)
    for host in (HOST, "gone-host"):
        await SnapshotIngest(repository.session).bulk_insert_ignore_conflicts(
            [SnapshotRow(host, at(s), "cpu", {"percent": s}) for s in range(0, 600, 5)]
        )
        await both_ways(session, at(0), at(600), 60, ["percent"], host=host)
    # Retention cut in the middle of minute 5; every snapshot of gone-host removed.
    await session.execute(
        delete(MetricSnapshot).where(
            (MetricSnapshot.captured_at < at(330)) | (MetricSnapshot.host == "gone-host")
        )
    )

    pruned = await RollupRepository(session).prune_before_oldest_snapshots()

    assert pruned == 6 + 10  # minutes 0-5, and every minute of gone-host
    assert sorted(await stored_minutes(session)) == [at(m * 60) for m in range(6, 10)]
    assert (
        await session.scalar(select(MetricRollup.host).where(MetricRollup.host == "gone-host"))
        is None
    )
    await both_ways(session, at(0), at(600), 60, ["percent"])


async def test_the_maintenance_loop_prunes_rollups(database: Database) -> None:
    base = minute_start(datetime.now(UTC) - timedelta(hours=1))
    async with unit_of_work(database.sessions) as session:
        await SnapshotIngest(session).bulk_insert_ignore_conflicts(
            [
                SnapshotRow(HOST, base + timedelta(seconds=s), "cpu", {"percent": s})
                for s in range(600)
            ]
        )
    await database.series(base, base + timedelta(minutes=10))
    async with unit_of_work(database.sessions) as session:
        await session.execute(
            delete(MetricSnapshot).where(MetricSnapshot.captured_at < base + timedelta(minutes=4))
        )

    task = asyncio.create_task(run_maintenance(database.engine, interval_seconds=3600))
    try:
        for _ in range(100):
            if len(await database.rollup_minutes()) == 6:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(await database.rollup_minutes()) == [
        base + timedelta(minutes=m) for m in range(4, 10)
    ]
