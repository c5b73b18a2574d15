"""``SnapshotRepository``: idempotent bulk inserts, latest lookups, distinct values and keyset-paged
ranges, on PostgreSQL (partitioned table) and SQLite."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import SnapshotRow
from perfwatch.errors import ValidationFailedError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.repository import SnapshotRepository, decode_cursor, encode_cursor
from perfwatch.metrics.service import MetricsService
from perfwatch.models import MetricSnapshot

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def insert(owner: Any, rows: list[SnapshotRow]) -> int:
    """Store ``rows`` through the ingest path (``owner``: a session or a repository)."""
    session = getattr(owner, "session", owner)
    return await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows)


def row(
    host: str = "web-1",
    metric_type: str = "cpu",
    seconds: float = 0,
    data: dict[str, Any] | None = None,
) -> SnapshotRow:
    return SnapshotRow(
        host=host,
        captured_at=T0 + timedelta(seconds=seconds),
        metric_type=metric_type,
        metric_data=data if data is not None else {"value": seconds},
    )


async def stored(session: AsyncSession, **where: Any) -> list[MetricSnapshot]:
    """Every stored snapshot matching ``where``, oldest first (ties by id), read fresh."""
    session.expunge_all()
    query = select(MetricSnapshot).order_by(MetricSnapshot.captured_at, MetricSnapshot.id)
    for name, value in where.items():
        query = query.where(getattr(MetricSnapshot, name) == value)
    return list((await session.execute(query)).scalars())


async def count_key(
    session: AsyncSession, host: str, metric_type: str, captured_at: datetime
) -> int:
    query = select(func.count()).where(
        MetricSnapshot.host == host,
        MetricSnapshot.metric_type == metric_type,
        MetricSnapshot.captured_at == captured_at,
    )
    return int((await session.execute(query)).scalar_one())


# ----- bulk_insert_ignore_conflicts ------------------------------------------------------------
async def test_bulk_insert_returns_the_number_inserted_and_stores_the_rows(
    session: AsyncSession,
) -> None:
    repo = SnapshotRepository(session)
    batch = [row(seconds=0), row(seconds=1), row("web-2", "memory", 0, {"used": 10})]

    inserted = await insert(repo, batch)

    assert inserted == 3
    rows = await stored(session)
    assert {(r.host, r.metric_type, r.captured_at, r.metric_data.get("value")) for r in rows} == {
        ("web-1", "cpu", T0, 0),
        ("web-1", "cpu", T0 + timedelta(seconds=1), 1),
        ("web-2", "memory", T0, None),
    }
    assert all(isinstance(r.id, int) for r in rows)
    assert len({r.id for r in rows}) == 3


async def test_replaying_a_batch_inserts_nothing_and_duplicates_nothing(
    session: AsyncSession,
) -> None:
    repo = SnapshotRepository(session)
    batch = [row(seconds=s) for s in range(5)]
    assert await insert(repo, batch) == 5

    assert await insert(repo, batch) == 0

    for item in batch:
        assert await count_key(session, item.host, item.metric_type, item.captured_at) == 1
    assert len(await stored(session)) == 5


async def test_replay_keeps_the_first_document(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(data={"version": 1})])

    assert await insert(repo, [row(data={"version": 2})]) == 0

    assert [r.metric_data for r in await stored(session)] == [{"version": 1}]


async def test_mixed_batch_inserts_only_the_new_rows(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(seconds=0), row(seconds=1)])

    mixed = [row(seconds=0), row(seconds=1), row(seconds=2), row("web-2"), row(metric_type="disk")]
    inserted = await insert(repo, mixed)

    assert inserted == 3
    assert len(await stored(session)) == 5
    for item in mixed:
        assert await count_key(session, item.host, item.metric_type, item.captured_at) == 1


async def test_duplicates_inside_one_batch_are_stored_once(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)

    inserted = await insert(repo, [row(), row(), row(seconds=1)])

    assert inserted == 2
    assert await count_key(session, "web-1", "cpu", T0) == 1


async def test_the_same_instant_in_another_zone_is_a_duplicate(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row()])
    in_plus_five = T0.astimezone(timezone(timedelta(hours=5)))

    inserted = await insert(repo, [SnapshotRow("web-1", in_plus_five, "cpu", {"value": 0})])

    assert inserted == 0
    assert len(await stored(session)) == 1


async def test_an_empty_batch_inserts_nothing(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)

    assert await insert(repo, []) == 0
    assert await stored(session) == []


async def test_a_naive_captured_at_refuses_the_whole_batch(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    naive = SnapshotRow("web-1", datetime(2024, 6, 1, 12, 0), "cpu", {})

    with pytest.raises(ValueError, match="timezone-aware"):
        await insert(repo, [row(seconds=5), naive])

    assert await stored(session) == []


async def test_times_are_stored_as_utc_instants(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    local = datetime(2024, 6, 1, 23, 30, 0, 250000, tzinfo=timezone(timedelta(hours=-7)))

    await insert(repo, [SnapshotRow("web-1", local, "cpu", {})])

    [snapshot] = await stored(session)
    assert snapshot.captured_at == local
    assert snapshot.captured_at.utcoffset() == timedelta(0)
    assert snapshot.captured_at == datetime(2024, 6, 2, 6, 30, 0, 250000, tzinfo=UTC)


JSON_DOCUMENTS: list[dict[str, Any]] = [
    {"percent": 12.5, "per_cpu": [1.0, 2.5, 99.9], "count": 8},
    {"nested": {"deeper": {"deepest": [1, {"x": None}, [True, False]]}}, "empty": {}, "none": []},
    {"name": "héllo wörld ✓ 日本語 🚀", "quote": 'a "quoted" \\ back\\slash\nnewline'},
    {"processes": [{"pid": 1, "name": "init", "cpu": 0.0}, {"pid": 4242, "name": "python3"}]},
    {"big": 2**53, "negative": -17, "tiny": 1e-9, "flag": True, "nothing": None},
]


@pytest.mark.parametrize("document", JSON_DOCUMENTS)
async def test_json_documents_round_trip(session: AsyncSession, document: dict[str, Any]) -> None:
    repo = SnapshotRepository(session)

    assert await insert(repo, [row(data=document)]) == 1

    [snapshot] = await stored(session)
    assert snapshot.metric_data == document


async def test_json_documents_round_trip_through_create_too(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    document = JSON_DOCUMENTS[1] | JSON_DOCUMENTS[2]

    created = await repo.create(host="h", captured_at=T0, metric_type="t", metric_data=document)

    session.expunge_all()
    fetched = await repo.get(created.id)
    assert fetched is not None
    assert fetched.metric_data == document


async def test_a_large_batch_is_inserted_in_one_call(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    batch = [row(f"host-{n % 7}", f"type-{n % 3}", n) for n in range(2000)]

    assert await insert(repo, batch) == 2000
    assert await insert(repo, batch[::2]) == 0
    assert await repo.count() == 2000


# ----- latest / latest_per_type / distinct ---------------------------------------------------
async def seed_hosts(repo: SnapshotRepository) -> None:
    await insert(
        repo,
        [
            row("web-1", "cpu", 10),
            row("web-1", "cpu", 30),
            row("web-1", "cpu", 20),
            row("web-1", "memory", 5),
            row("web-1", "disk", 50),
            row("web-2", "cpu", 99),
            row("web-2", "network", 1),
            row("db-1", "memory", 77),
        ],
    )


async def test_latest_returns_the_newest_snapshot_of_a_host_and_type(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await seed_hosts(repo)

    latest = await repo.latest("web-1", "cpu")

    assert latest is not None
    assert (latest.host, latest.metric_type) == ("web-1", "cpu")
    assert latest.captured_at == T0 + timedelta(seconds=30)
    assert latest.metric_data == {"value": 30}


async def test_latest_is_none_when_nothing_matches(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await seed_hosts(repo)

    assert await repo.latest("web-1", "network") is None
    assert await repo.latest("nowhere", "cpu") is None


async def test_distinct_metric_types(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await seed_hosts(repo)

    assert await repo.distinct_metric_types() == ["cpu", "disk", "memory", "network"]
    assert await repo.distinct_metric_types("web-1") == ["cpu", "disk", "memory"]
    assert await repo.distinct_metric_types("db-1") == ["memory"]
    assert await repo.distinct_metric_types("nowhere") == []
    assert await repo.distinct_metric_types(excluding=["cpu", "memory"]) == ["disk", "network"]
    assert await repo.distinct_metric_types("web-1", excluding=["disk"]) == ["cpu", "memory"]


async def test_distinct_on_an_empty_table(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)

    assert await repo.distinct_metric_types() == []
    assert await repo.distinct_metric_types("web-1") == []


async def test_generic_list_filters_snapshots(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await seed_hosts(repo)

    page = await repo.list(filters={"host": "web-1", "metric_type": "cpu"})

    assert [s.metric_data["value"] for s in page.items] == [30, 20, 10]  # newest first
    assert page.total == 3
    window = {
        "captured_at__gte": T0 + timedelta(seconds=20),
        "captured_at__lt": T0 + timedelta(seconds=60),
    }
    assert await repo.count(filters=window) == 3  # web-1 cpu@20, cpu@30, disk@50


# ----- range and keyset pagination -----------------------------------------------------------
async def walk(
    repo: SnapshotRepository, cursor: str | None = None, **arguments: Any
) -> tuple[list[MetricSnapshot], int]:
    """Follow next_cursor until the end; return every item and the number of pages."""
    items: list[MetricSnapshot] = []
    pages = 0
    while True:
        after = None if cursor is None else decode_cursor(cursor)
        page = await repo.range(after=after, **arguments)
        pages += 1
        items.extend(page.items)
        if page.next_cursor is None:
            return items, pages
        assert page.items, "a page with a next cursor must not be empty"
        cursor = page.next_cursor
        assert pages < 1000, "pagination does not terminate"


async def test_range_walks_every_row_exactly_once(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    # Three hosts sharing each second give ties on captured_at; other types must not leak in.
    batch = [row(host, "cpu", second) for second in range(20) for host in ("a", "b", "c")]
    batch += [row("a", "memory", second) for second in range(20)]
    await insert(repo, batch)
    expected = await stored(session, metric_type="cpu")

    items, pages = await walk(
        repo, metric_type="cpu", start=T0, end=T0 + timedelta(minutes=1), limit=7
    )

    assert len(expected) == 60
    assert [s.id for s in items] == [s.id for s in expected]
    assert pages == 9  # 8 full pages of 7 and one of 4


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10, 11])
async def test_range_ties_on_captured_at_are_ordered_by_id(
    session: AsyncSession, limit: int
) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(f"host-{n:02d}") for n in range(10)])

    items, _pages = await walk(
        repo, metric_type="cpu", start=T0, end=T0 + timedelta(seconds=1), limit=limit
    )

    ids = [s.id for s in items]
    assert len(ids) == 10
    assert ids == sorted(ids)
    assert len(set(ids)) == 10


async def test_range_page_of_exactly_limit_rows_has_no_next_cursor(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(seconds=s) for s in range(4)])

    page = await repo.range(metric_type="cpu", start=T0, end=T0 + timedelta(hours=1), limit=4)

    assert len(page.items) == 4
    assert page.next_cursor is None


async def test_range_is_half_open_and_filters_by_host(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(host, "cpu", second) for second in range(10) for host in ("a", "b")])

    page = await repo.range(
        metric_type="cpu", start=T0 + timedelta(seconds=2), end=T0 + timedelta(seconds=5)
    )
    only_a = await repo.range(
        metric_type="cpu", host="a", start=T0 + timedelta(seconds=2), end=T0 + timedelta(seconds=5)
    )

    assert sorted({s.captured_at - T0 for s in page.items}) == [
        timedelta(seconds=2),
        timedelta(seconds=3),
        timedelta(seconds=4),
    ]
    assert len(page.items) == 6
    assert [(s.host, s.metric_data["value"]) for s in only_a.items] == [
        ("a", 2),
        ("a", 3),
        ("a", 4),
    ]
    assert only_a.next_cursor is None


async def test_range_with_nothing_in_it(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(seconds=s) for s in range(3)])

    page = await repo.range(metric_type="cpu", start=T0 - timedelta(days=1), end=T0)

    assert page.items == []
    assert page.next_cursor is None


async def test_range_cursor_is_stable_while_rows_arrive(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(seconds=s) for s in range(0, 10, 2)])
    window = {"metric_type": "cpu", "start": T0, "end": T0 + timedelta(minutes=1), "limit": 2}
    first = await repo.range(**window)
    assert [s.metric_data["value"] for s in first.items] == [0, 2]

    # A row before the cursor is not seen again; rows after it are picked up.
    await insert(repo, [row(seconds=1), row(seconds=3), row(seconds=20)])
    rest, _pages = await walk(repo, first.next_cursor, **window)

    assert [s.metric_data["value"] for s in rest] == [3, 4, 6, 8, 20]


async def test_range_argument_errors(session: AsyncSession) -> None:
    """Checked once, by the service; the repository trusts what it is given."""
    await insert(session, [row()])
    metrics = MetricsService(session, None)
    end = T0 + timedelta(hours=1)

    with pytest.raises(ValidationFailedError, match="from must be before to"):
        await metrics.raw("web-1", "cpu", end, T0)
    with pytest.raises(ValidationFailedError, match="from must be before to"):
        await metrics.raw("web-1", "cpu", T0, T0)
    with pytest.raises(ValidationFailedError, match="timezone-aware"):
        await metrics.raw("web-1", "cpu", datetime(2024, 6, 1), end)
    with pytest.raises(ValidationFailedError, match="timezone-aware"):
        await metrics.raw("web-1", "cpu", T0, datetime(2030, 1, 1))
    for limit in (0, -5, MAX_PAGE_SIZE + 1):
        with pytest.raises(ValidationFailedError, match="limit must be between 1 and"):
            await metrics.raw("web-1", "cpu", T0, end, limit=limit)
    page = await metrics.raw("web-1", "cpu", T0, end, limit=MAX_PAGE_SIZE)
    assert len(page.items) == 1


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


MALFORMED_CURSORS = [
    "",
    "not a cursor!",
    "a",
    "%%%%",
    b64("garbage"),
    b64("2024-06-01T12:00:00+00:00"),  # no id
    b64("2024-06-01T12:00:00+00:00|seven"),
    b64("yesterday|5"),
    b64("2024-06-01T12:00:00|5"),  # naive time
    b64("2024-06-01T12:00:00+00:00|99999999999999999999999"),  # beyond a 64-bit id
    base64.urlsafe_b64encode(b"\xff\xfe\xfd|1").decode(),
]


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
async def test_range_refuses_a_malformed_cursor(session: AsyncSession, cursor: str) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row()])

    with pytest.raises(ValidationFailedError, match="cursor is malformed"):
        await MetricsService(session, None).raw("web-1", "cpu", T0, T0 + HOUR, cursor=cursor)

    # The refusal happens before the database sees anything, so the session is fine.
    assert await repo.count() == 1


async def test_cursor_encoding_round_trips(session: AsyncSession) -> None:
    repo = SnapshotRepository(session)
    await insert(repo, [row(seconds=1.5)])
    [snapshot] = await stored(session)

    cursor = encode_cursor(snapshot)

    assert "=" not in cursor
    assert decode_cursor(cursor) == (snapshot.captured_at, snapshot.id)
