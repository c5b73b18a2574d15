from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Enum, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from perfwatch.db.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from perfwatch.db.types import UTCDateTime


class ArchiveAction(StrEnum):
    DELETE = "delete"
    ARCHIVE = "archive"


class ArchivePolicy(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """How long raw snapshots of a metric type (``*``: all) are kept, and what happens next."""

    __tablename__ = "archive_policies"
    __table_args__ = (
        CheckConstraint("retention_days >= 1", name="retention_days_positive"),
        CheckConstraint(
            "downsample_after_days IS NULL OR downsample_after_days >= 1",
            name="downsample_after_days_positive",
        ),
        CheckConstraint(
            "downsample_interval IS NULL OR downsample_interval >= 1",
            name="downsample_interval_positive",
        ),
    )

    # One policy per metric type; "*" is the fallback for types without their own.
    metric_type: Mapped[str] = mapped_column(String(64), unique=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    downsample_after_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Bucket width in seconds for downsampled history.
    downsample_interval: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[ArchiveAction] = mapped_column(
        Enum(
            ArchiveAction,
            name="archive_action",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda actions: [action.value for action in actions],
        ),
        default=ArchiveAction.DELETE,
        server_default=ArchiveAction.DELETE.value,
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    def __repr__(self) -> str:
        return f"<ArchivePolicy {self.metric_type} keep={self.retention_days}d {self.action.value}>"
