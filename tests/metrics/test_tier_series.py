"""Series read from the resolution tiers (``MetricsService.series``) on PostgreSQL and SQLite:
the source follows the step and what is stored, says so, and gives the buckets raw snapshots
give; the minutes after the watermark come from raw; a range whose raw rows are gone still
answers, with the same values; tier rows merged by the database into wider buckets give what
their documents would."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.metrics.buckets import floor_time
from perfwatch.metrics.records import NO_STATS, Bucket, buckets_from_totals, rounded
from perfwatch.metrics.repository import SnapshotRepository
from perfwatch.metrics.schemas import Series
from perfwatch.metrics.service import LatestLookupStats, MetricsService
from perfwatch.metrics.tiers.job import roll_up_tiers
from perfwatch.metrics.tiers.plan import Tier
from perfwatch.metrics.tiers.repository import TierRepository, TierRow
from perfwatch.metrics.tiers.stats import BucketStats
from perfwatch.models import MetricSnapshot, MetricTierMinute
from tests.support.tiers import T0, at, rows, store

HOST = "tier-a"
FIELDS = ["percent", "per_core.1", "load_average.1m"]
END = at(3 * 3600)  # three hours of data, every 5 s


async def series(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    step_seconds: int,
    max_points: int = 10_000,
) -> Series:
    return await MetricsService(session, None, stats=LatestLookupStats()).series(
        HOST, "cpu", start, end, FIELDS, step=timedelta(seconds=step_seconds), max_points=max_points
    )


async def from_raw(
    session: AsyncSession, start: datetime, end: datetime, step_seconds: int
) -> list[Bucket]:
    return await SnapshotRepository(session).downsample(
        host=HOST,
        metric_type="cpu",
        start=start,
        end=end,
        fields=FIELDS,
        step_seconds=step_seconds,
    )


def assert_same(actual: list[Bucket], wanted: list[Bucket]) -> None:
    """The same buckets; averages within rounding (sums add up in another order)."""
    assert [(b.start, b.count) for b in actual] == [(b.start, b.count) for b in wanted]
    for got, bucket in zip(actual, wanted, strict=True):
        for path in FIELDS:
            mine, theirs = got.fields[path], bucket.fields[path]
            assert (mine.min, mine.max) == (theirs.min, theirs.max), (bucket.start, path)
            assert mine.avg == pytest.approx(theirs.avg, abs=2e-6), (bucket.start, path)


@pytest.fixture
async def rolled(session: AsyncSession) -> AsyncSession:
    """Three hours of cpu snapshots, rolled up to ten minutes after the last one."""
    await store(session, rows(T0, END, 5, (HOST,), ("cpu",)), now=T0)
    await roll_up_tiers(session, now=END + timedelta(minutes=10))
    return session


@pytest.mark.parametrize(
    ("step", "source", "resolution"),
    [
        (5, "raw", 1),
        (30, "raw", 1),
        (60, "1m", 60),
        (300, "1m", 60),
        (900, "1m", 60),
        (3600, "1h", 3600),
        (21_600, "1h", 3600),
    ],
)
async def test_the_step_picks_the_source_and_the_answer_names_it(
    rolled: AsyncSession, step: int, source: str, resolution: int
) -> None:
    answer = await series(rolled, T0, END, step)

    assert (answer.step_seconds, answer.source, answer.resolution_seconds) == (
        step,
        source,
        resolution,
    )
    assert_same(answer.buckets, await from_raw(rolled, T0, END, step))


async def test_the_point_cap_widens_the_step_onto_a_tier(rolled: AsyncSession) -> None:
    answer = await series(rolled, T0, END, 1, max_points=150)

    assert (answer.step_seconds, answer.source) == (300, "1m")
    assert len(answer.buckets) == 36


@pytest.mark.parametrize("step", [60, 300, 3600])
async def test_ranges_not_on_the_grid_give_the_raw_buckets(rolled: AsyncSession, step: int) -> None:
    """Partial first and last buckets: their minutes from raw, the rest from a tier."""
    start, end = at(17 + 1800), at(2 * 3600 + 1234)

    answer = await series(rolled, start, end, step)

    assert answer.source == ("1h" if step == 3600 else "1m")
    assert_same(answer.buckets, await from_raw(rolled, start, end, step))
    assert answer.buckets[0].count < step // 5


async def test_minutes_after_the_watermark_come_from_raw(session: AsyncSession) -> None:
    await store(session, rows(T0, END, 5, (HOST,), ("cpu",)), now=T0)
    report = await roll_up_tiers(session, now=at(100 * 60))  # up to minute 98 of 180
    assert report.watermark == at(98 * 60)

    for step, source in ((60, "1m"), (3600, "1h")):
        answer = await series(session, T0, END, step)
        assert answer.source == source
        assert_same(answer.buckets, await from_raw(session, T0, END, step))
        assert sum(bucket.count for bucket in answer.buckets) == 3 * 720


async def test_raw_rows_gone_the_tiers_answer_with_the_same_values(
    rolled: AsyncSession,
) -> None:
    session = rolled
    before = {step: await series(session, T0, END, step) for step in (60, 300, 3600)}
    fine = await series(session, T0, END, 5)
    assert fine.source == "raw"

    # Retention drops raw older than the last hour (deleted directly here).
    await session.execute(delete(MetricSnapshot).where(MetricSnapshot.captured_at < at(7200)))

    for step, answer in before.items():
        after = await series(session, T0, END, step)
        assert (after.source, after.step_seconds) == (answer.source, step)
        assert after.buckets == answer.buckets
    # A step finer than the tiers keep: widened to a minute, from the 1-minute tier.
    widened = await series(session, T0, END, 5)
    assert (widened.step_seconds, widened.source, widened.resolution_seconds) == (60, "1m", 60)
    assert widened.buckets == before[60].buckets
    # A range wholly after the raw cut still reads raw.
    recent = await series(session, at(7200), END, 5)
    assert recent.source == "raw" and recent.buckets[0].start == at(7200)


async def test_minute_tier_gone_the_hour_tier_answers(rolled: AsyncSession) -> None:
    session = rolled
    hourly = await series(session, T0, END, 3600)
    await session.execute(delete(MetricSnapshot).where(MetricSnapshot.captured_at < at(7200)))
    await session.execute(delete(MetricTierMinute).where(MetricTierMinute.bucket < at(3600)))

    answer = await series(session, at(600), END, 60)

    # Widened to the hour tier, whole hours (the first reaches before the range's start).
    assert (answer.step_seconds, answer.source, answer.resolution_seconds) == (3600, "1h", 3600)
    assert answer.buckets == hourly.buckets


def random_value(rng: random.Random) -> Any:
    """Mostly numbers (ints beyond 2**53 too), sometimes what the tiers ignore."""
    draw = rng.random()
    if draw < 0.4:
        return round(rng.uniform(-1_000, 1_000), 3)
    if draw < 0.7:
        return rng.randint(-(10**17), 10**17)
    return rng.choice([True, None, "7"])


@pytest.mark.parametrize("tier", ["1m", "1h"])
async def test_tier_rows_give_the_buckets_of_their_documents(
    session: AsyncSession, tier: Tier
) -> None:
    rng = random.Random(5)
    width = 60 if tier == "1m" else 3600
    # Documents every 10 s (1m) or 10 min (1h) over 30 buckets; one bucket has none.
    timed: list[tuple[datetime, dict[str, Any]]] = []
    for s in range(0, 1_800, 10):
        if 600 <= s < 660:
            continue
        doc: dict[str, Any] = {"nested": {"x": random_value(rng)}}
        if rng.random() < 0.9:  # sometimes absent
            doc["a"] = random_value(rng)
        timed.append((T0 + timedelta(seconds=s * width // 60), doc))
    buckets: dict[datetime, BucketStats] = {}
    for moment, doc in timed:
        buckets.setdefault(floor_time(moment, width), BucketStats()).add("custom", doc)
    await TierRepository(session).upsert(
        tier,
        [TierRow(HOST, "custom", start, b.snapshots, b.encode()) for start, b in buckets.items()],
    )
    paths = ["a", "nested.x", "absent"]

    for factor in (1, 5, 15):
        step = width * factor
        totals = await TierRepository(session).bucket_totals(
            tier, HOST, "custom", paths, T0, T0 + timedelta(days=30), step
        )
        got = buckets_from_totals(totals, paths, step)
        wanted: dict[datetime, BucketStats] = {}
        for moment, doc in timed:
            wanted.setdefault(floor_time(moment, step), BucketStats()).add("custom", doc)
        assert [(b.start, b.count) for b in got] == [(s, w.snapshots) for s, w in wanted.items()]
        for bucket in got:
            stats = wanted[bucket.start]
            assert bucket.fields["absent"] == NO_STATS
            for path in paths[:-1]:
                entry = stats.fields.get(path)
                if entry is None:
                    assert bucket.fields[path] == NO_STATS
                    continue
                count, total, low, high, _ = entry
                assert (bucket.fields[path].min, bucket.fields[path].max) == (
                    rounded(low),
                    rounded(high),
                )
                assert bucket.fields[path].avg == pytest.approx(total / count, rel=1e-9, abs=1e-6)
