"""The tier job (``metrics/tiers/job.py``) on PostgreSQL and SQLite with real rows: new settled
minutes rolled up as the documents aggregate, the watermark and its bounded catch-up, late rows
recomputing exactly their minutes and hours, idempotent re-runs, and (PostgreSQL) a late row
committed while the job takes its mark is not lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.contract.metrics import SnapshotRow
from perfwatch.db.engine import build_engine
from perfwatch.metrics.buckets import HOUR, epoch_seconds
from perfwatch.metrics.tiers.job import roll_up_tiers
from perfwatch.metrics.tiers.pending import mark_late_rows
from perfwatch.metrics.tiers.repository import TierRepository
from perfwatch.models import MetricSnapshot
from tests.support.helpers import make_settings
from tests.support.tiers import (
    T0,
    all_tier_rows,
    at,
    document,
    expected,
    pending,
    rows,
    same_buckets,
    store,
    stored_stats,
    within,
)

HOSTS = ("tier-a", "tier-b")
TYPES = ("cpu", "memory")


def minute(k: int) -> timedelta:
    return timedelta(minutes=k)


async def test_new_minutes_are_the_documents_aggregated(session: AsyncSession) -> None:
    snapshots = rows(T0, at(600), 1, HOSTS, ("cpu",)) + rows(T0, at(600), 5, HOSTS, ("memory",))
    await store(session, snapshots, now=T0)
    assert await pending(session) == []  # stored on time

    report = await roll_up_tiers(session, now=at(600))

    # Settled: the minutes that ended two minutes before now, from the oldest row's minute.
    assert report.watermark == T0 + minute(8)
    assert (report.minutes_rolled, report.pending_minutes, report.caught_up) == (8, 0, True)
    assert report.minute_rows_written == 8 * len(HOSTS) * len(TYPES)
    assert report.hour_rows_written == len(HOSTS) * len(TYPES)
    assert await TierRepository(session).watermark() == report.watermark
    for host in HOSTS:
        for kind in TYPES:
            minutes = await stored_stats(session, "1m", host, kind)
            assert list(minutes) == [T0 + minute(k) for k in range(8)]
            for start, stats in minutes.items():
                assert stats == expected(
                    kind, within(snapshots, host, kind, start, start + minute(1))
                )
            hours = await stored_stats(session, "1h", host, kind)
            # The current hour is kept current up to the watermark.
            wanted = expected(kind, within(snapshots, host, kind, T0, T0 + minute(8)))
            assert same_buckets(hours, {T0: wanted})
    cpu_minute = (await stored_stats(session, "1m", "tier-a", "cpu"))[T0][1]
    assert {"percent", "per_core.0", "per_core.1", "load_average.1m"} == set(cpu_minute)
    assert "schema_version" not in cpu_minute


async def test_an_empty_database_starts_at_the_newest_settled_minute(
    session: AsyncSession,
) -> None:
    first = await roll_up_tiers(session, now=at(600))
    assert (first.watermark, first.minutes_rolled, first.minute_rows_written) == (
        T0 + minute(8),
        0,
        0,
    )

    second = await roll_up_tiers(session, now=at(661))

    assert (second.watermark, second.minutes_rolled) == (T0 + minute(9), 1)
    assert await all_tier_rows(session) == {"metric_tier_1m": [], "metric_tier_1h": []}


async def test_a_clock_set_back_never_moves_the_watermark_back(session: AsyncSession) -> None:
    await roll_up_tiers(session, now=at(600))

    report = await roll_up_tiers(session, now=at(300))

    assert (report.watermark, report.minutes_rolled, report.caught_up) == (
        T0 + minute(8),
        0,
        True,
    )


async def test_catching_up_is_bounded_and_continues(session: AsyncSession) -> None:
    snapshots = rows(T0, at(3 * HOUR), 10, ("tier-a",), ("cpu",))
    await store(session, snapshots, now=T0)
    now = at(3 * HOUR + 300)

    reports = [await roll_up_tiers(session, now=now, max_minutes=70) for _ in range(4)]

    assert [r.watermark for r in reports] == [
        T0 + minute(70),
        T0 + minute(140),
        T0 + minute(183),  # settled: now - 2 min
        T0 + minute(183),
    ]
    assert [r.caught_up for r in reports] == [False, False, True, True]
    assert [r.minutes_rolled for r in reports] == [70, 70, 43, 0]
    minutes = await stored_stats(session, "1m", "tier-a", "cpu")
    assert list(minutes) == [T0 + minute(k) for k in range(180)]
    hours = await stored_stats(session, "1h", "tier-a", "cpu")
    # Hour 1 was written in two runs: its first ten minutes, then all of it.
    assert same_buckets(
        hours,
        {
            T0 + timedelta(hours=h): expected(
                "cpu", within(snapshots, "tier-a", "cpu", at(h * HOUR), at((h + 1) * HOUR))
            )
            for h in range(3)
        },
    )


async def test_late_rows_recompute_exactly_their_minutes_and_hours(
    session: AsyncSession,
) -> None:
    snapshots = rows(T0, at(600), 2, HOSTS, TYPES)
    await store(session, snapshots, now=T0)
    await roll_up_tiers(session, now=at(600))  # watermark T0 + 8 min
    before = await all_tier_rows(session)

    # A replay a day later: rows between the stored ones in minute 3 (rolled up) and minute 9
    # (not yet), for one host and type.
    late = [
        SnapshotRow("tier-a", moment, "cpu", document("cpu", moment, "late"))
        for moment in (at(181), at(183), at(541))
    ]
    assert await store(session, late, now=at(86_400)) == 3
    assert await pending(session) == [
        ("tier-a", "cpu", epoch_seconds(T0 + minute(3))),
        ("tier-a", "cpu", epoch_seconds(T0 + minute(9))),
    ]

    report = await roll_up_tiers(session, now=at(600))

    assert (report.minutes_rolled, report.pending_minutes) == (0, 1)
    assert (report.minute_rows_written, report.hour_rows_written) == (1, 1)
    assert await pending(session) == []  # minute 9 is rolled up when it settles, with its rows
    after = await all_tier_rows(session)
    changed = {
        (table, row[:3]) for table in after for row in after[table] if row not in before[table]
    }
    assert changed == {
        ("metric_tier_1m", ("tier-a", "cpu", T0 + minute(3))),
        ("metric_tier_1h", ("tier-a", "cpu", T0)),
    }
    everything = snapshots + late
    minutes = await stored_stats(session, "1m", "tier-a", "cpu")
    assert minutes[T0 + minute(3)] == expected(
        "cpu", within(everything, "tier-a", "cpu", T0 + minute(3), T0 + minute(4))
    )
    assert minutes[T0 + minute(3)][0] == 32

    later = await roll_up_tiers(session, now=at(720))

    assert (later.minutes_rolled, later.pending_minutes) == (2, 0)
    minutes = await stored_stats(session, "1m", "tier-a", "cpu")
    assert minutes[T0 + minute(9)] == expected(
        "cpu", within(everything, "tier-a", "cpu", T0 + minute(9), T0 + minute(10))
    )
    hours = await stored_stats(session, "1h", "tier-a", "cpu")
    wanted = expected("cpu", within(everything, "tier-a", "cpu", T0, T0 + minute(10)))
    assert same_buckets(hours, {T0: wanted})


async def test_a_marked_minute_without_snapshots_loses_its_rows(session: AsyncSession) -> None:
    snapshots = rows(T0, at(600), 5, ("tier-a",), ("cpu",))
    await store(session, snapshots, now=T0)
    await roll_up_tiers(session, now=at(600))
    await session.execute(
        delete(MetricSnapshot).where(
            MetricSnapshot.captured_at >= T0 + minute(2), MetricSnapshot.captured_at < at(3 * 60)
        )
    )
    await mark_late_rows(session, [("tier-a", T0 + minute(2), "cpu")], now=at(86_400))

    report = await roll_up_tiers(session, now=at(600))

    assert (report.pending_minutes, report.minute_rows_written, report.hour_rows_written) == (
        1,
        0,
        1,
    )
    minutes = await stored_stats(session, "1m", "tier-a", "cpu")
    assert T0 + minute(2) not in minutes and len(minutes) == 7
    left = [row for row in snapshots if not T0 + minute(2) <= row.captured_at < at(180)]
    hours = await stored_stats(session, "1h", "tier-a", "cpu")
    wanted = expected("cpu", within(left, "tier-a", "cpu", T0, T0 + minute(8)))
    assert same_buckets(hours, {T0: wanted})


async def test_running_again_changes_nothing(session: AsyncSession) -> None:
    await store(session, rows(T0, at(2 * HOUR), 5, HOSTS, TYPES), now=T0)
    first = await roll_up_tiers(session, now=at(2 * HOUR))
    rolled = await all_tier_rows(session)
    assert len(rolled["metric_tier_1m"]) == 118 * 4 and len(rolled["metric_tier_1h"]) == 8

    again = await roll_up_tiers(session, now=at(2 * HOUR))
    assert (again.minutes_rolled, again.minute_rows_written, again.hour_rows_written) == (0, 0, 0)
    assert again.watermark == first.watermark
    # The same minutes rolled up once more (the watermark set back): the same rows.
    await TierRepository(session).set_watermark(T0)
    redone = await roll_up_tiers(session, now=at(2 * HOUR))
    assert redone.watermark == first.watermark and redone.minute_rows_written == 118 * 4
    assert await all_tier_rows(session) == rolled


async def test_marks_taken_are_bounded(session: AsyncSession) -> None:
    await store(session, rows(T0, at(600), 5, ("tier-a",), ("cpu",)), now=T0)
    await roll_up_tiers(session, now=at(600))
    await mark_late_rows(
        session, [("tier-a", T0 + minute(k), "cpu") for k in range(6)], now=at(86_400)
    )

    first = await roll_up_tiers(session, now=at(600), max_minutes=4)
    second = await roll_up_tiers(session, now=at(600), max_minutes=4)

    assert (first.pending_minutes, first.caught_up) == (4, False)
    assert (second.pending_minutes, second.caught_up) == (2, True)
    assert await pending(session) == []


@pytest.mark.parametrize("dialect", ["postgres"])
async def test_a_late_row_committing_while_the_job_takes_its_mark_is_kept(
    fresh_db: str,
) -> None:
    """The ingest re-marks a minute whose mark exists (committed earlier, not taken yet) and
    commits only after the job has started: the job's take waits for it, then reads its row."""
    engine = build_engine(make_settings(fresh_db))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions.begin() as setup:
            await store(setup, rows(T0, at(600), 5, ("tier-a",), ("cpu",)), now=T0)
            await roll_up_tiers(setup, now=at(600))
            await mark_late_rows(setup, [("tier-a", T0 + minute(2), "cpu")], now=at(86_400))
        late = SnapshotRow("tier-a", at(121), "cpu", document("cpu", at(121), "late"))
        async with sessions() as ingest, sessions() as job:
            await store(ingest, [late], now=at(86_400))  # not committed yet
            running = asyncio.create_task(roll_up_tiers(job, now=at(600)))
            await asyncio.sleep(0.5)
            assert not running.done()  # waiting for the ingest's lock on the mark
            await ingest.commit()
            report = await asyncio.wait_for(running, 10)
            await job.commit()
        assert report.pending_minutes == 1
        async with sessions() as check:
            minutes = await stored_stats(check, "1m", "tier-a", "cpu")
            assert minutes[T0 + minute(2)][0] == 13  # 12 on time + the late one
            assert await pending(check) == []
            count = await check.scalar(text("SELECT count(*) FROM metric_snapshots"))
            assert count == 121
    finally:
        await engine.dispose()
