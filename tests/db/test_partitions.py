"""Time-then-type partitions on PostgreSQL: raw ``metric_snapshots`` by (day, type), the tiers by
(month, type), each with a top-level DEFAULT; and their absence on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from perfwatch.contract.metrics import METRIC_TYPES, SnapshotRow
from perfwatch.db.engine import build_engine
from perfwatch.db.partitions import (
    DEFAULT_DAYS_AHEAD,
    DEFAULT_DAYS_BEHIND,
    OTHER_TYPES,
    PARTITIONED_TABLES,
    SNAPSHOTS,
    TIER_HOUR,
    TIER_MINUTE,
    Partition,
    PartitionedTable,
    ensure_partitions_between,
    ensure_snapshot_partitions,
    is_partition,
    list_partitions,
    list_snapshot_partitions,
    parse_partition,
)
from perfwatch.metrics.ingest import SnapshotIngest
from tests.support.helpers import make_settings, scratch_postgres
from tests.support.services import PostgresServer

LEAF_SUFFIXES = (*METRIC_TYPES, OTHER_TYPES)


async def insert(session: AsyncSession, rows: list[SnapshotRow]) -> int:
    """Store ``rows`` through the ingest path."""
    return await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows)


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


def leaf(table: PartitionedTable, period: date, kind: str) -> str:
    return f"{table.period_name(period)}_{kind}"


async def placement(connection: AsyncSession | AsyncConnection) -> dict[str, str]:
    """host -> the table that holds its snapshot (one snapshot per host in these tests)."""
    result = await connection.execute(
        text("SELECT host, tableoid::regclass::text FROM metric_snapshots")
    )
    return dict(result.all())


async def children(session: AsyncSession | AsyncConnection, parent: str) -> dict[str, str]:
    """The partitions directly under ``parent`` -> their bound."""
    result = await session.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:p AS regclass)"
        ),
        {"p": parent},
    )
    return dict(result.all())


async def rows_in(session: AsyncSession, table: str) -> int:
    return int((await session.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())


async def insert_tier_row(session: AsyncSession, table: str, metric_type: str, bucket: datetime):
    await session.execute(
        text(
            f"INSERT INTO {table} (host, metric_type, bucket, snapshots, stats) "
            "VALUES ('h', :t, :b, 1, CAST(:s AS jsonb))"
        ),
        {"t": metric_type, "b": bucket, "s": '{"percent": [1, 5.0, 5.0, 5.0, 5.0]}'},
    )


# ----- the schema ------------------------------------------------------------------------------


async def test_tables_are_partitioned_by_time_then_type(pg_session: AsyncSession) -> None:
    await ensure_snapshot_partitions(pg_session, today=date(2031, 3, 10), days_ahead=0)
    result = await pg_session.execute(
        text(
            "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = ANY(:names)"
        ),
        {
            "names": [
                "metric_snapshots",
                "metric_snapshots_p20310310",
                "metric_tier_1m",
                "metric_tier_1m_p203103",
                "metric_tier_1h",
                "metric_tier_1h_p203103",
            ]
        },
    )

    assert dict(result.all()) == {
        "metric_snapshots": "RANGE (captured_at)",
        "metric_snapshots_p20310310": "LIST (metric_type)",
        "metric_tier_1m": "RANGE (bucket)",
        "metric_tier_1m_p203103": "LIST (metric_type)",
        "metric_tier_1h": "RANGE (bucket)",
        "metric_tier_1h_p203103": "LIST (metric_type)",
    }


async def test_each_table_has_a_default_partition_and_one_function(
    pg_session: AsyncSession,
) -> None:
    for table in PARTITIONED_TABLES:
        bounds = await children(pg_session, table.name)
        assert bounds[table.default_partition] == "DEFAULT", table.name
    functions = await pg_session.execute(
        text("SELECT proname FROM pg_proc WHERE proname LIKE 'perfwatch\\_ensure\\_%'")
    )
    assert functions.scalars().all() == ["perfwatch_ensure_partitions"]


async def test_snapshots_keys_reach_every_leaf(pg_session: AsyncSession) -> None:
    await ensure_snapshot_partitions(pg_session, today=date(2040, 1, 1), days_ahead=1)
    keys = await pg_session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'metric_snapshots'::regclass ORDER BY conname"
        )
    )
    assert keys.all() == [
        ("pk_metric_snapshots", "PRIMARY KEY (id, captured_at, metric_type)"),
        (
            "uq_metric_snapshots_host_metric_type_captured_at",
            "UNIQUE (host, metric_type, captured_at)",
        ),
    ]
    # The two indexes of 0001 that queries pruned to a (type, day) do not need are gone.
    indexes = await pg_session.execute(
        text("SELECT indexname FROM pg_indexes WHERE tablename = 'metric_snapshots'")
    )
    assert sorted(indexes.scalars().all()) == [
        "pk_metric_snapshots",
        "uq_metric_snapshots_host_metric_type_captured_at",
    ]
    # Every leaf (and the DEFAULT) carries both keys.
    leaves = await pg_session.execute(
        text(
            "SELECT relid::text, (SELECT count(*) FROM pg_index WHERE indrelid = relid) "
            "FROM pg_partition_tree('metric_snapshots') WHERE isleaf"
        )
    )
    per_leaf = dict(leaves.all())
    assert len(per_leaf) > len(LEAF_SUFFIXES)
    assert set(per_leaf.values()) == {2}


# ----- ensure ---------------------------------------------------------------------------------


async def test_ensure_creates_each_day_with_one_child_per_type_and_other(
    pg_session: AsyncSession,
) -> None:
    day = date(2031, 3, 10)

    created = await ensure_partitions_between(pg_session, SNAPSHOTS, day, day)

    assert created == 1
    days = await children(pg_session, SNAPSHOTS.name)
    assert days["metric_snapshots_p20310310"] == (
        "FOR VALUES FROM ('2031-03-10 00:00:00+00') TO ('2031-03-11 00:00:00+00')"
    )
    expected = {leaf(SNAPSHOTS, day, kind): f"FOR VALUES IN ('{kind}')" for kind in METRIC_TYPES}
    expected[leaf(SNAPSHOTS, day, OTHER_TYPES)] = "DEFAULT"
    assert await children(pg_session, "metric_snapshots_p20310310") == expected


async def test_ensure_creates_tier_months_with_one_child_per_type_and_other(
    pg_session: AsyncSession,
) -> None:
    # From the middle of one month to the start of the one after next: three months.
    created = await ensure_partitions_between(
        pg_session, TIER_MINUTE, date(2031, 3, 10), date(2031, 5, 1)
    )

    assert created == 3
    months = await children(pg_session, TIER_MINUTE.name)
    assert months["metric_tier_1m_p203103"] == (
        "FOR VALUES FROM ('2031-03-01 00:00:00+00') TO ('2031-04-01 00:00:00+00')"
    )
    assert months["metric_tier_1m_p203105"] == (
        "FOR VALUES FROM ('2031-05-01 00:00:00+00') TO ('2031-06-01 00:00:00+00')"
    )
    assert "metric_tier_1m_p203106" not in months
    for month in (date(2031, 3, 1), date(2031, 4, 1), date(2031, 5, 1)):
        kinds = await children(pg_session, TIER_MINUTE.period_name(month))
        assert set(kinds) == {leaf(TIER_MINUTE, month, kind) for kind in LEAF_SUFFIXES}
        assert kinds[leaf(TIER_MINUTE, month, OTHER_TYPES)] == "DEFAULT"
    # The hour tier is a table of its own: untouched.
    assert "metric_tier_1h_p203104" not in await children(pg_session, TIER_HOUR.name)


async def test_only_the_hour_tier_keeps_its_rows_uncompressed(pg_session: AsyncSession) -> None:
    # A year's chart reads 8,760 hour rows: decompressing each costs more than it saves.
    await ensure_snapshot_partitions(pg_session, today=date(2031, 3, 10), days_ahead=0)
    result = await pg_session.execute(
        text(
            "SELECT relname, reloptions FROM pg_class WHERE relname IN "
            "('metric_tier_1h_p203103_cpu', 'metric_tier_1h_p203103_other', "
            "'metric_tier_1m_p203103_cpu', 'metric_snapshots_p20310310_cpu')"
        )
    )
    options = {name: value for name, value in result}
    assert options == {
        "metric_tier_1h_p203103_cpu": ["toast_tuple_target=8160"],
        "metric_tier_1h_p203103_other": ["toast_tuple_target=8160"],
        "metric_tier_1m_p203103_cpu": None,
        "metric_snapshots_p20310310_cpu": None,
    }


async def test_ensure_crosses_the_year_in_december(pg_session: AsyncSession) -> None:
    await ensure_partitions_between(pg_session, TIER_HOUR, date(2031, 12, 31), date(2032, 1, 1))
    await ensure_partitions_between(pg_session, SNAPSHOTS, date(2031, 12, 31), date(2032, 1, 1))

    months = await children(pg_session, TIER_HOUR.name)
    assert months["metric_tier_1h_p203112"] == (
        "FOR VALUES FROM ('2031-12-01 00:00:00+00') TO ('2032-01-01 00:00:00+00')"
    )
    assert months["metric_tier_1h_p203201"] == (
        "FOR VALUES FROM ('2032-01-01 00:00:00+00') TO ('2032-02-01 00:00:00+00')"
    )
    days = await children(pg_session, SNAPSHOTS.name)
    assert days["metric_snapshots_p20311231"] == (
        "FOR VALUES FROM ('2031-12-31 00:00:00+00') TO ('2032-01-01 00:00:00+00')"
    )


async def test_ensure_snapshot_partitions_covers_the_days_and_the_tier_months(
    pg_session: AsyncSession,
) -> None:
    today = date(2031, 3, 30)

    created = await ensure_snapshot_partitions(pg_session, today=today)

    days = DEFAULT_DAYS_BEHIND + 1 + DEFAULT_DAYS_AHEAD  # 29 March to 6 April
    assert created == days + 2 + 2  # and March, April of each tier
    day_tables = set(await list_snapshot_partitions(pg_session))
    for offset in range(-DEFAULT_DAYS_BEHIND, DEFAULT_DAYS_AHEAD + 1):
        assert SNAPSHOTS.period_name(today + timedelta(days=offset)) in day_tables
    assert "metric_snapshots_p20310328" not in day_tables
    assert "metric_snapshots_p20310407" not in day_tables
    for table in (TIER_MINUTE, TIER_HOUR):
        months = {p.period for p in await list_partitions(pg_session, table)}
        assert {date(2031, 3, 1), date(2031, 4, 1)} <= months
        assert date(2031, 5, 1) not in months


async def test_ensure_is_idempotent(pg_session: AsyncSession) -> None:
    today = date(2031, 3, 10)
    assert await ensure_snapshot_partitions(pg_session, today=today) > 0
    before = [await list_partitions(pg_session, table) for table in PARTITIONED_TABLES]

    assert await ensure_snapshot_partitions(pg_session, today=today) == 0

    assert [await list_partitions(pg_session, table) for table in PARTITIONED_TABLES] == before


async def test_ensure_only_creates_the_missing_days(pg_session: AsyncSession) -> None:
    await ensure_partitions_between(pg_session, SNAPSHOTS, date(2031, 3, 10), date(2031, 3, 12))

    created = await ensure_partitions_between(
        pg_session, SNAPSHOTS, date(2031, 3, 11), date(2031, 3, 14)
    )

    assert created == 2  # the 13th and 14th
    names = await list_snapshot_partitions(pg_session)
    assert [name for name in names if name.startswith("metric_snapshots_p203103")] == [
        f"metric_snapshots_p203103{day}" for day in range(10, 15)
    ]


async def test_ensure_with_the_default_date_covers_today(pg_session: AsyncSession) -> None:
    await ensure_snapshot_partitions(pg_session)

    assert await ensure_snapshot_partitions(pg_session) == 0
    today = datetime.now(UTC).date()
    names = await list_snapshot_partitions(pg_session)
    for offset in range(-DEFAULT_DAYS_BEHIND, DEFAULT_DAYS_AHEAD + 1):
        assert SNAPSHOTS.period_name(today + timedelta(days=offset)) in names


@pytest.mark.parametrize("zone", ["America/New_York", "Pacific/Kiritimati"])
async def test_bounds_are_utc_midnights_whatever_the_session_time_zone(
    pg_session: AsyncSession, zone: str
) -> None:
    await pg_session.execute(text(f"SET LOCAL TIME ZONE '{zone}'"))
    await ensure_partitions_between(pg_session, SNAPSHOTS, date(2031, 7, 1), date(2031, 7, 1))
    await ensure_partitions_between(pg_session, TIER_MINUTE, date(2031, 7, 1), date(2031, 7, 1))
    await pg_session.execute(text("SET LOCAL TIME ZONE 'UTC'"))

    assert (await children(pg_session, SNAPSHOTS.name))["metric_snapshots_p20310701"] == (
        "FOR VALUES FROM ('2031-07-01 00:00:00+00') TO ('2031-07-02 00:00:00+00')"
    )
    assert (await children(pg_session, TIER_MINUTE.name))["metric_tier_1m_p203107"] == (
        "FOR VALUES FROM ('2031-07-01 00:00:00+00') TO ('2031-08-01 00:00:00+00')"
    )


async def test_ensure_refuses_a_backwards_range(pg_session: AsyncSession) -> None:
    with pytest.raises(DBAPIError, match="is before first_day"):
        async with pg_session.begin_nested():
            await ensure_snapshot_partitions(
                pg_session, today=date(2031, 1, 1), days_behind=-3, days_ahead=0
            )


async def test_ensure_refuses_an_unknown_unit(pg_session: AsyncSession) -> None:
    weekly = PartitionedTable(SNAPSHOTS.name, SNAPSHOTS.time_column, "week")
    with pytest.raises(DBAPIError, match="unit must be day or month"):
        async with pg_session.begin_nested():
            await ensure_partitions_between(pg_session, weekly, date(2031, 1, 1), date(2031, 1, 1))


async def test_ensure_accepts_a_connection(postgres_engine: AsyncEngine) -> None:
    async with postgres_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            created = await ensure_partitions_between(
                connection, SNAPSHOTS, date(2032, 2, 28), date(2032, 2, 29)
            )
            names = await list_snapshot_partitions(connection)
        finally:
            await transaction.rollback()

    assert created == 2
    assert {"metric_snapshots_p20320228", "metric_snapshots_p20320229"} <= set(names)


# ----- concurrent callers ---------------------------------------------------------------------


@pytest.fixture
async def committed_pg(
    postgres_server: PostgresServer, postgres_template: str
) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated database of this test's own: its callers really commit."""
    with scratch_postgres(postgres_server, postgres_template) as url:
        engine = build_engine(make_settings(url))
        try:
            yield engine
        finally:
            await engine.dispose()


async def ensure_in_own_transaction(engine: AsyncEngine, first: date, last: date) -> int:
    async with engine.begin() as connection:
        return await ensure_partitions_between(connection, SNAPSHOTS, first, last)


async def test_callers_waiting_on_the_lock_find_the_days_created(
    committed_pg: AsyncEngine,
) -> None:
    first, last = date(2040, 1, 1), date(2040, 1, 3)
    async with committed_pg.connect() as holder:
        transaction = await holder.begin()
        assert await ensure_partitions_between(holder, SNAPSHOTS, first, last) == 3
        waiting = [
            asyncio.create_task(ensure_in_own_transaction(committed_pg, first, last))
            for _ in range(3)
        ]
        async with committed_pg.connect() as observer:
            for _ in range(500):
                queued = await observer.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                )
                if queued.scalar_one() == len(waiting):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the other callers never waited for the lock")
        assert not any(task.done() for task in waiting)
        await transaction.commit()

    assert await asyncio.gather(*waiting) == [0, 0, 0]


async def test_concurrent_callers_create_each_period_once(committed_pg: AsyncEngine) -> None:
    async def caller(shift: int) -> int:
        today = date(2041, 6, 28) + timedelta(days=shift)
        async with committed_pg.begin() as connection:
            return await ensure_snapshot_partitions(connection, today=today)

    created = await asyncio.gather(*(caller(shift % 3) for shift in range(8)))

    # 27 June to 7 July (11 days), and June and July of both tiers.
    assert sum(created) == 11 + 2 + 2
    async with committed_pg.connect() as connection:
        names = await list_snapshot_partitions(connection)
        assert len([name for name in names if name.startswith("metric_snapshots_p2041")]) == 11
        for table in (TIER_MINUTE, TIER_HOUR):
            leaves = await list_partitions(connection, table)
            assert len([p for p in leaves if p.period.year == 2041]) == 2 * len(LEAF_SUFFIXES)


# ----- where rows land --------------------------------------------------------------------------


async def test_rows_land_in_their_day_and_type_leaf(pg_session: AsyncSession) -> None:
    day = date(2031, 3, 10)
    await ensure_partitions_between(pg_session, SNAPSHOTS, day, day + timedelta(days=1))
    plus_two = timezone(timedelta(hours=2))
    rows = [
        SnapshotRow("first", at(day), "cpu", {}),
        SnapshotRow("last-micro", at(day, 23, 59, 59, 999999), "memory", {}),
        SnapshotRow("midnight", at(day + timedelta(days=1)), "processes", {}),
        # 01:30 on the 11th at UTC+2 is 23:30 on the 10th in UTC.
        SnapshotRow("offset", datetime(2031, 3, 11, 1, 30, tzinfo=plus_two), "sensors", {}),
        SnapshotRow("unknown", at(day, 12), "gpu", {}),
    ]

    assert await insert(pg_session, rows) == 5

    assert await placement(pg_session) == {
        "first": "metric_snapshots_p20310310_cpu",
        "last-micro": "metric_snapshots_p20310310_memory",
        "midnight": "metric_snapshots_p20310311_processes",
        "offset": "metric_snapshots_p20310310_sensors",
        "unknown": "metric_snapshots_p20310310_other",
    }
    # The unique key holds across the leaves: a replay stores nothing.
    assert await insert(pg_session, rows) == 0


async def test_every_sampler_type_has_its_own_leaf(pg_session: AsyncSession) -> None:
    day = date(2031, 3, 10)
    await ensure_partitions_between(pg_session, SNAPSHOTS, day, day)

    await insert(pg_session, [SnapshotRow(kind, at(day, 1), kind, {}) for kind in METRIC_TYPES])

    assert await placement(pg_session) == {
        kind: leaf(SNAPSHOTS, day, kind) for kind in METRIC_TYPES
    }


async def test_rows_of_a_day_without_partition_go_to_the_default(
    pg_session: AsyncSession,
) -> None:
    rows = [
        SnapshotRow("old", at(date(2001, 9, 9), 1, 46, 40), "cpu", {"v": 1}),
        SnapshotRow("future", at(date(2099, 12, 31), 23, 59, 59), "gpu", {"v": 2}),
    ]

    assert await insert(pg_session, rows) == 2

    assert await placement(pg_session) == {
        "old": SNAPSHOTS.default_partition,
        "future": SNAPSHOTS.default_partition,
    }
    assert await insert(pg_session, rows) == 0  # replays are still caught there


async def test_ensuring_a_day_moves_its_rows_out_of_the_default(pg_session: AsyncSession) -> None:
    day = date(2001, 9, 9)
    stranded = [
        SnapshotRow(f"host-{n}", at(day, n, 15), ("cpu", "memory", "gpu")[n % 3], {"n": [n, "é"]})
        for n in range(24)
    ]
    neighbours = [
        SnapshotRow("day-before", at(day) - timedelta(microseconds=1), "cpu", {}),
        SnapshotRow("day-after", at(day + timedelta(days=1)), "cpu", {}),
    ]
    assert await insert(pg_session, stranded + neighbours) == 26
    snapshot = "SELECT id, host, captured_at, metric_type, metric_data FROM metric_snapshots"
    before = (await pg_session.execute(text(f"{snapshot} ORDER BY id"))).all()

    assert await ensure_partitions_between(pg_session, SNAPSHOTS, day, day) == 1

    after = (await pg_session.execute(text(f"{snapshot} ORDER BY id"))).all()
    assert after == before, "no row lost, duplicated or changed"
    placed = await placement(pg_session)
    for row in stranded:
        kind = row.metric_type if row.metric_type in METRIC_TYPES else OTHER_TYPES
        assert placed[row.host] == leaf(SNAPSHOTS, day, kind)
    assert placed["day-before"] == placed["day-after"] == SNAPSHOTS.default_partition
    assert await rows_in(pg_session, leaf(SNAPSHOTS, day, OTHER_TYPES)) == 8
    # The moved rows are under the keys again, and the day takes new rows.
    assert await insert(pg_session, stranded) == 0
    assert await insert(pg_session, [SnapshotRow("late", at(day, 23), "disk", {})]) == 1
    assert (await placement(pg_session))["late"] == leaf(SNAPSHOTS, day, "disk")
    ids = await pg_session.execute(
        text("SELECT count(DISTINCT id), count(*) FROM metric_snapshots")
    )
    assert ids.one() == (27, 27)


async def test_tier_rows_land_in_their_month_and_type_leaf(pg_session: AsyncSession) -> None:
    month = date(2031, 3, 1)
    await ensure_partitions_between(pg_session, TIER_MINUTE, month, month)
    await insert_tier_row(pg_session, TIER_MINUTE.name, "cpu", at(date(2031, 3, 31), 23, 59))
    await insert_tier_row(pg_session, TIER_MINUTE.name, "gpu", at(month))
    await insert_tier_row(pg_session, TIER_MINUTE.name, "cpu", at(date(2031, 4, 1)))

    placed = await pg_session.execute(
        text("SELECT metric_type, bucket, tableoid::regclass::text FROM metric_tier_1m")
    )

    assert sorted(placed.all()) == [
        ("cpu", at(date(2031, 3, 31), 23, 59), "metric_tier_1m_p203103_cpu"),
        ("cpu", at(date(2031, 4, 1)), TIER_MINUTE.default_partition),
        ("gpu", at(month), "metric_tier_1m_p203103_other"),
    ]


async def test_ensuring_a_month_moves_its_tier_rows_out_of_the_default(
    pg_session: AsyncSession,
) -> None:
    await insert_tier_row(pg_session, TIER_HOUR.name, "memory", at(date(2001, 9, 9), 1))
    await insert_tier_row(pg_session, TIER_HOUR.name, "gpu", at(date(2001, 9, 30), 23))
    await insert_tier_row(pg_session, TIER_HOUR.name, "memory", at(date(2001, 10, 1)))

    assert (
        await ensure_partitions_between(pg_session, TIER_HOUR, date(2001, 9, 15), date(2001, 9, 15))
        == 1
    )

    placed = await pg_session.execute(
        text("SELECT metric_type, bucket, tableoid::regclass::text FROM metric_tier_1h")
    )
    assert sorted(placed.all()) == [
        ("gpu", at(date(2001, 9, 30), 23), "metric_tier_1h_p200109_other"),
        ("memory", at(date(2001, 9, 9), 1), "metric_tier_1h_p200109_memory"),
        ("memory", at(date(2001, 10, 1)), TIER_HOUR.default_partition),
    ]


# ----- listing -----------------------------------------------------------------------------------


async def test_list_partitions_gives_the_leaves_oldest_first(pg_session: AsyncSession) -> None:
    await ensure_partitions_between(pg_session, SNAPSHOTS, date(2035, 5, 6), date(2035, 5, 6))
    await ensure_partitions_between(pg_session, SNAPSHOTS, date(2035, 5, 5), date(2035, 5, 5))
    await ensure_partitions_between(pg_session, TIER_MINUTE, date(2035, 5, 5), date(2035, 5, 5))

    leaves = [p for p in await list_partitions(pg_session, SNAPSHOTS) if p.period.year == 2035]

    assert [(p.period, p.metric_type) for p in leaves] == [
        (day, kind)
        for day in (date(2035, 5, 5), date(2035, 5, 6))
        for kind in [None, *sorted(METRIC_TYPES)]
    ]
    assert all(p.table == SNAPSHOTS for p in leaves)
    assert leaves[0].name == "metric_snapshots_p20350505_other"
    assert leaves[1].name == "metric_snapshots_p20350505_cpu"
    # Its bounds are the database's.
    day = await children(pg_session, SNAPSHOTS.name)
    assert day["metric_snapshots_p20350505"] == (
        f"FOR VALUES FROM ('{leaves[0].start:%Y-%m-%d %H:%M:%S}+00') "
        f"TO ('{leaves[0].end:%Y-%m-%d %H:%M:%S}+00')"
    )
    months = [p for p in await list_partitions(pg_session, TIER_MINUTE) if p.period.year == 2035]
    assert {p.name for p in months} == {
        leaf(TIER_MINUTE, date(2035, 5, 1), kind) for kind in LEAF_SUFFIXES
    }
    assert all(p.end == datetime(2035, 6, 1, tzinfo=UTC) for p in months)


async def test_list_snapshot_partitions_gives_the_days_and_the_default(
    pg_session: AsyncSession,
) -> None:
    await ensure_partitions_between(pg_session, SNAPSHOTS, date(2035, 5, 5), date(2035, 5, 5))

    names = await list_snapshot_partitions(pg_session)

    assert SNAPSHOTS.default_partition in names
    assert "metric_snapshots_p20350505" in names
    assert "metric_snapshots_p20350505_cpu" not in names
    assert names == sorted(names)
    assert all(is_partition(name) for name in names)
    assert len(names) == len(await children(pg_session, SNAPSHOTS.name))


# ----- names and periods -------------------------------------------------------------------------


def test_parse_partition() -> None:
    assert parse_partition("metric_snapshots_p20240102_cpu") == Partition(
        SNAPSHOTS, "metric_snapshots_p20240102_cpu", date(2024, 1, 2), "cpu"
    )
    assert parse_partition("metric_snapshots_p20240102_other") == Partition(
        SNAPSHOTS, "metric_snapshots_p20240102_other", date(2024, 1, 2), None
    )
    assert parse_partition("metric_tier_1h_p202412_processes") == Partition(
        TIER_HOUR, "metric_tier_1h_p202412_processes", date(2024, 12, 1), "processes"
    )
    assert parse_partition("metric_tier_1m_p202402_other") == Partition(
        TIER_MINUTE, "metric_tier_1m_p202402_other", date(2024, 2, 1), None
    )
    for not_a_leaf in (
        "metric_snapshots",
        "metric_snapshots_default",
        "metric_snapshots_p20240102",  # a day table, not a leaf
        "metric_tier_1m_p202402",
        "metric_snapshots_p202401_cpu",  # a month where days are expected
        "metric_tier_1m_p20240102_cpu",  # a day where months are expected
        "metric_snapshots_p2024010_cpu",
        "metric_snapshots_p20240102_",
        "metric_tier_pending",
        "users",
    ):
        assert parse_partition(not_a_leaf) is None, not_a_leaf


def test_is_partition() -> None:
    for name in (
        "metric_snapshots_default",
        "metric_tier_1m_default",
        "metric_tier_1h_default",
        "metric_snapshots_p20240102",
        "metric_snapshots_p20240102_cpu",
        "metric_snapshots_p20240102_other",
        "metric_tier_1m_p202402",
        "metric_tier_1h_p202402_sensors",
    ):
        assert is_partition(name), name
    for name in (
        "metric_snapshots",
        "metric_tier_1m",
        "metric_tier_1h",
        "metric_tier_pending",
        "maintenance_state",
        "metric_snapshots_p2024010",
        "metric_snapshots_legacy",
        "users",
    ):
        assert not is_partition(name), name


def test_period_names() -> None:
    assert SNAPSHOTS.period_name(date(2024, 1, 2)) == "metric_snapshots_p20240102"
    assert TIER_MINUTE.period_name(date(2024, 1, 2)) == "metric_tier_1m_p202401"
    assert TIER_HOUR.period_name(date(2024, 12, 31)) == "metric_tier_1h_p202412"
    assert SNAPSHOTS.default_partition == "metric_snapshots_default"
    assert TIER_HOUR.default_partition == "metric_tier_1h_default"


@pytest.mark.parametrize(
    ("moment", "start", "end"),
    [
        (date(2024, 1, 31), date(2024, 1, 1), date(2024, 2, 1)),
        (date(2024, 2, 29), date(2024, 2, 1), date(2024, 3, 1)),  # leap year
        (date(2023, 2, 28), date(2023, 2, 1), date(2023, 3, 1)),
        (date(2024, 4, 30), date(2024, 4, 1), date(2024, 5, 1)),
        (date(2024, 12, 1), date(2024, 12, 1), date(2025, 1, 1)),  # December
        (date(2024, 12, 31), date(2024, 12, 1), date(2025, 1, 1)),
    ],
)
def test_month_periods(moment: date, start: date, end: date) -> None:
    for table in (TIER_MINUTE, TIER_HOUR):
        assert table.period_start(moment) == start
        assert table.period_end(start) == end


def test_day_periods() -> None:
    assert SNAPSHOTS.period_start(date(2024, 2, 29)) == date(2024, 2, 29)
    assert SNAPSHOTS.period_end(date(2024, 2, 28)) == date(2024, 2, 29)
    assert SNAPSHOTS.period_end(date(2024, 12, 31)) == date(2025, 1, 1)


def test_partition_bounds() -> None:
    day = parse_partition("metric_snapshots_p20241231_cpu")
    month = parse_partition("metric_tier_1h_p202412_other")
    assert day is not None and month is not None
    assert (day.start, day.end) == (
        datetime(2024, 12, 31, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert (month.start, month.end) == (
        datetime(2024, 12, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )


# ----- SQLite ------------------------------------------------------------------------------------


async def test_sqlite_has_no_partitions(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.connect() as connection:
        assert await ensure_snapshot_partitions(connection, today=date(2031, 1, 1)) == 0
        assert (
            await ensure_partitions_between(
                connection, SNAPSHOTS, date(2031, 1, 1), date(2031, 1, 2)
            )
            == 0
        )
        assert await list_snapshot_partitions(connection) == []
        session = AsyncSession(bind=connection)
        try:
            assert await ensure_snapshot_partitions(session) == 0
            for table in PARTITIONED_TABLES:
                assert await list_partitions(session, table) == []
        finally:
            await session.close()
