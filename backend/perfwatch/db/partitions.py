"""Daily range partitions of ``metric_snapshots`` on PostgreSQL.

The initial migration creates the partitioned table, a DEFAULT partition (so a row whose day
has no partition yet is stored rather than rejected) and the SQL function
``perfwatch_ensure_snapshot_partitions(first_day, last_day)``. The application calls it at
start-up and then hourly through ``ensure_snapshot_partitions``; the function moves any rows that
landed in the DEFAULT partition into the day's new partition.
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

ENSURE_PARTITIONS_FUNCTION = f"""
CREATE OR REPLACE FUNCTION perfwatch_ensure_snapshot_partitions(first_day date, last_day date)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    day date;
    partition_name text;
    lower_bound timestamptz;
    upper_bound timestamptz;
    created integer := 0;
    stranded boolean;
BEGIN
    IF last_day < first_day THEN
        RAISE EXCEPTION 'last_day % is before first_day %', last_day, first_day;
    END IF;
    -- Serialise concurrent callers (several replicas at start-up).
    PERFORM pg_advisory_xact_lock(hashtext('perfwatch_ensure_snapshot_partitions'));
    day := first_day;
    WHILE day <= last_day LOOP
        partition_name := '{PARTITION_PREFIX}' || to_char(day, 'YYYYMMDD');
        IF to_regclass(partition_name) IS NULL THEN
            lower_bound := day::timestamp AT TIME ZONE 'UTC';
            upper_bound := (day + 1)::timestamp AT TIME ZONE 'UTC';
            SELECT EXISTS (
                SELECT 1 FROM {DEFAULT_PARTITION}
                WHERE captured_at >= lower_bound AND captured_at < upper_bound
            ) INTO stranded;
            IF stranded THEN
                -- Rows for this day sit in DEFAULT: move them into a new table, then attach it.
                EXECUTE format(
                    'CREATE TABLE %I (LIKE metric_snapshots '
                    'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                    partition_name);
                EXECUTE format(
                    'WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE captured_at >= $1 '
                    'AND captured_at < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
                    partition_name) USING lower_bound, upper_bound;
                EXECUTE format(
                    'ALTER TABLE metric_snapshots ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                    partition_name, lower_bound, upper_bound);
            ELSE
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF metric_snapshots FOR VALUES FROM (%L) TO (%L)',
                    partition_name, lower_bound, upper_bound);
            END IF;
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END;
$$;
"""


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
