from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from perfwatch.db.base import Base
from perfwatch.db.types import JSONDocument, UTCDateTime


class _TierRow:
    """One host's metric type over one bucket of a resolution tier (``metrics/tiers/``).

    ``stats`` maps every numeric field path of the bucket's snapshots to ``[count, sum, min,
    max, last]``; ``snapshots`` is how many snapshots the bucket holds. On PostgreSQL the
    tables are partitioned by month and then by type (migration 0003), so a (type, month)
    expires as one ``DROP TABLE``.
    """

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    metric_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    snapshots: Mapped[int] = mapped_column(Integer)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class MetricTierMinute(_TierRow, Base):
    __tablename__ = "metric_tier_1m"
    __table_args__ = (
        CheckConstraint("snapshots >= 1", name="snapshots_positive"),
        # SQLite: rows stored in key order, so a series' buckets are one range read.
        {"sqlite_with_rowid": False},
    )


class MetricTierHour(_TierRow, Base):
    __tablename__ = "metric_tier_1h"
    __table_args__ = (
        CheckConstraint("snapshots >= 1", name="snapshots_positive"),
        {"sqlite_with_rowid": False},
    )


class MetricTierPending(Base):
    """A minute of a host's metric type that received rows after the tier job may have rolled
    it up (spool replay, seed, archive restore, agent back-fill): recomputed by the job."""

    __tablename__ = "metric_tier_pending"
    __table_args__ = ({"sqlite_with_rowid": False},)

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    metric_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
