from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from perfwatch.db.base import Base
from perfwatch.db.types import JSONDocument, UTCDateTime, utcnow


class ConfigEntry(Base):
    """A runtime setting changed through the API or CLI (sampling intervals, top-N, TTLs, …)."""

    __tablename__ = "config_entries"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONDocument)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), server_default=func.now(), default=utcnow, onupdate=utcnow
    )
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    def __repr__(self) -> str:
        return f"<ConfigEntry {self.key}={self.value!r}>"
