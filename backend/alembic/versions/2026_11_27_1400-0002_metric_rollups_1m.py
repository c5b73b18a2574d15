"""metric_rollups_1m: per-minute totals of snapshot fields, filled when series read them

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Columns use plain SQLAlchemy types with the DDL of perfwatch.db.types at the time (UTCDateTime
# is sa.DateTime(timezone=True)): a revision never imports application code.


def upgrade() -> None:
    # Not partitioned: 1,440 rows per host, type and field a day, dropped by the maintenance
    # loop once older than the snapshots kept. SQLite keeps the rows in key order (no rowid).
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
        op.f("ix_metric_rollups_1m_host_metric_type_minute"),
        "metric_rollups_1m",
        ["host", "metric_type", "minute"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_metric_rollups_1m_host_metric_type_minute"), table_name="metric_rollups_1m"
    )
    op.drop_table("metric_rollups_1m")
