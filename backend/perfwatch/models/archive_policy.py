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
    """How long each resolution of a metric type (``*``: the fallback) is kept, and whether raw
    snapshots are archived to files before they are dropped."""

    __tablename__ = "archive_policies"
    __table_args__ = (
        CheckConstraint("retention_days >= 1", name="retention_days_positive"),
        CheckConstraint(
            "raw_days >= 1 AND raw_days <= minute_days AND minute_days <= retention_days",
            name="tiers_ordered",
        ),
    )

    # One policy per metric type; "*" is the fallback for types without their own.
    metric_type: Mapped[str] = mapped_column(String(64), unique=True)
    # Days each resolution is kept (docs/retention.md): raw snapshots, the 1-minute tier, and
    # the 1-hour tier, which is all of the history.
    raw_days: Mapped[int] = mapped_column(Integer)
    minute_days: Mapped[int] = mapped_column(Integer)
    retention_days: Mapped[int] = mapped_column(Integer)
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
        return (
            f"<ArchivePolicy {self.metric_type} raw={self.raw_days}d 1m={self.minute_days}d "
            f"1h={self.retention_days}d {self.action.value}>"
        )
