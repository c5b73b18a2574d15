from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from perfwatch.db.base import Base
from perfwatch.db.types import JSONDocument, UTCDateTime


class MaintenanceState(Base):
    """What one maintenance job (``tiers``, ``retention``) last did, shown by
    ``GET /api/v1/retention``; ``watermark`` is the job's progress mark (the tier job: every
    minute before it is rolled up)."""

    __tablename__ = "maintenance_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
