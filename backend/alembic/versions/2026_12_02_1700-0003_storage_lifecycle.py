"""storage lifecycle: (day, type) partitions, 1-minute and 1-hour tiers, policy columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 17:00:00

- ``metric_snapshots`` on PostgreSQL becomes RANGE(captured_at) by day, each day LIST(metric_type)
  by sampler type plus a DEFAULT child, so one (type, day) is dropped on its own (issue 11).
  Existing rows are moved into the new layout; the two indexes nothing needs once queries prune
  to a (type, day) are not recreated.
- ``metric_tier_1m`` / ``metric_tier_1h``: one row per (host, type, bucket) with the statistics
  of every numeric field in a JSON object; on PostgreSQL by month, then by type, like the raw
  table. ``metric_rollups_1m`` (filled lazily, one row per field) is dropped: the tier job
  rebuilds the history from the raw rows.
- ``metric_tier_pending``: minutes touched by late rows, for the tier job to recompute.
- ``maintenance_state``: each maintenance job's last run, next run, error and watermark.
- ``archive_policies``: ``raw_days`` / ``minute_days`` / ``retention_days`` say what each tier
  keeps; ``downsample_after_days`` and ``downsample_interval`` are gone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here, not imported from perfwatch (a revision creates the same schema whatever the code
# becomes): the DDL of perfwatch.db.types, the sampler's metric types, and the partition function
# of perfwatch.db.partitions as they are when this revision is written.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_INTEGER_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SAMPLER_TYPES = ("cpu", "memory", "disk", "network", "processes", "system", "sensors")
TIER_TABLES = ("metric_tier_1m", "metric_tier_1h")

ENSURE_PARTITIONS_FUNCTION = """
CREATE OR REPLACE FUNCTION perfwatch_ensure_partitions(
    parent text, time_column text, unit text, first_day date, last_day date, types text[])
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    period date;
    next_period date;
    part text;
    kind text;
    lower_bound timestamptz;
    upper_bound timestamptz;
    created integer := 0;
    stranded boolean;
    default_part text := parent || '_default';
    -- The 1-hour tier's rows (a few kB of jsonb) stay inline and uncompressed: a year's chart
    -- reads 8,760 of them, and decompressing each costs more than the disk it saves (the
    -- whole tier is ~50 MB per host-year). docs/retention.md, "Measurements".
    leaf_options text := CASE WHEN parent = 'metric_tier_1h'
                              THEN ' WITH (toast_tuple_target = 8160)' ELSE '' END;
BEGIN
    IF unit NOT IN ('day', 'month') THEN
        RAISE EXCEPTION 'unit must be day or month, got %', unit;
    END IF;
    IF last_day < first_day THEN
        RAISE EXCEPTION 'last_day % is before first_day %', last_day, first_day;
    END IF;
    -- Serialise concurrent callers (several replicas at start-up, the maintenance job).
    PERFORM pg_advisory_xact_lock(hashtext('perfwatch_ensure_partitions:' || parent));
    period := CASE unit WHEN 'day' THEN first_day ELSE date_trunc('month', first_day)::date END;
    WHILE period <= last_day LOOP
        IF unit = 'day' THEN
            next_period := period + 1;
            part := parent || '_p' || to_char(period, 'YYYYMMDD');
        ELSE
            next_period := (period + interval '1 month')::date;
            part := parent || '_p' || to_char(period, 'YYYYMM');
        END IF;
        IF to_regclass(part) IS NULL THEN
            lower_bound := period::timestamp AT TIME ZONE 'UTC';
            upper_bound := next_period::timestamp AT TIME ZONE 'UTC';
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)',
                           default_part, time_column, time_column)
                INTO stranded USING lower_bound, upper_bound;
            IF stranded THEN
                -- Rows of this period sit in DEFAULT: build the period's table, move them in,
                -- then attach it (attaching checks that DEFAULT holds none of its rows).
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
                               ' PARTITION BY LIST (metric_type)', part, parent);
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)'
                               ' PARTITION BY LIST (metric_type)',
                               part, parent, lower_bound, upper_bound);
            END IF;
            FOREACH kind IN ARRAY types LOOP
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%L)',
                               part || '_' || kind, part, kind) || leaf_options;
            END LOOP;
            EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', part || '_other', part)
                || leaf_options;
            IF stranded THEN
                EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 '
                               'RETURNING *) INSERT INTO %I SELECT * FROM moved',
                               default_part, time_column, time_column, part)
                    USING lower_bound, upper_bound;
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               parent, part, lower_bound, upper_bound);
            END IF;
            created := created + 1;
        END IF;
        period := next_period;
    END LOOP;
    RETURN created;
END;
$$;
"""

# The 0001 defaults, and what they become: a week of raw alone was 2 GB per host.
OLD_DEFAULTS = {"*": (30, 7, 60, "delete"), "processes": (7, 1, 300, "archive")}
NEW_DEFAULTS = {"*": (2, 30, 730), "processes": (2, 30, 365)}


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    postgres = _is_postgres()
    _policy_columns()
    op.drop_index("ix_metric_rollups_1m_host_metric_type_minute", table_name="metric_rollups_1m")
    op.drop_table("metric_rollups_1m")
    if postgres:
        op.execute(ENSURE_PARTITIONS_FUNCTION)
        _repartition_snapshots()
    else:
        op.drop_index("ix_metric_snapshots_metric_type_captured_at", table_name="metric_snapshots")
        op.drop_index("ix_metric_snapshots_captured_at", table_name="metric_snapshots")
    for table in TIER_TABLES:
        _create_tier(table, postgres)
    op.create_table(
        "metric_tier_pending",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "host", "metric_type", "minute", name=op.f("pk_metric_tier_pending")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "maintenance_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", JSON_DOCUMENT, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_maintenance_state")),
    )


def _policy_columns() -> None:
    with op.batch_alter_table("archive_policies") as batch:
        batch.add_column(sa.Column("raw_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("minute_days", sa.Integer(), nullable=True))
    policies = sa.table(
        "archive_policies",
        sa.column("metric_type", sa.String()),
        sa.column("retention_days", sa.Integer()),
        sa.column("downsample_after_days", sa.Integer()),
        sa.column("downsample_interval", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("raw_days", sa.Integer()),
        sa.column("minute_days", sa.Integer()),
    )
    # Before: raw kept retention_days, 1-minute points past downsample_after_days. After: raw
    # for raw_days, then the 1-minute tier to minute_days, the 1-hour tier to retention_days.
    op.execute(
        policies.update().values(
            raw_days=sa.func.least(
                sa.func.coalesce(policies.c.downsample_after_days, policies.c.retention_days),
                policies.c.retention_days,
            )
            if _is_postgres()
            else sa.func.min(
                sa.func.coalesce(policies.c.downsample_after_days, policies.c.retention_days),
                policies.c.retention_days,
            ),
            minute_days=policies.c.retention_days,
        )
    )
    for metric_type, (keep, after, interval, action) in OLD_DEFAULTS.items():
        raw, minute, hour = NEW_DEFAULTS[metric_type]
        op.execute(
            policies.update()
            .where(
                policies.c.metric_type == metric_type,
                policies.c.retention_days == keep,
                policies.c.downsample_after_days == after,
                policies.c.downsample_interval == interval,
                policies.c.action == action,
            )
            .values(raw_days=raw, minute_days=minute, retention_days=hour)
        )
    with op.batch_alter_table("archive_policies") as batch:
        batch.alter_column("raw_days", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("minute_days", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint(
            op.f("ck_archive_policies_downsample_after_days_positive"), type_="check"
        )
        batch.drop_constraint(
            op.f("ck_archive_policies_downsample_interval_positive"), type_="check"
        )
        batch.drop_column("downsample_after_days")
        batch.drop_column("downsample_interval")
        batch.create_check_constraint(
            op.f("ck_archive_policies_tiers_ordered"),
            "raw_days >= 1 AND raw_days <= minute_days AND minute_days <= retention_days",
        )


def _set_aside(aside: str) -> None:
    """Rename ``metric_snapshots``, its partitions and its identity's sequence after ``aside``,
    and drop its keys, so the table that replaces it takes every name back: left in place,
    the old names push the new ones aside (``metric_snapshots_id_seq1``, ``…_pkey1``). The rows
    are only read from here on; the table is dropped once they are copied."""
    op.execute(f"ALTER TABLE metric_snapshots RENAME TO {aside}")
    # Dropped with their indexes on every partition (index names are per schema).
    op.execute(
        f"ALTER TABLE {aside} DROP CONSTRAINT pk_metric_snapshots, "
        "DROP CONSTRAINT uq_metric_snapshots_host_metric_type_captured_at"
    )
    op.execute(
        "DO $$ DECLARE part text; BEGIN "
        "FOR part IN SELECT c.relname FROM pg_partition_tree("
        f"'{aside}') AS t JOIN pg_class c ON c.oid = t.relid WHERE t.level > 0 LOOP "
        "EXECUTE format('ALTER TABLE %I RENAME TO %I', part, "
        f"replace(part, 'metric_snapshots_', '{aside}_')); "
        "END LOOP; "
        "EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', "
        f"pg_get_serial_sequence('{aside}', 'id'), '{aside}_id_seq'); END $$"
    )


def _copy_from(aside: str) -> None:
    """Copy the rows of ``aside`` into the new ``metric_snapshots`` with their ids; the identity
    goes on from where the old one was (ids handed out and deleted are not given again)."""
    op.execute(
        "INSERT INTO metric_snapshots (id, host, captured_at, metric_type, metric_data) "
        "OVERRIDING SYSTEM VALUE SELECT id, host, captured_at, metric_type, metric_data "
        f"FROM {aside}"
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('metric_snapshots', 'id'), GREATEST("
        "(SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END "
        f"FROM {aside}_id_seq), "
        "COALESCE((SELECT max(id) FROM metric_snapshots), 0) + 1), false)"
    )
    op.execute(f"DROP TABLE {aside}")


def _repartition_snapshots() -> None:
    """Set the day-partitioned table aside, create the (day, type) layout, copy the rows (ids
    kept, the identity continued), drop the old table."""
    op.execute("DROP INDEX ix_metric_snapshots_metric_type_captured_at")
    op.execute("DROP INDEX ix_metric_snapshots_captured_at")
    _set_aside("metric_snapshots_legacy")
    op.execute("DROP FUNCTION IF EXISTS perfwatch_ensure_snapshot_partitions(date, date)")
    op.create_table(
        "metric_snapshots",
        sa.Column("id", BIG_INTEGER_KEY, sa.Identity(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("metric_data", JSON_DOCUMENT, nullable=False),
        # A partitioned table's keys must contain every partition column.
        sa.PrimaryKeyConstraint("id", "captured_at", "metric_type", name="pk_metric_snapshots"),
        sa.UniqueConstraint(
            "host",
            "metric_type",
            "captured_at",
            name="uq_metric_snapshots_host_metric_type_captured_at",
        ),
        postgresql_partition_by="RANGE (captured_at)",
    )
    op.execute("CREATE TABLE metric_snapshots_default PARTITION OF metric_snapshots DEFAULT")
    types = "ARRAY[" + ", ".join(f"'{kind}'" for kind in SAMPLER_TYPES) + "]::text[]"
    # Partitions for every day that holds rows, and the week ahead the application keeps.
    op.execute(
        "SELECT perfwatch_ensure_partitions('metric_snapshots', 'captured_at', 'day', d, d, "
        f"{types}) FROM (SELECT DISTINCT (captured_at AT TIME ZONE 'UTC')::date AS d "
        "FROM metric_snapshots_legacy) AS days"
    )
    op.execute(
        "SELECT perfwatch_ensure_partitions('metric_snapshots', 'captured_at', 'day', "
        f"(now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7, {types})"
    )
    _copy_from("metric_snapshots_legacy")


def _create_tier(table: str, postgres: bool) -> None:
    op.create_table(
        table,
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshots", sa.Integer(), nullable=False),
        sa.Column("stats", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("host", "metric_type", "bucket", name=f"pk_{table}"),
        sa.CheckConstraint("snapshots >= 1", name=op.f(f"ck_{table}_snapshots_positive")),
        sqlite_with_rowid=False,
        **({"postgresql_partition_by": "RANGE (bucket)"} if postgres else {}),
    )
    if postgres:
        types = "ARRAY[" + ", ".join(f"'{kind}'" for kind in SAMPLER_TYPES) + "]::text[]"
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        op.execute(
            f"SELECT perfwatch_ensure_partitions('{table}', 'bucket', 'month', "
            f"(now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date + 31, {types})"
        )


def downgrade() -> None:
    postgres = _is_postgres()
    op.drop_table("maintenance_state")
    op.drop_table("metric_tier_pending")
    for table in TIER_TABLES:
        op.drop_table(table)  # with its partitions
    if postgres:
        _unpartition_snapshots()
        op.execute(
            "DROP FUNCTION IF EXISTS "
            "perfwatch_ensure_partitions(text, text, text, date, date, text[])"
        )
    else:
        op.create_index(
            "ix_metric_snapshots_metric_type_captured_at",
            "metric_snapshots",
            ["metric_type", "captured_at"],
        )
        op.create_index("ix_metric_snapshots_captured_at", "metric_snapshots", ["captured_at"])
    op.create_table(
        "metric_rollups_1m",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot_count", sa.Integer(), nullable=False),
        sa.Column("value_count", sa.Integer(), nullable=False),
        sa.Column("value_sum", sa.Double(), nullable=True),
        sa.Column("value_min", sa.Double(), nullable=True),
        sa.Column("value_max", sa.Double(), nullable=True),
        sa.CheckConstraint(
            "value_count >= 0 AND snapshot_count >= value_count",
            name=op.f("ck_metric_rollups_1m_counts_consistent"),
        ),
        sa.PrimaryKeyConstraint(
            "host", "metric_type", "field", "minute", name=op.f("pk_metric_rollups_1m")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_metric_rollups_1m_host_metric_type_minute",
        "metric_rollups_1m",
        ["host", "metric_type", "minute"],
    )
    with op.batch_alter_table("archive_policies") as batch:
        batch.drop_constraint(op.f("ck_archive_policies_tiers_ordered"), type_="check")
        batch.add_column(sa.Column("downsample_after_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("downsample_interval", sa.Integer(), nullable=True))
    policies = sa.table(
        "archive_policies",
        sa.column("metric_type", sa.String()),
        sa.column("retention_days", sa.Integer()),
        sa.column("downsample_after_days", sa.Integer()),
        sa.column("downsample_interval", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("raw_days", sa.Integer()),
        sa.column("minute_days", sa.Integer()),
    )
    # The new defaults go back to the old ones, so that upgrading again gives the new defaults:
    # the mapping below would make "*" 30 days raw, 1-minute after 3, which upgrades to a
    # 1-hour tier of 30 days instead of 730.
    for metric_type, (raw, minute, hour) in NEW_DEFAULTS.items():
        keep, after, interval, action = OLD_DEFAULTS[metric_type]
        op.execute(
            policies.update()
            .where(
                policies.c.metric_type == metric_type,
                policies.c.raw_days == raw,
                policies.c.minute_days == minute,
                policies.c.retention_days == hour,
                policies.c.action == action,
            )
            .values(retention_days=keep, downsample_after_days=after, downsample_interval=interval)
        )
    # Raw history was kept retention_days: the 1-minute window is the closest meaning.
    op.execute(
        policies.update()
        .where(policies.c.downsample_interval.is_(None))  # not one of the defaults above
        .values(
            retention_days=policies.c.minute_days,
            downsample_after_days=sa.case(
                (policies.c.raw_days < policies.c.minute_days, policies.c.raw_days), else_=None
            ),
            downsample_interval=sa.case(
                (policies.c.raw_days < policies.c.minute_days, 60), else_=None
            ),
        )
    )
    with op.batch_alter_table("archive_policies") as batch:
        batch.drop_column("raw_days")
        batch.drop_column("minute_days")
        batch.create_check_constraint(
            op.f("ck_archive_policies_downsample_after_days_positive"),
            "downsample_after_days IS NULL OR downsample_after_days >= 1",
        )
        batch.create_check_constraint(
            op.f("ck_archive_policies_downsample_interval_positive"),
            "downsample_interval IS NULL OR downsample_interval >= 1",
        )


def _unpartition_snapshots() -> None:
    """Back to 0002's day partitions: the rows are copied into the old layout."""
    _set_aside("metric_snapshots_new")
    op.create_table(
        "metric_snapshots",
        sa.Column("id", BIG_INTEGER_KEY, sa.Identity(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("metric_data", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", "captured_at", name="pk_metric_snapshots"),
        sa.UniqueConstraint(
            "host",
            "metric_type",
            "captured_at",
            name="uq_metric_snapshots_host_metric_type_captured_at",
        ),
        postgresql_partition_by="RANGE (captured_at)",
    )
    op.create_index(
        "ix_metric_snapshots_metric_type_captured_at",
        "metric_snapshots",
        ["metric_type", "captured_at"],
    )
    op.create_index("ix_metric_snapshots_captured_at", "metric_snapshots", ["captured_at"])
    op.execute("CREATE TABLE metric_snapshots_default PARTITION OF metric_snapshots DEFAULT")
    op.execute(OLD_ENSURE_FUNCTION)
    op.execute(
        "SELECT perfwatch_ensure_snapshot_partitions(d, d) FROM (SELECT DISTINCT "
        "(captured_at AT TIME ZONE 'UTC')::date AS d FROM metric_snapshots_new) AS days"
    )
    op.execute(
        "SELECT perfwatch_ensure_snapshot_partitions("
        "(now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7)"
    )
    _copy_from("metric_snapshots_new")


# 0001's function, for the downgrade (frozen copy).
OLD_ENSURE_FUNCTION = """
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
    PERFORM pg_advisory_xact_lock(hashtext('perfwatch_ensure_snapshot_partitions'));
    day := first_day;
    WHILE day <= last_day LOOP
        partition_name := 'metric_snapshots_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(partition_name) IS NULL THEN
            lower_bound := day::timestamp AT TIME ZONE 'UTC';
            upper_bound := (day + 1)::timestamp AT TIME ZONE 'UTC';
            SELECT EXISTS (
                SELECT 1 FROM metric_snapshots_default
                WHERE captured_at >= lower_bound AND captured_at < upper_bound
            ) INTO stranded;
            IF stranded THEN
                EXECUTE format(
                    'CREATE TABLE %I (LIKE metric_snapshots '
                    'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                    partition_name);
                EXECUTE format(
                    'WITH moved AS (DELETE FROM metric_snapshots_default WHERE captured_at >= $1 '
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
