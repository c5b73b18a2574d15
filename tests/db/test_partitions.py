"""Daily range partitions of ``metric_snapshots`` on PostgreSQL (and their absence on SQLite)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from perfwatch.contract.metrics import SnapshotRow
from perfwatch.db.engine import build_engine
from perfwatch.db.partitions import (
    DEFAULT_DAYS_AHEAD,
    DEFAULT_DAYS_BEHIND,
    DEFAULT_PARTITION,
    ensure_snapshot_partitions,
    is_snapshot_partition,
    list_snapshot_partitions,
    partition_name_for,
)
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.maintenance import run_maintenance
from perfwatch.metrics.repository import SnapshotRepository
from tests.support.helpers import closed_postgres_url, make_settings


async def insert(owner: Any, rows: list[SnapshotRow]) -> int:
    """Store ``rows`` through the ingest path (``owner``: a session or a repository)."""
    session = getattr(owner, "session", owner)
    return await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows)


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


async def partition_of_rows(session: AsyncSession) -> dict[tuple[str, datetime], str]:
    """(host, captured_at) of every snapshot -> the partition table that holds it."""
    result = await session.execute(
        text("SELECT host, captured_at, tableoid::regclass::text FROM metric_snapshots")
    )
    return {(host, captured_at): table for host, captured_at, table in result}


async def rows_in(session: AsyncSession, table: str) -> int:
    return int((await session.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())


# ----- the schema ------------------------------------------------------------------------------
async def test_snapshots_table_is_range_partitioned_on_captured_at(
    pg_session: AsyncSession,
) -> None:
    result = await pg_session.execute(
        text(
            "SELECT p.partstrat::text, pg_get_partkeydef(c.oid) FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = 'metric_snapshots'"
        )
    )

    assert result.all() == [("r", "RANGE (captured_at)")]


async def test_snapshots_column_types(pg_session: AsyncSession) -> None:
    result = await pg_session.execute(
        text(
            "SELECT column_name, data_type, is_nullable, is_identity "
            "FROM information_schema.columns "
            "WHERE table_name = 'metric_snapshots' AND table_schema = current_schema()"
        )
    )
    columns = {
        name: (data_type, nullable, identity) for name, data_type, nullable, identity in result
    }

    assert columns == {
        "id": ("bigint", "NO", "YES"),
        "host": ("character varying", "NO", "NO"),
        "captured_at": ("timestamp with time zone", "NO", "NO"),
        "metric_type": ("character varying", "NO", "NO"),
        "metric_data": ("jsonb", "NO", "NO"),
    }


async def test_snapshots_indexes_and_constraints(pg_session: AsyncSession) -> None:
    result = await pg_session.execute(
        text(
            "SELECT i.relname, array_to_string(array_agg(a.attname ORDER BY k.ord), ','), "
            "x.indisunique, x.indisprimary "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid "
            "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "WHERE t.relname = 'metric_snapshots' GROUP BY i.relname, x.indisunique, x.indisprimary"
        )
    )
    indexes = {name: (columns, unique, primary) for name, columns, unique, primary in result}

    assert indexes == {
        "pk_metric_snapshots": ("id,captured_at", True, True),
        "uq_metric_snapshots_host_metric_type_captured_at": (
            "host,metric_type,captured_at",
            True,
            False,
        ),
        "ix_metric_snapshots_metric_type_captured_at": ("metric_type,captured_at", False, False),
        "ix_metric_snapshots_captured_at": ("captured_at", False, False),
    }
    constraints = await pg_session.execute(
        text(
            "SELECT conname, contype::text FROM pg_constraint "
            "WHERE conrelid = 'metric_snapshots'::regclass ORDER BY conname"
        )
    )
    assert constraints.all() == [
        ("pk_metric_snapshots", "p"),
        ("uq_metric_snapshots_host_metric_type_captured_at", "u"),
    ]


async def test_every_partition_carries_every_index(pg_session: AsyncSession) -> None:
    await ensure_snapshot_partitions(
        pg_session, today=date(2040, 1, 1), days_behind=0, days_ahead=1
    )
    partitions = await list_snapshot_partitions(pg_session)

    result = await pg_session.execute(
        text(
            "SELECT parent.relname, count(*) FROM pg_inherits "
            "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
            "WHERE parent.relkind = 'I' AND parent.relname LIKE '%metric_snapshots%' "
            "GROUP BY parent.relname"
        )
    )
    children_per_index = dict(result.all())

    assert set(children_per_index) == {
        "pk_metric_snapshots",
        "uq_metric_snapshots_host_metric_type_captured_at",
        "ix_metric_snapshots_metric_type_captured_at",
        "ix_metric_snapshots_captured_at",
    }
    assert set(children_per_index.values()) == {len(partitions)}


async def test_the_migration_created_the_default_partition_and_the_function(
    pg_session: AsyncSession,
) -> None:
    bound = await pg_session.execute(
        text(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
            f"WHERE c.relname = '{DEFAULT_PARTITION}'"
        )
    )
    function = await pg_session.execute(
        text("SELECT count(*) FROM pg_proc WHERE proname = 'perfwatch_ensure_snapshot_partitions'")
    )

    assert bound.scalar_one() == "DEFAULT"
    assert function.scalar_one() == 1


# ----- ensure_snapshot_partitions ----------------------------------------------------------
async def test_ensure_creates_the_daily_partitions_around_today(pg_session: AsyncSession) -> None:
    today = date(2031, 3, 10)

    created = await ensure_snapshot_partitions(pg_session, today=today)

    days = DEFAULT_DAYS_BEHIND + 1 + DEFAULT_DAYS_AHEAD
    assert created == days
    expected = {
        partition_name_for(today + timedelta(days=n - DEFAULT_DAYS_BEHIND)) for n in range(days)
    }
    names = set(await list_snapshot_partitions(pg_session))
    assert expected <= names
    assert "metric_snapshots_p20310309" in names
    assert "metric_snapshots_p20310317" in names
    assert "metric_snapshots_p20310308" not in names
    assert "metric_snapshots_p20310318" not in names


async def test_ensure_is_idempotent(pg_session: AsyncSession) -> None:
    today = date(2031, 3, 10)
    assert await ensure_snapshot_partitions(pg_session, today=today) > 0
    before = await list_snapshot_partitions(pg_session)

    assert await ensure_snapshot_partitions(pg_session, today=today) == 0

    assert await list_snapshot_partitions(pg_session) == before


async def test_ensure_only_creates_the_missing_days(pg_session: AsyncSession) -> None:
    await ensure_snapshot_partitions(
        pg_session, today=date(2031, 3, 10), days_behind=0, days_ahead=2
    )

    created = await ensure_snapshot_partitions(
        pg_session, today=date(2031, 3, 12), days_behind=1, days_ahead=2
    )

    assert created == 2  # the 13th and 14th; the 11th and 12th exist
    names = await list_snapshot_partitions(pg_session)
    assert [name for name in names if name.startswith("metric_snapshots_p203103")] == [
        "metric_snapshots_p20310310",
        "metric_snapshots_p20310311",
        "metric_snapshots_p20310312",
        "metric_snapshots_p20310313",
        "metric_snapshots_p20310314",
    ]


async def test_ensure_with_the_default_date_covers_today(pg_session: AsyncSession) -> None:
    await ensure_snapshot_partitions(pg_session)

    assert await ensure_snapshot_partitions(pg_session) == 0
    today = datetime.now(UTC).date()
    names = await list_snapshot_partitions(pg_session)
    for offset in range(-DEFAULT_DAYS_BEHIND, DEFAULT_DAYS_AHEAD + 1):
        assert partition_name_for(today + timedelta(days=offset)) in names


async def test_partition_bounds_are_utc_midnights(pg_session: AsyncSession) -> None:
    # Whatever the session's time zone, a day's partition is that UTC day.
    await pg_session.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
    await ensure_snapshot_partitions(
        pg_session, today=date(2031, 7, 4), days_behind=0, days_ahead=0
    )
    await pg_session.execute(text("SET LOCAL TIME ZONE 'UTC'"))

    bound = await pg_session.execute(
        text(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
            "WHERE relname = 'metric_snapshots_p20310704'"
        )
    )

    assert bound.scalar_one() == (
        "FOR VALUES FROM ('2031-07-04 00:00:00+00') TO ('2031-07-05 00:00:00+00')"
    )


async def test_ensure_refuses_a_backwards_range(pg_session: AsyncSession) -> None:
    with pytest.raises(DBAPIError, match="is before first_day"):
        async with pg_session.begin_nested():
            await ensure_snapshot_partitions(
                pg_session, today=date(2031, 1, 1), days_behind=-3, days_ahead=0
            )


async def test_ensure_accepts_a_connection(postgres_engine: AsyncEngine) -> None:
    async with postgres_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            created = await ensure_snapshot_partitions(
                connection, today=date(2032, 2, 28), days_behind=0, days_ahead=1
            )
            names = await list_snapshot_partitions(connection)
        finally:
            await transaction.rollback()

    assert created == 2
    assert {"metric_snapshots_p20320228", "metric_snapshots_p20320229"} <= set(names)


# ----- where rows land ------------------------------------------------------------------------
async def test_rows_across_a_day_boundary_land_in_their_days_partition(
    pg_session: AsyncSession,
) -> None:
    day = date(2031, 3, 10)
    await ensure_snapshot_partitions(pg_session, today=day, days_behind=0, days_ahead=1)
    plus_two = timezone(timedelta(hours=2))
    rows = [
        SnapshotRow("last-micro", at(day, 23, 59, 59, 999999), "cpu", {}),
        SnapshotRow("midnight", at(day + timedelta(days=1)), "cpu", {}),
        SnapshotRow("first", at(day), "cpu", {}),
        # 01:30 on the 11th at UTC+2 is 23:30 on the 10th in UTC.
        SnapshotRow("offset", datetime(2031, 3, 11, 1, 30, tzinfo=plus_two), "cpu", {}),
    ]

    assert await insert(pg_session, rows) == 4

    placed = {host: table for (host, _time), table in (await partition_of_rows(pg_session)).items()}
    assert placed == {
        "first": "metric_snapshots_p20310310",
        "last-micro": "metric_snapshots_p20310310",
        "offset": "metric_snapshots_p20310310",
        "midnight": "metric_snapshots_p20310311",
    }


async def test_rows_far_in_the_past_and_future_go_to_the_default_partition(
    pg_session: AsyncSession,
) -> None:
    rows = [
        SnapshotRow("old", at(date(2001, 9, 9), 1, 46, 40), "cpu", {"v": 1}),
        SnapshotRow("future", at(date(2099, 12, 31), 23, 59, 59), "cpu", {"v": 2}),
    ]

    assert await insert(pg_session, rows) == 2

    placed = {host: table for (host, _time), table in (await partition_of_rows(pg_session)).items()}
    assert placed == {"old": DEFAULT_PARTITION, "future": DEFAULT_PARTITION}
    # Replays are still caught there.
    assert await insert(pg_session, rows) == 0


async def test_a_new_partition_adopts_the_rows_stranded_in_default(
    pg_session: AsyncSession,
) -> None:
    repo = SnapshotRepository(pg_session)
    day = date(2001, 9, 9)
    stranded = [
        SnapshotRow(f"host-{n}", at(day, n, 15), "cpu", {"n": n, "nested": [n, {"x": "é"}]})
        for n in range(24)
    ]
    neighbours = [
        SnapshotRow("day-before", at(day) - timedelta(microseconds=1), "cpu", {}),
        SnapshotRow("day-after", at(day + timedelta(days=1)), "cpu", {}),
    ]
    assert await insert(repo, stranded + neighbours) == 26
    before = (
        await pg_session.execute(
            text("SELECT id, host, captured_at, metric_data FROM metric_snapshots ORDER BY id")
        )
    ).all()

    created = await ensure_snapshot_partitions(pg_session, today=day, days_behind=0, days_ahead=0)

    assert created == 1
    partition = "metric_snapshots_p20010909"
    assert partition in await list_snapshot_partitions(pg_session)
    after = (
        await pg_session.execute(
            text("SELECT id, host, captured_at, metric_data FROM metric_snapshots ORDER BY id")
        )
    ).all()
    assert after == before, "no row lost, duplicated or changed"
    placed = {host: table for (host, _time), table in (await partition_of_rows(pg_session)).items()}
    assert {placed[row.host] for row in stranded} == {partition}
    assert placed["day-before"] == DEFAULT_PARTITION
    assert placed["day-after"] == DEFAULT_PARTITION
    assert await rows_in(pg_session, partition) == 24
    assert await rows_in(pg_session, DEFAULT_PARTITION) == 2


async def test_an_adopted_partition_keeps_working_like_any_other(pg_session: AsyncSession) -> None:
    repo = SnapshotRepository(pg_session)
    day = date(2099, 1, 1)
    first = [SnapshotRow("a", at(day, 12), "cpu", {"v": 1})]
    await insert(repo, first)
    await ensure_snapshot_partitions(pg_session, today=day, days_behind=0, days_ahead=0)

    # The unique constraint reached the moved rows, and new rows get fresh ids.
    assert await insert(repo, first) == 0
    assert await insert(repo, [SnapshotRow("b", at(day, 13), "cpu", {})]) == 1
    result = await pg_session.execute(
        text("SELECT id, tableoid::regclass::text FROM metric_snapshots ORDER BY id")
    )
    rows = result.all()
    assert [table for _id, table in rows] == ["metric_snapshots_p20990101"] * 2
    assert len({snapshot_id for snapshot_id, _table in rows}) == 2
    latest = await repo.latest("b", "cpu")
    assert latest is not None and latest.captured_at == at(day, 13)
    # The default partition no longer accepts that day, the new partition does.
    assert await rows_in(pg_session, DEFAULT_PARTITION) == 0


# ----- listing and names ----------------------------------------------------------------------
async def test_list_snapshot_partitions(pg_session: AsyncSession) -> None:
    await ensure_snapshot_partitions(
        pg_session, today=date(2035, 5, 5), days_behind=0, days_ahead=0
    )

    names = await list_snapshot_partitions(pg_session)

    assert DEFAULT_PARTITION in names
    assert "metric_snapshots_p20350505" in names
    assert names == sorted(names)
    assert all(is_snapshot_partition(name) for name in names)
    catalogue = await pg_session.execute(
        text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'metric_snapshots'::regclass")
    )
    assert catalogue.scalar_one() == len(names)


def test_partition_names() -> None:
    assert partition_name_for(date(2024, 1, 2)) == "metric_snapshots_p20240102"
    assert is_snapshot_partition("metric_snapshots_p20240102")
    assert is_snapshot_partition(DEFAULT_PARTITION)
    assert not is_snapshot_partition("metric_snapshots")
    assert not is_snapshot_partition("metric_snapshots_p2024010")
    assert not is_snapshot_partition("metric_snapshots_p20240102_old")
    assert not is_snapshot_partition("users")


async def test_sqlite_has_no_partitions(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.connect() as connection:
        assert await ensure_snapshot_partitions(connection, today=date(2031, 1, 1)) == 0
        assert await list_snapshot_partitions(connection) == []
        session = AsyncSession(bind=connection)
        try:
            assert await ensure_snapshot_partitions(session) == 0
            assert await list_snapshot_partitions(session) == []
        finally:
            await session.close()


# ----- the maintenance loop --------------------------------------------------------------------
async def test_maintenance_keeps_running_on_sqlite_for_the_rollups(
    sqlite_engine: AsyncEngine,
) -> None:
    # No partitions there, but rollups older than the snapshots kept are dropped hourly.
    task = asyncio.create_task(run_maintenance(sqlite_engine, interval_seconds=3600))
    try:
        await asyncio.sleep(0.3)
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_maintenance_keeps_running_when_the_database_is_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = build_engine(make_settings(closed_postgres_url(), db_connect_timeout=2))
    caplog.set_level(logging.WARNING, logger="perfwatch.db.partitions")
    task = asyncio.create_task(run_maintenance(engine, interval_seconds=0.01))
    try:
        for _ in range(500):
            failures = [r for r in caplog.records if "partition maintenance failed" in r.message]
            if len(failures) >= 2:
                break
            await asyncio.sleep(0.01)
        assert not task.done(), "the loop must survive a failed round"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await engine.dispose()

    assert len(failures) >= 2
    assert failures[0].exc_info is not None


async def test_maintenance_keeps_the_weeks_partitions_on_postgres(
    postgres_engine: AsyncEngine,
) -> None:
    task = asyncio.create_task(run_maintenance(postgres_engine, interval_seconds=3600))
    try:
        await asyncio.sleep(0.5)
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async with postgres_engine.connect() as connection:
        names = await list_snapshot_partitions(connection)
        assert await ensure_snapshot_partitions(connection) == 0
        await connection.rollback()
    today = datetime.now(UTC).date()
    for offset in range(-DEFAULT_DAYS_BEHIND, DEFAULT_DAYS_AHEAD + 1):
        assert partition_name_for(today + timedelta(days=offset)) in names
