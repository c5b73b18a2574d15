from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Identity, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from perfwatch.db.base import Base
from perfwatch.db.types import BigIntegerKey, JSONDocument, UTCDateTime


class MetricSnapshot(Base):
    """One collector's reading for one host at one instant.

    On PostgreSQL the table is range-partitioned by day on ``captured_at``, each day
    list-partitioned by ``metric_type`` (``db/partitions.py``), and its primary key is
    ``(id, captured_at, metric_type)`` (a partitioned table's keys must include the partition
    columns); the migrations own that DDL. The ORM identifies rows by ``id`` alone, which the
    identity sequence keeps unique, so the same model serves SQLite's plain table.
    """

    __tablename__ = "metric_snapshots"
    __table_args__ = (
        # Replays of a spooled batch hit this and are ignored, so they cannot duplicate rows.
        # It also serves every read: queries name a host and a type and a time range.
        UniqueConstraint("host", "metric_type", "captured_at"),
    )

    id: Mapped[int] = mapped_column(BigIntegerKey, Identity(), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    metric_type: Mapped[str] = mapped_column(String(64))
    metric_data: Mapped[dict[str, Any]] = mapped_column(JSONDocument)

    def __repr__(self) -> str:
        return f"<MetricSnapshot {self.host}/{self.metric_type} @ {self.captured_at.isoformat()}>"
