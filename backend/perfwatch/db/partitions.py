"""Time-then-type partitions of the history tables on PostgreSQL.

``metric_snapshots`` is partitioned by UTC day on ``captured_at``, the tiers
(``metric_tier_1m``, ``metric_tier_1h``) by UTC month on ``bucket``; each period is then
list-partitioned by ``metric_type``: one child per sampler type and an ``_other`` DEFAULT child
for any other type. So retention drops one (type, period) with one ``DROP TABLE``, never a
``DELETE`` (docs/retention.md). Each table also has a top-level DEFAULT partition, so a row
whose period has no partition yet is stored rather than refused.

Migration 0003 holds the SQL function ``perfwatch_ensure_partitions(parent, time_column, unit,
first, last, types)``, which creates missing periods (with their type children) and moves rows
stranded in the DEFAULT partition into them; the names below are the ones it gives. The
application calls it at start-up and from the maintenance job (a week of days ahead), and the
seed and archive restore call it for the past days they write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from perfwatch.contract.metrics import METRIC_TYPES

DEFAULT_DAYS_BEHIND = 1
DEFAULT_DAYS_AHEAD = 7
# The period child that holds every type without a child of its own.
OTHER_TYPES = "other"


@dataclass(frozen=True, slots=True)
class PartitionedTable:
    name: str
    time_column: str
    unit: str  # "day" or "month"

    @property
    def default_partition(self) -> str:
        return f"{self.name}_default"

    def period_name(self, period: date) -> str:
        return (
            f"{self.name}_p{period:%Y%m%d}" if self.unit == "day" else f"{self.name}_p{period:%Y%m}"
        )

    def period_start(self, moment: date) -> date:
        return moment if self.unit == "day" else moment.replace(day=1)

    def period_end(self, period: date) -> date:
        """The first day after ``period``."""
        if self.unit == "day":
            return period + timedelta(days=1)
        return (period.replace(day=28) + timedelta(days=4)).replace(day=1)


SNAPSHOTS = PartitionedTable("metric_snapshots", "captured_at", "day")
TIER_MINUTE = PartitionedTable("metric_tier_1m", "bucket", "month")
TIER_HOUR = PartitionedTable("metric_tier_1h", "bucket", "month")
PARTITIONED_TABLES = (SNAPSHOTS, TIER_MINUTE, TIER_HOUR)

_LEAF = re.compile(
    r"^(?P<table>metric_snapshots|metric_tier_1m|metric_tier_1h)_p(?P<period>\d{8}|\d{6})"
    r"(?:_(?P<kind>[a-z0-9_]+))?$"
)
_BY_NAME = {table.name: table for table in PARTITIONED_TABLES}


@dataclass(frozen=True, slots=True)
class Partition:
    """A (period, type) leaf: ``metric_type`` is None for the ``_other`` child."""

    table: PartitionedTable
    name: str
    period: date
    metric_type: str | None

    @property
    def start(self) -> datetime:
        return datetime(self.period.year, self.period.month, self.period.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        after = self.table.period_end(self.period)
        return datetime(after.year, after.month, after.day, tzinfo=UTC)


def parse_partition(name: str) -> Partition | None:
    """The (period, type) leaf a table name denotes, or None (a period table, a DEFAULT
    partition, anything else)."""
    match = _LEAF.match(name)
    if match is None or match["kind"] is None:
        return None
    table = _BY_NAME[match["table"]]
    raw = match["period"]
    if (table.unit == "day") != (len(raw) == 8):
        return None
    period = date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]) if len(raw) == 8 else 1)
    kind = match["kind"]
    return Partition(table, name, period, None if kind == OTHER_TYPES else kind)


def is_partition(table_name: str) -> bool:
    """Any table the partition function creates (for Alembic, which must not compare them)."""
    if any(table_name == table.default_partition for table in PARTITIONED_TABLES):
        return True
    match = _LEAF.match(table_name)
    return match is not None


def _dialect_name(connection: AsyncConnection | AsyncSession) -> str:
    if isinstance(connection, AsyncSession):
        return connection.get_bind().dialect.name
    return connection.dialect.name


async def ensure_partitions_between(
    connection: AsyncConnection | AsyncSession,
    table: PartitionedTable,
    first_day: date,
    last_day: date,
) -> int:
    """Create the periods of ``table`` from the one holding ``first_day`` to the one holding
    ``last_day``; returns how many were created (0 on SQLite). The caller commits."""
    if _dialect_name(connection) != "postgresql":
        return 0
    result = await connection.execute(
        text(
            "SELECT perfwatch_ensure_partitions(:parent, :time_column, :unit, :first_day, "
            ":last_day, CAST(:types AS text[]))"
        ),
        {
            "parent": table.name,
            "time_column": table.time_column,
            "unit": table.unit,
            "first_day": first_day,
            "last_day": last_day,
            "types": list(METRIC_TYPES),
        },
    )
    return int(result.scalar_one())


async def ensure_snapshot_partitions(
    connection: AsyncConnection | AsyncSession,
    *,
    days_behind: int = DEFAULT_DAYS_BEHIND,
    days_ahead: int = DEFAULT_DAYS_AHEAD,
    today: date | None = None,
) -> int:
    """Create the missing raw days, and tier months, from ``days_behind`` before ``today`` to
    ``days_ahead`` after it; return how many periods were created (0 on SQLite)."""
    today = today or datetime.now(UTC).date()
    first, last = today - timedelta(days=days_behind), today + timedelta(days=days_ahead)
    created = 0
    for table in PARTITIONED_TABLES:
        created += await ensure_partitions_between(connection, table, first, last)
    return created


async def list_partitions(
    connection: AsyncConnection | AsyncSession, table: PartitionedTable
) -> list[Partition]:
    """The (period, type) leaves of ``table``, oldest period first (empty on SQLite)."""
    if _dialect_name(connection) != "postgresql":
        return []
    result = await connection.execute(
        text(
            "SELECT leaf.relname FROM pg_inherits period_link "
            "JOIN pg_class root ON root.oid = period_link.inhparent "
            "JOIN pg_inherits leaf_link ON leaf_link.inhparent = period_link.inhrelid "
            "JOIN pg_class leaf ON leaf.oid = leaf_link.inhrelid "
            "WHERE root.relname = :parent ORDER BY leaf.relname"
        ),
        {"parent": table.name},
    )
    leaves = (parse_partition(row[0]) for row in result)
    return sorted(
        (leaf for leaf in leaves if leaf is not None and leaf.table == table),
        key=lambda leaf: (leaf.period, leaf.metric_type or ""),
    )


async def list_snapshot_partitions(connection: AsyncConnection | AsyncSession) -> list[str]:
    """Names of the tables directly attached to ``metric_snapshots`` (its days and DEFAULT;
    empty on SQLite)."""
    if _dialect_name(connection) != "postgresql":
        return []
    result = await connection.execute(
        text(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE parent.relname = 'metric_snapshots' ORDER BY child.relname"
        )
    )
    return [row[0] for row in result]
