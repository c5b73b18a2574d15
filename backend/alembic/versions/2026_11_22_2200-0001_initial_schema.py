"""initial schema: users, metric_snapshots (daily partitions on PG), config, archive policies

Revision ID: 0001
Revises:
Create Date: 2026-11-22 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Frozen here, not imported from perfwatch: a revision must create the same schema whatever the
# application code becomes. Copied from perfwatch.db.types (the DDL of UTCDateTime is
# sa.DateTime(timezone=True); JSONDocument and BigIntegerKey below) and perfwatch.db.partitions
# as they were when this revision was written.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_INTEGER_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DEFAULT_PARTITION = "metric_snapshots_default"
ENSURE_PARTITIONS_FUNCTION = """
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
        partition_name := 'metric_snapshots_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(partition_name) IS NULL THEN
            lower_bound := day::timestamp AT TIME ZONE 'UTC';
            upper_bound := (day + 1)::timestamp AT TIME ZONE 'UTC';
            SELECT EXISTS (
                SELECT 1 FROM metric_snapshots_default
                WHERE captured_at >= lower_bound AND captured_at < upper_bound
            ) INTO stranded;
            IF stranded THEN
                -- Rows for this day sit in DEFAULT: move them into a new table, then attach it.
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


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("full_name", sa.String(length=255), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "member",
                "viewer",
                name="user_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            server_default="viewer",
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_index("uq_users_lower_username", "users", [sa.text("lower(username)")], unique=True)
    op.create_index("uq_users_lower_email", "users", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "config_entries",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", JSON_DOCUMENT, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_config_entries")),
    )

    op.create_table(
        "archive_policies",
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("downsample_after_days", sa.Integer(), nullable=True),
        sa.Column("downsample_interval", sa.Integer(), nullable=True),
        sa.Column(
            "action",
            sa.Enum(
                "delete",
                "archive",
                name="archive_action",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            server_default="delete",
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "retention_days >= 1", name=op.f("ck_archive_policies_retention_days_positive")
        ),
        sa.CheckConstraint(
            "downsample_after_days IS NULL OR downsample_after_days >= 1",
            name=op.f("ck_archive_policies_downsample_after_days_positive"),
        ),
        sa.CheckConstraint(
            "downsample_interval IS NULL OR downsample_interval >= 1",
            name=op.f("ck_archive_policies_downsample_interval_positive"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_policies")),
        sa.UniqueConstraint("metric_type", name=op.f("uq_archive_policies_metric_type")),
    )

    postgres = _is_postgres()
    op.create_table(
        "metric_snapshots",
        sa.Column("id", BIG_INTEGER_KEY, sa.Identity(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("metric_data", JSON_DOCUMENT, nullable=False),
        # A partitioned table's primary key must contain the partition column.
        sa.PrimaryKeyConstraint(
            *(("id", "captured_at") if postgres else ("id",)), name=op.f("pk_metric_snapshots")
        ),
        sa.UniqueConstraint(
            "host",
            "metric_type",
            "captured_at",
            name=op.f("uq_metric_snapshots_host_metric_type_captured_at"),
        ),
        **({"postgresql_partition_by": "RANGE (captured_at)"} if postgres else {}),
    )
    op.create_index(
        op.f("ix_metric_snapshots_metric_type_captured_at"),
        "metric_snapshots",
        ["metric_type", "captured_at"],
    )
    op.create_index(op.f("ix_metric_snapshots_captured_at"), "metric_snapshots", ["captured_at"])

    if postgres:
        # init-db.sql's read-only role for dashboards reads every table by default privilege;
        # password hashes are not for dashboards.
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'perfwatch_readonly') "
            "THEN REVOKE ALL ON users FROM perfwatch_readonly; END IF; END $$"
        )
        op.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF metric_snapshots DEFAULT")
        op.execute(ENSURE_PARTITIONS_FUNCTION)
        op.execute(
            "SELECT perfwatch_ensure_snapshot_partitions("
            "(now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7)"
        )


def downgrade() -> None:
    if _is_postgres():
        op.execute("DROP FUNCTION IF EXISTS perfwatch_ensure_snapshot_partitions(date, date)")
    op.drop_index(op.f("ix_metric_snapshots_captured_at"), table_name="metric_snapshots")
    op.drop_index(
        op.f("ix_metric_snapshots_metric_type_captured_at"), table_name="metric_snapshots"
    )
    # Dropping a partitioned table drops its partitions with it.
    op.drop_table("metric_snapshots")
    op.drop_table("archive_policies")
    op.drop_table("config_entries")
    op.drop_index("uq_users_lower_email", table_name="users")
    op.drop_index("uq_users_lower_username", table_name="users")
    op.drop_table("users")
