"""The metrics read side (repository aggregates + ``MetricsService``) on PostgreSQL and SQLite
with real rows: downsampled buckets, summaries with p95, raw pages, hosts and types, and latest
values from the cache (in-process and Redis) or the database."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.cache import Cache
from perfwatch.cache.memory import MemoryCache
from perfwatch.cache.redis import RedisCache
from perfwatch.contract.metrics import (
    METRIC_TYPES,
    SnapshotRow,
    cache_message,
    encode_snapshot,
    latest_key,
)
from perfwatch.errors import NotFoundError, ValidationFailedError
from perfwatch.metrics.buckets import bucket_count, choose_step
from perfwatch.metrics.fields import DEFAULT_FIELDS, resolve_fields
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.service import (
    LatestLookupStats,
    MetricsService,
    UnknownMetricTypeError,
    read_latest,
)
from tests.support.services import free_port

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # a multiple of every nice step up to 1 h
HOST = "query-host"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def insert(session: AsyncSession, rows: list[SnapshotRow]) -> None:
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows)


async def ramp(session: AsyncSession, seconds: int = 600, host: str = HOST) -> None:
    """cpu ``percent`` = i and memory ``virtual.percent`` = 2i at T0 + i s."""
    await insert(
        session,
        [
            SnapshotRow(
                host,
                at(i),
                "cpu",
                {"schema_version": 1, "percent": i, "load_average": {"1m": i / 100}},
            )
            for i in range(seconds)
        ]
        + [
            SnapshotRow(
                host, at(i), "memory", {"schema_version": 1, "virtual": {"percent": 2.0 * i}}
            )
            for i in range(seconds)
        ],
    )


def service(session: AsyncSession, cache: Cache | None = None) -> MetricsService:
    return MetricsService(session, cache, stats=LatestLookupStats())


# ----- series ---------------------------------------------------------------------------------
async def test_series_buckets_are_exact_on_a_ramp(session: AsyncSession) -> None:
    await ramp(session)

    series = await service(session).series(
        HOST, "cpu", T0, at(600), ["percent", "load_average.1m"], step=timedelta(minutes=1)
    )

    assert series.step_seconds == 60
    assert [b.start for b in series.buckets] == [at(60 * k) for k in range(10)]
    for k, bucket in enumerate(series.buckets):
        assert bucket.count == 60
        stats = bucket.fields["percent"]
        assert (stats.min, stats.max) == (60 * k, 60 * k + 59)
        assert stats.avg == pytest.approx(60 * k + 29.5)
        assert bucket.fields["load_average.1m"].max == pytest.approx((60 * k + 59) / 100)


async def test_series_nested_fields_and_partial_range(session: AsyncSession) -> None:
    await ramp(session)

    series = await service(session).series(
        HOST, "memory", at(90), at(150), ["virtual.percent"], step=timedelta(seconds=30)
    )

    assert series.step_seconds == 30
    assert [(b.start, b.count) for b in series.buckets] == [(at(90), 30), (at(120), 30)]
    assert series.buckets[0].fields["virtual.percent"].avg == pytest.approx(2 * 104.5)
    assert series.buckets[1].fields["virtual.percent"].max == 2 * 149


async def test_series_buckets_align_to_the_epoch_and_respect_the_point_cap(
    session: AsyncSession,
) -> None:
    await ramp(session)
    metrics = service(session)

    for max_points in (1, 2, 3, 7, 10, 100, 1500):
        series = await metrics.series(
            HOST, "cpu", at(17), at(600), ["percent"], max_points=max_points
        )
        assert len(series.buckets) <= max_points
        assert sum(b.count for b in series.buckets) == 600 - 17
        assert all(b.start.timestamp() % series.step_seconds == 0 for b in series.buckets)
    capped = await metrics.series(HOST, "cpu", T0, at(600), ["percent"], max_points=7)
    assert capped.step_seconds == 300
    assert [b.count for b in capped.buckets] == [300, 300]


async def test_series_ignores_missing_and_non_numeric_values(session: AsyncSession) -> None:
    documents: list[dict[str, Any]] = [
        {"percent": 10},
        {"percent": 20.5},
        {"percent": "99"},
        {"percent": None},
        {"percent": True},
        {"percent": {"nested": 1}},
        {"percent": [1, 2]},
        {},
        {"other": 5},
    ]
    await insert(session, [SnapshotRow(HOST, at(i), "cpu", doc) for i, doc in enumerate(documents)])

    series = await service(session).series(
        HOST, "cpu", T0, at(60), ["percent", "load_average.1m"], step=timedelta(minutes=1)
    )
    fields = ["percent", "load_average.1m"]
    summary = await service(session).summary(HOST, "cpu", T0, at(60), fields)

    [bucket] = series.buckets
    assert bucket.count == len(documents)
    assert asdict(bucket.fields["percent"]) == {
        "avg": pytest.approx(15.25),
        "min": 10,
        "max": 20.5,
    }
    assert asdict(bucket.fields["load_average.1m"]) == {"avg": None, "min": None, "max": None}
    assert summary.count == len(documents)
    assert summary.fields["percent"].count == 2
    assert summary.fields["load_average.1m"].model_dump() == {
        "count": 0,
        "min": None,
        "avg": None,
        "max": None,
        "p95": None,
    }


async def test_series_reads_array_elements(session: AsyncSession) -> None:
    await insert(
        session,
        [SnapshotRow(HOST, at(i), "cpu", {"per_core": [i, 10 * i]}) for i in range(4)],
    )

    series = await service(session).series(
        HOST, "cpu", T0, at(60), ["per_core.1"], step=timedelta(minutes=1)
    )

    assert asdict(series.buckets[0].fields["per_core.1"]) == {"avg": 15.0, "min": 0, "max": 30}


@pytest.mark.parametrize(
    "field",
    [
        "percent'); DROP TABLE metric_snapshots; --",
        "percent' OR '1'='1",
        'percent"',
        "$.percent",
        "a..b",
        ".a",
        "a.",
        "",
        "a b",
        "a[0]",
        "a-b",
        "{a,b}",
        "a\n",
        "x" * 201,
        ".".join("a" * 9),
    ],
)
async def test_invalid_field_paths_are_rejected(session: AsyncSession, field: str) -> None:
    await ramp(session, 5)
    metrics = service(session)

    with pytest.raises(ValidationFailedError, match=r"field|nested"):
        await metrics.series(HOST, "cpu", T0, at(60), [field])
    with pytest.raises(ValidationFailedError):
        await metrics.summary(HOST, "cpu", T0, at(60), ["percent", field])
    # The table is still there and intact.
    assert (await metrics.raw(HOST, "cpu", T0, at(60))).items


def test_field_list_rules() -> None:
    assert resolve_fields("cpu", ["percent", "load_average.1m", "percent"]) == [
        "percent",
        "load_average.1m",
    ]
    assert resolve_fields("memory", []) == ["virtual.percent", "swap.percent"]
    with pytest.raises(ValidationFailedError, match="no default fields"):
        resolve_fields("custom", [])
    assert resolve_fields("custom", ["anything.0"]) == ["anything.0"]  # no schema to check
    with pytest.raises(ValidationFailedError, match="at most 20"):
        resolve_fields("cpu", [f"per_core.{i}" for i in range(21)])


def test_every_default_field_is_a_numeric_field_of_its_type() -> None:
    for metric_type, fields in DEFAULT_FIELDS.items():
        assert resolve_fields(metric_type, list(fields)) == list(fields)


async def test_series_rejects_bad_ranges_and_limits(session: AsyncSession) -> None:
    metrics = service(session)
    with pytest.raises(ValidationFailedError, match="before"):
        await metrics.series(HOST, "cpu", at(60), at(60), ["percent"])
    with pytest.raises(ValidationFailedError, match="timezone"):
        await metrics.series(HOST, "cpu", datetime(2024, 1, 1), at(60), ["percent"])
    with pytest.raises(ValidationFailedError, match="max_points"):
        await metrics.series(HOST, "cpu", T0, at(60), ["percent"], max_points=0)
    with pytest.raises(ValidationFailedError, match="step"):
        await metrics.series(HOST, "cpu", T0, at(60), ["percent"], step=timedelta(0))


# ----- choose_step (pure) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("span", "step", "max_points", "expected"),
    [
        (timedelta(hours=24), None, 1500, 60),
        (timedelta(hours=1), None, 1500, 5),
        (timedelta(minutes=10), None, 1500, 1),
        (timedelta(minutes=10), timedelta(seconds=7), 1500, 10),
        (timedelta(days=7), None, 1500, 900),
        (timedelta(days=30), None, 1500, 3600),
        (timedelta(days=400), None, 1500, 86_400),
        (timedelta(days=400), None, 100, 5 * 86_400),
        (timedelta(hours=24), timedelta(hours=2), 1500, 21_600),
    ],
)
def test_choose_step(
    span: timedelta, step: timedelta | None, max_points: int, expected: int
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    chosen = choose_step(start, start + span, step, max_points)
    assert chosen == expected
    assert bucket_count(start, start + span, chosen) <= max_points


def test_choose_step_widens_when_alignment_adds_a_bucket() -> None:
    # 60 s that straddle a minute boundary touch two 1-minute buckets: one point needs 5 min.
    assert bucket_count(at(30), at(90), 60) == 2
    assert choose_step(at(30), at(90), None, 1) == 300
    assert choose_step(at(30), at(90), None, 2) == 30
    assert choose_step(at(31), at(91), None, 2) == 60


# ----- summary --------------------------------------------------------------------------------
async def test_summary_min_avg_max_p95(session: AsyncSession) -> None:
    await ramp(session, 100)

    summary = await service(session).summary(HOST, "cpu", T0, at(100), ["percent"])

    assert summary.count == 100
    stats = summary.fields["percent"]
    assert (stats.count, stats.min, stats.max) == (100, 0, 99)
    assert stats.avg == pytest.approx(49.5)
    assert stats.p95 == pytest.approx(94.05)  # percentile_cont: 0.95 * 99 = rank 94.05


@pytest.mark.parametrize(
    ("values", "p95"),
    [([7], 7.0), ([1, 3], 2.9), ([5, 1, 3, 2, 4], 4.8), ([10, 10, 10], 10.0)],
)
async def test_summary_p95_interpolates(
    session: AsyncSession, values: list[float], p95: float
) -> None:
    await insert(
        session, [SnapshotRow(HOST, at(i), "cpu", {"percent": v}) for i, v in enumerate(values)]
    )

    summary = await service(session).summary(HOST, "cpu", T0, at(60), ["percent"])

    assert summary.fields["percent"].p95 == pytest.approx(p95)


# ----- raw ------------------------------------------------------------------------------------
async def test_raw_pages_through_the_range(session: AsyncSession) -> None:
    await ramp(session, 7)
    metrics = service(session)

    first = await metrics.raw(HOST, "cpu", T0, at(7), limit=3)
    second = await metrics.raw(HOST, "cpu", T0, at(7), cursor=first.next_cursor, limit=3)
    third = await metrics.raw(HOST, "cpu", T0, at(7), cursor=second.next_cursor, limit=3)

    assert [i.data["percent"] for p in (first, second, third) for i in p.items] == list(range(7))
    assert third.next_cursor is None
    with pytest.raises(ValidationFailedError, match="limit"):
        await metrics.raw(HOST, "cpu", T0, at(7), limit=1001)
    with pytest.raises(ValidationFailedError, match="cursor"):
        await metrics.raw(HOST, "cpu", T0, at(7), cursor="garbage!")


# ----- unknown hosts and types ----------------------------------------------------------------
async def test_unknown_host_gives_empty_results(session: AsyncSession) -> None:
    await ramp(session, 5)
    metrics = service(session, MemoryCache())

    assert (await metrics.series("nobody", "cpu", T0, at(60), ["percent"])).buckets == []
    assert (await metrics.raw("nobody", "cpu", T0, at(60))).items == []
    summary = await metrics.summary("nobody", "cpu", T0, at(60), ["percent"])
    assert summary.count == 0
    assert summary.fields["percent"].p95 is None
    assert await metrics.latest("nobody", "cpu") is None


async def test_unknown_metric_type_lists_the_known_ones(session: AsyncSession) -> None:
    await insert(session, [SnapshotRow(HOST, T0, "gpu", {"percent": 1})])
    metrics = service(session)

    with pytest.raises(
        UnknownMetricTypeError, match="unknown metric type 'nope'; known: cpu, memory"
    ) as info:
        await metrics.series(HOST, "nope", T0, at(60), ["percent"])
    assert isinstance(info.value, NotFoundError)
    assert info.value.known == [*METRIC_TYPES, "gpu"]
    for call in (
        metrics.raw(HOST, "nope", T0, at(60)),
        metrics.summary(HOST, "nope", T0, at(60), ["percent"]),
    ):
        with pytest.raises(UnknownMetricTypeError):
            await call
    # A type that is stored but not one of the sampler's is accepted.
    assert (await metrics.summary(HOST, "gpu", T0, at(60), ["percent"])).count == 1
    # /metrics/latest checks the type once, before anything else.
    with pytest.raises(UnknownMetricTypeError):
        await read_latest(session, MemoryCache(), HOST, "nope")


# ----- hosts and types ------------------------------------------------------------------------
async def test_types_and_hosts(session: AsyncSession) -> None:
    await ramp(session, 30)
    await insert(
        session,
        [
            SnapshotRow("other-host", at(5), "cpu", {"percent": 1}),
            SnapshotRow("other-host", at(500), "custom_metric", {"value": 1}),
        ],
    )
    metrics = service(session)

    types = (await metrics.types()).metric_types
    assert types[: len(METRIC_TYPES)] == list(METRIC_TYPES)
    assert "custom_metric" in types
    assert len(types) == len(set(types))

    hosts = {h.host: h for h in (await metrics.hosts()).hosts}
    assert hosts[HOST].last_seen == at(29)
    assert hosts[HOST].metric_types == {"cpu": at(29), "memory": at(29)}
    assert hosts["other-host"].last_seen == at(500)
    assert hosts["other-host"].metric_types == {"cpu": at(5), "custom_metric": at(500)}


# ----- latest: cache first, database otherwise ------------------------------------------------
async def test_latest_from_the_database_then_the_memory_cache(session: AsyncSession) -> None:
    await ramp(session, 3)
    cache = MemoryCache()
    metrics = service(session, cache)

    snapshot = await metrics.latest_decoded(HOST, "cpu")

    source = snapshot.source if snapshot else None
    assert source == "database"
    assert snapshot is not None
    assert (snapshot.captured_at, snapshot.data["percent"], snapshot.source) == (
        at(2),
        2,
        "database",
    )
    assert metrics.stats.as_dict() == {"hits": 0, "misses": 1, "errors": 0}

    newer = SnapshotRow(HOST, at(10), "cpu", {"schema_version": 1, "percent": 55.5})
    await cache.set(latest_key(HOST, "cpu"), cache_message(encode_snapshot(newer)), 10)
    snapshot = await metrics.latest_decoded(HOST, "cpu")
    source = snapshot.source if snapshot else None
    assert source == "cache"
    assert snapshot is not None
    assert snapshot.model_dump() == {
        "host": HOST,
        "metric_type": "cpu",
        "captured_at": at(10),
        "data": {"schema_version": 1, "percent": 55.5},
        "source": "cache",
    }
    assert metrics.stats.as_dict() == {"hits": 1, "misses": 1, "errors": 0}


async def test_latest_with_real_redis(session: AsyncSession, redis_url: str) -> None:
    await ramp(session, 3)
    cache = RedisCache(redis_url)
    host = f"redis-{free_port()}"
    await insert(session, [SnapshotRow(host, at(0), "memory", {"virtual": {"percent": 3.0}})])
    try:
        metrics = service(session, cache)
        assert (await metrics.latest_decoded(host, "memory")).source  # type: ignore[union-attr] == "database"
        await cache.set(
            latest_key(host, "memory"),
            cache_message(
                encode_snapshot(SnapshotRow(host, at(1), "memory", {"virtual": {"percent": 4.0}}))
            ),
            10,
        )
        snapshot = await metrics.latest_decoded(host, "memory")
        source = snapshot.source if snapshot else None
        assert source == "cache"
        assert snapshot is not None and snapshot.data == {"virtual": {"percent": 4.0}}
        assert metrics.stats.as_dict() == {"hits": 1, "misses": 1, "errors": 0}
    finally:
        await cache.delete(latest_key(host, "memory"))
        await cache.close()


async def test_latest_falls_back_to_the_database_when_redis_is_down(session: AsyncSession) -> None:
    await ramp(session, 3)
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        metrics = service(session, cache)
        snapshot = await metrics.latest_decoded(HOST, "cpu")
        source = snapshot.source if snapshot else None
    finally:
        await cache.close()

    assert source == "database"
    assert snapshot is not None and snapshot.data["percent"] == 2
    assert metrics.stats.as_dict() == {"hits": 0, "misses": 0, "errors": 1}


async def test_latest_ignores_an_unreadable_cache_entry(session: AsyncSession) -> None:
    await ramp(session, 3)
    cache = MemoryCache()
    await cache.set(latest_key(HOST, "cpu"), "{not json", 10)
    metrics = service(session, cache)

    assert (await metrics.latest_decoded(HOST, "cpu")).source  # type: ignore[union-attr] == "database"
    assert metrics.stats.errors == 1


async def test_latest_without_a_cache(session: AsyncSession) -> None:
    await ramp(session, 3)
    snapshot = await service(session, None).latest_decoded(HOST, "memory")
    assert snapshot is not None and snapshot.source == "database"
    assert snapshot.data == {"schema_version": 1, "virtual": {"percent": 4.0}}
