from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Double, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from perfwatch.db.base import Base
from perfwatch.db.types import UTCDateTime


class MetricRollup(Base):
    """Totals of one field of one host's metric type over one UTC minute, derived from
    ``metric_snapshots`` the first time a series needs that minute (``metrics/rollups.py``).

    ``field`` is a validated field path (``percent``, ``load_average.1m``). ``snapshot_count``
    is the number of snapshots in the minute (a series bucket's ``count``), ``value_count`` how
    many of them had a number at that path; ``value_sum``/``value_min``/``value_max`` are NULL
    when none had. A minute without any snapshot has no rows.
    """

    __tablename__ = "metric_rollups_1m"
    __table_args__ = (
        CheckConstraint(
            "value_count >= 0 AND snapshot_count >= value_count", name="counts_consistent"
        ),
        # Late rows and retention drop minutes of a host and type across all fields.
        Index("ix_metric_rollups_1m_host_metric_type_minute", "host", "metric_type", "minute"),
        # SQLite: rows stored in key order, so a series' minutes are one range read.
        {"sqlite_with_rowid": False},
    )

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    metric_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    field: Mapped[str] = mapped_column(String(200), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    snapshot_count: Mapped[int] = mapped_column(Integer)
    value_count: Mapped[int] = mapped_column(Integer)
    value_sum: Mapped[float | None] = mapped_column(Double(), nullable=True)
    value_min: Mapped[float | None] = mapped_column(Double(), nullable=True)
    value_max: Mapped[float | None] = mapped_column(Double(), nullable=True)

    def __repr__(self) -> str:
        return (
            f"<MetricRollup {self.host}/{self.metric_type}/{self.field} "
            f"@ {self.minute.isoformat()} n={self.value_count}>"
        )
