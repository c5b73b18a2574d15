"""Daily range partitions of ``metric_snapshots`` on PostgreSQL.

The initial migration (revision 0001, which holds its SQL) creates the partitioned table, a
DEFAULT partition (so a row whose day has no partition yet is stored rather than rejected) and
the SQL function ``perfwatch_ensure_snapshot_partitions(first_day, last_day)``. The application
calls it at start-up and then hourly through ``ensure_snapshot_partitions``; the function moves
any rows that landed in the DEFAULT partition into the day's new partition. The names below are
the ones that function gives its partitions.
The hourly loop that calls it is the metrics domain's (``metrics/maintenance.py``).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

logger = logging.getLogger("perfwatch.db.partitions")

PARTITION_PREFIX = "metric_snapshots_p"
DEFAULT_PARTITION = "metric_snapshots_default"
_PARTITION_NAME = re.compile(rf"^{PARTITION_PREFIX}\d{{8}}$")

DEFAULT_DAYS_BEHIND = 1
DEFAULT_DAYS_AHEAD = 7


def _dialect_name(connection: AsyncConnection | AsyncSession) -> str:
    if isinstance(connection, AsyncSession):
        return connection.get_bind().dialect.name
    return connection.dialect.name


def is_snapshot_partition(table_name: str) -> bool:
    return table_name == DEFAULT_PARTITION or bool(_PARTITION_NAME.match(table_name))


def partition_name_for(day: date) -> str:
    return f"{PARTITION_PREFIX}{day:%Y%m%d}"


async def ensure_snapshot_partitions(
    connection: AsyncConnection | AsyncSession,
    *,
    days_behind: int = DEFAULT_DAYS_BEHIND,
    days_ahead: int = DEFAULT_DAYS_AHEAD,
    today: date | None = None,
) -> int:
    """Create the missing daily partitions around ``today``; return how many were created.

    A no-op returning 0 on SQLite, whose table is not partitioned. The caller commits.
    """
    if _dialect_name(connection) != "postgresql":
        return 0
    today = today or datetime.now(UTC).date()
    result = await connection.execute(
        text("SELECT perfwatch_ensure_snapshot_partitions(:first_day, :last_day)"),
        {
            "first_day": today - timedelta(days=days_behind),
            "last_day": today + timedelta(days=days_ahead),
        },
    )
    return int(result.scalar_one())


async def list_snapshot_partitions(connection: AsyncConnection | AsyncSession) -> list[str]:
    """Names of the partitions attached to ``metric_snapshots`` (empty on SQLite)."""
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
